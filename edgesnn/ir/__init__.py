"""The spiking-network IR: typed nodes and a validated graph (numpy only)."""

from edgesnn.ir.graph import Edge, Graph
from edgesnn.ir.nodes import (LI, LIF, NEURONS, NODE_TYPES, RESETS, AdaptiveLIF, Affine,
                              CubaLIF, GroupedLinear, Input, Linear, Node, Output, SpikeEncoder, Threshold)

# Nodes that weight their input (and so have int8 weights in fixed point)
CONNECTIONS = (Affine, Linear, GroupedLinear)

__all__ = ["Graph", "Edge", "Node", "NODE_TYPES", "NEURONS", "RESETS", "Input", "Output", "Affine",
           "Linear", "GroupedLinear", "CONNECTIONS", "LIF", "CubaLIF", "AdaptiveLIF", "LI",
           "Threshold", "SpikeEncoder"]

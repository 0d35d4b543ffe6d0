"""The spiking-network IR: typed nodes and a validated graph (numpy only)."""

from edgesnn.ir.graph import Edge, Graph
from edgesnn.ir.nodes import (LI, LIF, NODE_TYPES, RESETS, Affine, CubaLIF, Input, Linear, Node,
                              Output, SpikeEncoder, Threshold)

__all__ = ["Graph", "Edge", "Node", "NODE_TYPES", "RESETS", "Input", "Output", "Affine", "Linear",
           "LIF", "CubaLIF", "LI", "Threshold", "SpikeEncoder"]

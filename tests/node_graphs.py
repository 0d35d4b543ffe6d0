"""Small graphs of every node type, with ordinary weights, for the backend and export
tests (tests/test_modelfile.py's graphs carry deliberately extreme float weights — 3e38,
subnormals — that suit a file-format test, not a numerics one)."""

import dataclasses

import numpy as np
from test_modelfile import GRAPHS

import edgesnn
from edgesnn.modelfile import Model

KINDS = tuple(GRAPHS)


def ordinary_model(kind: str, rng: np.random.Generator) -> Model:
    """The float model of one node type's graph, its extreme weights made ordinary."""
    graph = GRAPHS[kind](rng)
    nodes = {}
    for name, node in graph.nodes.items():
        ordinary = {f.name: np.where(np.abs(v) > 4, 0.5, v).astype(np.float32)
                    for f in dataclasses.fields(node) if f.name in ("weight", "bias",
                                                                      "threshold_weight")
                    for v in [getattr(node, f.name)]}
        nodes[name] = dataclasses.replace(node, **ordinary)
    return Model(dataclasses.replace(graph, nodes=nodes))


def quantized_model(kind: str, rng: np.random.Generator) -> Model:
    """``ordinary_model`` quantized on random calibration sequences."""
    model = ordinary_model(kind, rng)
    n = model.graph.nodes[model.graph.inputs()[0]].size
    return edgesnn.quantize(model, rng.normal(0, 1, (4, 40, n)).astype(np.float32))

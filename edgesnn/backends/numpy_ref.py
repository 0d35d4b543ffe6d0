"""The numpy reference backends: the Program's own kernels, float32 and fixed point."""

from __future__ import annotations

from edgesnn.compile import Program, compile_graph
from edgesnn.errors import BackendError
from edgesnn.modelfile import Model


def prepare_float(model: Model) -> Program:
    return compile_graph(model.graph)


def prepare_fixed(model: Model) -> Program:
    if model.quantization is None:
        raise BackendError("this model is float-only; quantize it first: "
                           "edgesnn quantize MODEL --calib DATA --out MODEL_INT")
    return compile_graph(model.graph, model.quantization)

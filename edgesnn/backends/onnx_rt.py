"""The ``onnx`` and ``onnx-int`` backends: the ONNX export of a model run by onnxruntime,
the state fed back as the graph's explicit inputs each step."""

from __future__ import annotations

import numpy as np

from edgesnn.backends.external import ExternalProgram
from edgesnn.compile import FIXED, State, compile_graph
from edgesnn.errors import BackendError, require
from edgesnn.export.onnx import state_output, to_onnx
from edgesnn.modelfile import Model


class OnnxProgram(ExternalProgram):
    backend = "onnx"

    def attach(self, proto) -> OnnxProgram:
        ort = require("onnxruntime", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a control loop steps one sample; threads only cost
        self.session = ort.InferenceSession(proto.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        self.names = [n for n, _, _ in self.state_layout()]
        self.fetch = ["y"] + [state_output(n) for n in self.names]
        self.input_type = np.int16 if self.numerics == FIXED else np.float32
        return self

    def external_step(self, state: State, x) -> tuple[np.ndarray, State]:
        feeds = {"x": np.ascontiguousarray(x, self.input_type)}
        feeds.update({n: state[n] for n in self.names})
        y, *new = self.session.run(self.fetch, feeds)
        return y, dict(zip(self.names, new))


def prepare_float(model: Model) -> OnnxProgram:
    return OnnxProgram.from_program(compile_graph(model.graph)).attach(to_onnx(model))


def prepare_int(model: Model) -> OnnxProgram:
    if model.quantization is None:
        raise BackendError("the onnx-int backend needs a quantized model; "
                           "quantize it first: edgesnn quantize MODEL --calib DATA --out MODEL_INT")
    program = compile_graph(model.graph, model.quantization)
    int_program = OnnxProgram.from_program(program)
    int_program.backend = "onnx-int"
    return int_program.attach(to_onnx(model, quantized=True))

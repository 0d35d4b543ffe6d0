"""The ``tflite``, ``tflite-int`` and ``tflite-micro`` backends: the TFLite export of a
model (``edgesnn.export.tflite``) run by LiteRT or by the TFLite Micro interpreter, the
state fed back as the graph's explicit tensors each step.

The exported step has batch 1, so a batch is stepped row by row. ``tflite`` runs the
float32 form; ``tflite-int`` and ``tflite-micro`` run the exact integer form of a
quantized model (int16 input, int32/int8 state, bit-exact with numpy-int).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesnn.backends.external import ExternalProgram
from edgesnn.compile import State, compile_graph
from edgesnn.errors import BackendError, ModelFileError, require
from edgesnn.export.tflite import describe_tflite, state_output, to_tflite
from edgesnn.modelfile import Model


class TfliteRunner:
    """One interpreter of a .tflite step: ``run(arrays)`` sets the graph's inputs in
    order, invokes, and returns its outputs in order."""

    def __init__(self, data: bytes, micro: bool, source: str = "<bytes>"):
        info = describe_tflite(data, source)  # verified first: TFLite Micro trusts its input
        self.source = source
        self.input_names = [t["name"] for t in info["inputs"]]
        self.output_names = [t["name"] for t in info["outputs"]]
        self.input_types = [np.dtype(t["type"]) for t in info["inputs"]]
        self.micro = micro
        try:
            if micro:
                runtime = require("tflite_micro.python.tflite_micro.runtime", "tflite")
                # the arena holds every intermediate tensor and its metadata: the exact
                # integer form has thousands of small ones
                self.interpreter = runtime.Interpreter.from_bytes(
                    data, arena_size=4 * len(data) + (1 << 20))
            else:
                litert = require("ai_edge_litert.interpreter", "tflite")
                # LiteRT's default kernels (XNNPACK takes the float ops; the integer form
                # stays exact: its float products are exact in any summation order), one
                # thread: a step is many small ops, where threads cost more than they save
                self.interpreter = litert.Interpreter(model_content=data, num_threads=1)
                self.interpreter.allocate_tensors()
                self.inputs = [d["index"] for d in self.interpreter.get_input_details()]
                self.outputs = [d["index"] for d in self.interpreter.get_output_details()]
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"{source}: {'TFLite Micro' if micro else 'LiteRT'} cannot load "
                               f"this model: {str(exc).strip().splitlines()[0]}") from None

    @classmethod
    def from_file(cls, path: str | Path, micro: bool = False) -> TfliteRunner:
        """A runner of an exported .tflite file; ModelFileError for a missing, truncated
        or foreign file."""
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such file")
        return cls(path.read_bytes(), micro, str(path))

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        arrays = [np.ascontiguousarray(a, t) for a, t in zip(arrays, self.input_types)]
        try:
            if self.micro:
                for i, a in enumerate(arrays):
                    self.interpreter.set_input(a, i)
                self.interpreter.invoke()
                return [np.array(self.interpreter.get_output(i))
                        for i in range(len(self.output_names))]
            for i, a in zip(self.inputs, arrays):
                self.interpreter.set_tensor(i, a)
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(i) for i in self.outputs]
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"{self.source}: invoke failed: "
                               f"{str(exc).strip().splitlines()[0]}") from None


class TfliteProgram(ExternalProgram):
    """A Program whose steps run in a TFLite interpreter, one batch row at a time."""

    backend = "tflite"

    def attach(self, runner: TfliteRunner) -> TfliteProgram:
        self.names = [n for n, _, _ in self.state_layout()]
        expected = (["x"] + self.names, ["y"] + [state_output(n) for n in self.names])
        if (runner.input_names, runner.output_names) != expected:
            raise BackendError(f"{runner.source}: the TFLite graph's tensors "
                               f"{runner.input_names} → {runner.output_names} are not this "
                               f"model's step {expected[0]} → {expected[1]}")
        self.runner = runner
        return self

    def external_step(self, state: State, x) -> tuple[np.ndarray, State]:
        x = np.asarray(x)
        rows = [self.runner.run([x[b:b + 1]] + [state[n][b:b + 1] for n in self.names])
                for b in range(x.shape[0])]
        y = np.concatenate([r[0] for r in rows])
        new = {n: np.concatenate([r[k + 1] for r in rows]) for k, n in enumerate(self.names)}
        return y, new


def _fixed(model: Model, backend: str):
    if model.quantization is None:
        raise BackendError(f"the {backend} backend runs the integer TFLite form and needs a "
                           "quantized model; quantize it first: "
                           "edgesnn quantize MODEL --calib DATA --out MODEL_INT")
    return compile_graph(model.graph, model.quantization)


def prepare_float(model: Model) -> TfliteProgram:
    program = TfliteProgram.from_program(compile_graph(model.graph))
    return program.attach(TfliteRunner(to_tflite(model, quantized=False), micro=False))


def prepare_int(model: Model) -> TfliteProgram:
    program = TfliteProgram.from_program(_fixed(model, "tflite-int"))
    program.backend = "tflite-int"
    return program.attach(TfliteRunner(to_tflite(model, quantized=True), micro=False))


def prepare_micro(model: Model) -> TfliteProgram:
    program = TfliteProgram.from_program(_fixed(model, "tflite-micro"))
    program.backend = "tflite-micro"
    return program.attach(TfliteRunner(to_tflite(model, quantized=True), micro=True))

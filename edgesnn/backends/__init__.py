"""Backend registry: a name maps to a module and a ``prepare(model) -> Executor`` function.

Modules are imported only when their backend is asked for, so a backend with heavy
dependencies costs nothing until it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from edgesnn.errors import BackendError

if TYPE_CHECKING:
    from edgesnn.compile import Memory, State
    from edgesnn.modelfile import Model


class Executor(Protocol):
    """What a backend returns: the explicit-state step API of a Program."""

    numerics: str
    input_size: int
    output_size: int

    def init_state(self, batch: int = 1) -> "State": ...
    def step(self, state: "State", x: np.ndarray) -> tuple[np.ndarray, "State"]: ...
    def run(self, state: "State", xs: np.ndarray) -> tuple[np.ndarray, "State"]: ...
    def memory(self) -> "Memory": ...


# name -> (module, function, one-line description)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "numpy-float": ("edgesnn.backends.numpy_ref", "prepare_float",
                    "float32 reference kernels in numpy"),
    "numpy-int": ("edgesnn.backends.numpy_ref", "prepare_fixed",
                  "bit-exact fixed-point reference kernels in numpy (needs a quantized model)"),
    "c": ("edgesnn.backends.c_host", "prepare",
          "the generated C, compiled on the host (needs a quantized model and a C compiler); "
          "bit-exact with numpy-int"),
    "onnx": ("edgesnn.backends.onnx_rt", "prepare_float",
             "the float32 ONNX export run by onnxruntime (extra 'onnx')"),
    "onnx-int": ("edgesnn.backends.onnx_rt", "prepare_int",
                 "the integer ONNX export run by onnxruntime, bit-exact with numpy-int "
                 "(extra 'onnx')"),
    "tflite": ("edgesnn.backends.tflite_rt", "prepare_float",
               "the float32 TFLite export run by LiteRT (extra 'tflite')"),
    "tflite-int": ("edgesnn.backends.tflite_rt", "prepare_int",
                   "the integer TFLite export run by LiteRT, bit-exact with numpy-int "
                   "(extra 'tflite')"),
    "tflite-micro": ("edgesnn.backends.tflite_rt", "prepare_micro",
                     "the integer TFLite export run by the TFLite Micro interpreter, bit-exact "
                     "with numpy-int (extra 'tflite')"),
}


def get_backend(name: str) -> Callable[["Model"], Executor]:
    try:
        module, function, _ = BACKENDS[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), function)

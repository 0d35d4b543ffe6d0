"""Programs whose step runs in another runtime (the generated C, onnxruntime, TFLite).

The compiled Program keeps what every backend shares — input checks, quantization of
the input, dequantization of the output, the state layout and memory — and a subclass
replaces only ``core_step``: (state dict, prepared input (batch, n)) → (output, new
state dict), with the same dtypes as the numpy backend of the same numerics.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from edgesnn.compile import FIXED, Program, State
from edgesnn.errors import BackendError, InputError

P = TypeVar("P", bound="ExternalProgram")


class ExternalProgram(Program):
    """Subclasses implement ``external_step``."""

    backend = "external"

    @classmethod
    def from_program(cls: type[P], program: Program) -> P:
        return cls(**{k: getattr(program, k) for k in program.__dataclass_fields__})

    def core_step(self, state: State, x, observe=None):
        if observe is not None:
            raise BackendError(f"the {self.backend} backend does not report per-op values; "
                               "use numpy-float or numpy-int")
        if self.numerics == FIXED:
            # step_int accepts any integers; a device (and every exported integer form)
            # receives int16, so wider values are refused rather than wrapped or clipped
            x = np.asarray(x)
            if x.size and (x.min() < -32768 or x.max() > 32767):
                raise InputError(f"the {self.backend} backend takes int16 inputs (what a device "
                                 f"receives); got values in [{x.min()}, {x.max()}]")
        return self.external_step(state, x)

    def external_step(self, state: State, x) -> tuple:
        raise NotImplementedError

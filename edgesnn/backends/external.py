"""Programs whose step runs in another runtime (the generated C, onnxruntime, TFLite).

The compiled Program keeps what every backend shares — input checks, quantization of
the input, dequantization of the output, the state layout and memory — and a subclass
replaces only ``core_step``: (state dict, prepared input (batch, n)) → (output, new
state dict), with the same dtypes as the numpy backend of the same numerics.
"""

from __future__ import annotations

from typing import TypeVar

from edgesnn.compile import Program, State
from edgesnn.errors import BackendError

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
        return self.external_step(state, x)

    def external_step(self, state: State, x) -> tuple:
        raise NotImplementedError

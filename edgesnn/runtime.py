"""A stateful wrapper over a backend's explicit-state step functions (the Norse style:
pure kernels underneath, a thin object that carries the state on top)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesnn.backends import Executor, get_backend
from edgesnn.compile import State
from edgesnn.modelfile import Model, load_model


class Runtime:
    """Run a model step by step or a sequence at a time, keeping state between calls.

    State is created on the first call with that call's batch size; ``reset()`` clears
    it. A call that raises leaves the state as it was.
    """

    def __init__(self, model: Model, backend: str = "numpy-float"):
        self.model = model
        self.backend = backend
        self.executor: Executor = get_backend(backend)(model)
        self.state: State | None = None

    def reset(self) -> None:
        self.state = None

    def _state_for(self, batch: int) -> State:
        return self.executor.init_state(batch) if self.state is None else self.state

    def step(self, x) -> np.ndarray:
        """One step: x is (features,) → (outputs,) or (batch, features) → (batch, outputs)."""
        x = np.asarray(x)
        y, self.state = self.executor.step(self._state_for(x.shape[0] if x.ndim == 2 else 1), x)
        return y

    def run(self, xs) -> np.ndarray:
        """A sequence, continuing from the current state: (T, features) → (T, outputs), or
        (batch, T, features) → (batch, T, outputs). Call ``reset()`` first for a fresh start."""
        xs = np.asarray(xs)
        ys, self.state = self.executor.run(self._state_for(xs.shape[0] if xs.ndim == 3 else 1), xs)
        return ys


def load(path: str | Path, backend: str = "numpy-float") -> Runtime:
    """Load a model file and prepare it on ``backend`` (see ``edgesnn.backends.BACKENDS``)."""
    return Runtime(load_model(path), backend)

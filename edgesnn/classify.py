"""Turning output sequences into class decisions: whole windows, or a sample stream.

The rule is stored in the model file (``metadata["decision"]``): logits are the mean of
the output over the decision interval times ``logit_scale``; the class is their argmax
and the confidence its softmax probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesnn.errors import InputError
from edgesnn.runtime import Runtime


def _logit_scale(runtime: Runtime) -> float:
    return float(runtime.model.metadata.get("decision", {}).get("logit_scale", 1.0))


def window_logits(runtime: Runtime, xs: np.ndarray) -> np.ndarray:
    """Logits (N, classes) of windows (N, T, features), each from a fresh state."""
    runtime.reset()
    out = runtime.run(xs)
    runtime.reset()
    return (out.astype(np.float64).mean(axis=1) * _logit_scale(runtime)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Decision:
    label: int
    name: str | None
    confidence: float
    logits: np.ndarray


class StreamingClassifier:
    """Classify a sensor stream sample by sample without buffering windows.

    Every ``hop`` samples ``push`` returns a Decision from the outputs accumulated since
    the previous one, and None otherwise. The network state persists across decisions
    (it keeps the context of the whole stream); with ``reset_each_decision=True`` it
    restarts at each decision, which reproduces window-by-window classification of
    consecutive windows exactly.
    """

    def __init__(self, runtime: Runtime, hop: int, reset_each_decision: bool = False):
        if hop < 1:
            raise ValueError("hop must be a positive number of samples")
        self.runtime = runtime
        self.hop = hop
        self.reset_each_decision = reset_each_decision
        self.classes = runtime.model.metadata.get("classes")
        self._scale = _logit_scale(runtime)
        self.reset()

    def reset(self) -> None:
        self.runtime.reset()
        self._sum = None
        self._count = 0

    def push(self, sample) -> Decision | None:
        """One sample (features,). Raises InputError on a bad sample, keeping the state."""
        sample = np.asarray(sample)
        if sample.ndim != 1:
            raise InputError(f"push takes one sample shaped (features,); got {sample.shape}")
        y = self.runtime.step(sample).astype(np.float64)
        self._sum = y if self._sum is None else self._sum + y
        self._count += 1
        if self._count < self.hop:
            return None
        logits = (self._sum / self._count * self._scale).astype(np.float32)
        self._sum, self._count = None, 0
        if self.reset_each_decision:
            self.runtime.reset()
        label = int(np.argmax(logits))
        return Decision(label=label,
                        name=None if self.classes is None else str(self.classes[label]),
                        confidence=float(softmax(logits.astype(np.float64))[label]),
                        logits=logits)

"""The conventional controller the SNNs learn to mimic.

Vectorised over a batch of independent loops. The derivative is the plain
difference of consecutive error samples divided by the nominal period (what the
blimp's onboard code does, set-point kick included); the integral is clamped
(anti-windup by clamping the integrator state, so it recovers as soon as the
error changes sign). With the onboard gains this reproduces the logged
``pid_p``/``pid_i``/``pid_d`` columns from the logged ``error`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PIDGains", "PID", "ONBOARD_GAINS", "pid_terms"]


@dataclass(frozen=True)
class PIDGains:
    kp: float = 9.0
    ki: float = 0.75  # per second
    kd: float = 14.0  # seconds
    dt: float = 0.1  # nominal loop period [s]
    i_limit: float = 3.3  # |integral term| never exceeds the actuator range


ONBOARD_GAINS = PIDGains()


@dataclass
class PID:
    gains: PIDGains = field(default_factory=PIDGains)
    batch: int = 1

    def __post_init__(self) -> None:
        self.reset()

    def reset(self, previous_error: np.ndarray | float | None = None) -> None:
        """Clear the integral; ``previous_error`` seeds the derivative (none: first
        derivative is zero)."""
        self.integral = np.zeros(self.batch)
        self.previous = None if previous_error is None else np.broadcast_to(
            np.asarray(previous_error, float), (self.batch,)).copy()

    def terms(self, error: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance one period; returns the P, I and D terms, each (batch,)."""
        g = self.gains
        e = np.broadcast_to(np.asarray(error, float), (self.batch,))
        prev = e if self.previous is None else self.previous
        d = g.kd * (e - prev) / g.dt
        self.integral = np.clip(self.integral + g.ki * e * g.dt, -g.i_limit, g.i_limit)
        self.previous = e.copy()
        return g.kp * e, self.integral.copy(), d

    def __call__(self, error: np.ndarray | float) -> np.ndarray:
        p, i, d = self.terms(error)
        return p + i + d


def pid_terms(error: np.ndarray, gains: PIDGains = ONBOARD_GAINS,
              previous_error: float | None = None) -> dict[str, np.ndarray]:
    """P, I, D and PD terms over a whole error sequence (T,) or batch (B, T)."""
    error = np.asarray(error, float)
    seq = np.atleast_2d(error)
    pid = PID(gains, batch=seq.shape[0])
    pid.reset(previous_error)
    out = np.stack([np.stack(pid.terms(seq[:, t])) for t in range(seq.shape[1])], axis=-1)
    terms = {"p": out[0], "i": out[1], "d": out[2]}
    terms["pd"] = terms["p"] + terms["d"]
    return {k: v.reshape(error.shape) for k, v in terms.items()}

"""The guard between sensors, controller and motors.

A controller only ever sees finite, in-range, fresh measurements. Anything else —
NaN/Inf, a reading outside the sensor's range, a reading older than the timeout,
a non-finite set-point, or a controller that fails or returns a non-finite value —
produces the **fallback command** (0 by default: motors off; the blimp is
negatively buoyant, so it sinks slowly and lands instead of climbing into the
ceiling). The controller is not stepped on a rejected sample, so its internal state
(an SNN's membranes, a PID's integral) is not corrupted by the bad value. Every
command is clamped to the actuator range.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgesnn.controllers.closed_loop import U_MAX

__all__ = ["SafetyConfig", "Command", "SafeController"]


@dataclass(frozen=True)
class SafetyConfig:
    min_measurement: float = 0.0  # m: a range sensor cannot read below 0 ...
    max_measurement: float = 12.0  # ... nor beyond its range (TFmini-class LiDAR)
    timeout_s: float = 0.5  # a reading older than this is stale (5 periods at 10 Hz)
    u_max: float = U_MAX
    fallback: float = 0.0

    def __post_init__(self) -> None:
        if not (self.min_measurement < self.max_measurement and self.timeout_s > 0
                and self.u_max > 0 and abs(self.fallback) <= self.u_max):
            raise ValueError(f"inconsistent safety settings: {self}")


@dataclass(frozen=True)
class Command:
    value: float
    ok: bool
    reason: str = ""  # why the fallback was used ("" when ok)


class SafeController:
    """Wraps ``controller(error) -> command`` (1-element arrays) with the checks above.

    ``clock`` returns seconds on the same time base as the measurement stamps
    (``time.monotonic`` by default)."""

    def __init__(self, controller: Callable[[np.ndarray], np.ndarray], config: SafetyConfig = SafetyConfig(),
                 clock: Callable[[], float] = time.monotonic):
        self.controller = controller
        self.config = config
        self.clock = clock
        self.faults = 0

    def reset(self) -> None:
        if hasattr(self.controller, "reset"):
            self.controller.reset()
        self.faults = 0

    def _fallback(self, reason: str) -> Command:
        self.faults += 1
        return Command(self.config.fallback, False, reason)

    def __call__(self, measurement: float | None, setpoint: float, stamp: float | None) -> Command:
        c = self.config
        if measurement is None or stamp is None:
            return self._fallback("no measurement yet")
        if not (isinstance(measurement, (int, float, np.floating, np.integer)) and math.isfinite(measurement)):
            return self._fallback(f"measurement is not a finite number: {measurement!r}")
        if not (isinstance(setpoint, (int, float, np.floating, np.integer)) and math.isfinite(setpoint)):
            return self._fallback(f"set-point is not a finite number: {setpoint!r}")
        if not c.min_measurement <= measurement <= c.max_measurement:
            return self._fallback(f"measurement {measurement:g} m outside "
                                  f"[{c.min_measurement:g}, {c.max_measurement:g}] m")
        age = self.clock() - stamp
        if age > c.timeout_s:
            return self._fallback(f"measurement is stale ({age:.2f} s old > {c.timeout_s:g} s)")
        try:
            u = float(np.asarray(self.controller(np.array([setpoint - measurement]))).reshape(-1)[0])
        except Exception as exc:  # a failing model must not take the loop down
            return self._fallback(f"controller failed: {exc}")
        if not math.isfinite(u):
            return self._fallback("controller returned a non-finite command")
        return Command(min(max(u, -c.u_max), c.u_max), True)

"""Fly a controller on a plant through a set-point schedule, and score the flight.

The loop is the blimp's: every period, read the range sensor, form the error
against the set-point, ask the controller for a command, clamp it to the actuator
range, apply it. Plants and controllers are batched, so one call flies many
independent copies (used to generate training sequences); a flight report uses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from edgesnn.controllers.plants import Seed
from edgesnn.errors import InputError

__all__ = ["Controller", "Flight", "setpoint_schedule", "random_setpoints", "fly",
           "StepMetrics", "step_metrics", "summarize", "flight_loss", "U_MAX", "plot_flight"]

U_MAX = 3.3  # actuator range of the blimp's motors


class Controller(Protocol):
    def reset(self) -> None: ...
    def __call__(self, error: np.ndarray) -> np.ndarray: ...


def setpoint_schedule(levels: list[float], seconds_each: float, dt: float) -> np.ndarray:
    """Piecewise-constant set-points, e.g. the paper's 0.5 / 1.0 / 1.5 m, 70 s each."""
    if not levels or seconds_each <= 0:
        raise InputError("a schedule needs at least one level and a positive duration")
    per = int(round(seconds_each / dt))
    return np.repeat(np.asarray(levels, float), per)


def random_setpoints(rng: np.random.Generator, batch: int, steps: int, seconds_each: float,
                     dt: float, low: float = -1.5, high: float = 1.5) -> np.ndarray:
    """(batch, steps·seconds_each/dt) schedules of uniformly drawn levels."""
    per = int(round(seconds_each / dt))
    return np.repeat(rng.uniform(low, high, (batch, steps)), per, axis=1)


@dataclass
class Flight:
    """Everything one flight produced, each (batch, T); ``time`` is (T,)."""

    time: np.ndarray
    setpoint: np.ndarray
    measurement: np.ndarray
    altitude: np.ndarray
    command: np.ndarray

    @property
    def error(self) -> np.ndarray:
        return self.setpoint - self.measurement


def fly(plant, controller: Controller | Callable[[np.ndarray], np.ndarray],
        setpoints: np.ndarray, seed: Seed = 0, u_max: float = U_MAX) -> Flight:
    """Closed loop over ``setpoints`` (T,) or (batch, T) with the plant's batch; commands
    are clamped to ±``u_max``; ``seed`` goes to the plant's ``reset``."""
    sp = np.broadcast_to(np.atleast_2d(np.asarray(setpoints, float)), (plant.batch, np.shape(setpoints)[-1]))
    steps = sp.shape[1]
    meas = plant.reset(seed)
    if hasattr(controller, "reset"):
        controller.reset()
    out = {k: np.empty((plant.batch, steps)) for k in ("measurement", "altitude", "command")}
    for t in range(steps):
        if t and np.any(sp[:, t] != sp[:, t - 1]):
            plant.on_setpoint_change()
        out["measurement"][:, t] = meas
        out["altitude"][:, t] = plant.altitude
        u = np.clip(np.asarray(controller(sp[:, t] - meas), float).reshape(plant.batch), -u_max, u_max)
        out["command"][:, t] = u
        meas = plant.step(u)
    return Flight(time=np.arange(steps) * plant.dt, setpoint=np.array(sp), **out)


@dataclass(frozen=True)
class StepMetrics:
    start_s: float
    step_m: float
    overshoot_m: float  # beyond the new set-point, in the direction of the step
    settling_s: float  # until |error| stays within the settling band (inf: never)
    steady_band_m: float  # max |altitude error| over the segment's last ``steady_s``


def step_metrics(flight: Flight, index: int = 0, settle_band: float = 0.05,
                 steady_s: float = 20.0) -> list[StepMetrics]:
    """One entry per set-point step of flight ``index``, scored on the true altitude
    (the range sensor's quantisation and noise are not the controller's error)."""
    sp, alt, t = flight.setpoint[index], flight.altitude[index], flight.time
    dt = t[1] - t[0]
    changes = [0] + [k for k in range(1, len(sp)) if sp[k] != sp[k - 1]] + [len(sp)]
    result = []
    for a, b in zip(changes[:-1], changes[1:]):
        step = sp[a] - (sp[a - 1] if a else alt[0])
        err = alt[a:b] - sp[a]
        direction = np.sign(step) or 1.0
        overshoot = max(0.0, float(np.max(direction * err)))
        outside = np.nonzero(np.abs(err) > settle_band)[0]
        settling = 0.0 if not len(outside) else (
            float("inf") if outside[-1] == len(err) - 1 else float((outside[-1] + 1) * dt))
        tail = err[-max(1, int(round(steady_s / dt))):]
        result.append(StepMetrics(float(t[a]), float(step), overshoot, settling,
                                  float(np.max(np.abs(tail)))))
    return result


def summarize(flight: Flight, index: int = 0) -> dict[str, float]:
    """Worst-case numbers over the schedule's steps (the first segment, a take-off
    from the ground, counts as an upward step)."""
    steps = step_metrics(flight, index)
    up = [s.overshoot_m for s in steps if s.step_m > 0]
    down = [s.overshoot_m for s in steps if s.step_m < 0]
    err = flight.altitude[index] - flight.setpoint[index]
    return {
        "overshoot_up_m": max(up, default=0.0),
        "overshoot_down_m": max(down, default=0.0),
        "settling_s": max(s.settling_s for s in steps),
        "steady_band_m": max(s.steady_band_m for s in steps),
        "rmse_m": float(np.sqrt(np.mean(err ** 2))),
    }


def flight_loss(flight: Flight, index: int = 0) -> float:
    """Worst overshoot plus worst steady-state band [m]: the two numbers a flight is
    judged by, as one score for evolution (lower is better)."""
    s = summarize(flight, index)
    return max(s["overshoot_up_m"], s["overshoot_down_m"]) + s["steady_band_m"]


def plot_flight(flights: dict[str, Flight], path, title: str = "") -> None:
    """Altitude vs set-point (top) and command (bottom), one line per controller."""
    from edgesnn.errors import require
    require("matplotlib", "plot").use("Agg")
    plt = require("matplotlib.pyplot", "plot")
    fig, (ax_h, ax_u) = plt.subplots(2, 1, sharex=True, figsize=(9, 6),
                                     gridspec_kw={"height_ratios": [2, 1]})
    first = next(iter(flights.values()))
    ax_h.plot(first.time, first.setpoint[0], "k--", lw=1, label="set-point")
    for name, f in flights.items():
        ax_h.plot(f.time, f.altitude[0], lw=1.2, label=name)
        ax_u.plot(f.time, f.command[0], lw=0.8, label=name)
    ax_h.set_ylabel("altitude [m]")
    ax_u.set_ylabel("command")
    ax_u.set_xlabel("time [s]")
    ax_h.legend(loc="lower right")
    ax_h.grid(alpha=0.3)
    ax_u.grid(alpha=0.3)
    if title:
        ax_h.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

"""Error sequences and the PID terms an SNN controller learns to reproduce from them.

- PD part: the recorded errors of the real flights, and errors of simulated PD
  flights of the fitted blimp model; target u = Kp·e + Kd·d/dt(setpoint − meas)
  on the same errors.
- I part: errors of PID flights of the double integrator ẍ = u + b (b redrawn at
  every set-point step, so holding altitude needs an integral); target = the
  PID's clamped integral term.

The PD target differentiates the measurement, not the error: at a set-point step
the onboard derivative-of-error makes a one-sample kick of ±70…±140 that no
bounded controller output reaches (the motors saturate at ±3.3, and the flown
SNNs do not reproduce it either), so mimicking it would only distort the fit.
On every other sample the two forms are identical (docs/controllers.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgesnn.controllers.closed_loop import fly, random_setpoints
from edgesnn.controllers.flight_logs import FlightLog, flight_id
from edgesnn.controllers.pid import ONBOARD_GAINS, PID, PIDGains
from edgesnn.controllers.plants import DoubleIntegrator, PhysicalBlimp

__all__ = ["MimicSet", "pd_target", "log_sequences", "simulated_pd_sequences",
           "simulated_i_sequences", "split_by_flight", "PD_GAINS", "I_GAINS"]

PD_GAINS = PIDGains(ki=0.0)  # the logged flights ran the PID code with the integrator off
# The double integrator's disturbance reaches ±4, beyond the blimp's ±3.3 actuator
# range, so its integral may grow further to cancel it.
I_GAINS = PIDGains(i_limit=5.0)


@dataclass
class MimicSet:
    """Named (error, target) sequence pairs; sequences may differ in length."""

    names: list[str] = field(default_factory=list)
    errors: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)

    def add(self, name: str, error: np.ndarray, target: np.ndarray) -> None:
        self.names.append(name)
        self.errors.append(np.asarray(error, np.float32))
        self.targets.append(np.asarray(target, np.float64))

    def __len__(self) -> int:
        return len(self.names)

    def __add__(self, other: "MimicSet") -> "MimicSet":
        return MimicSet(self.names + other.names, self.errors + other.errors,
                        self.targets + other.targets)

    def subset(self, indices) -> "MimicSet":
        idx = list(indices)
        return MimicSet([self.names[i] for i in idx], [self.errors[i] for i in idx],
                        [self.targets[i] for i in idx])

    def by_length(self, indices=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Stack sequences of equal length: [(errors (S, T), targets (S, T)), ...]."""
        groups: dict[int, list[int]] = {}
        for i in range(len(self)) if indices is None else indices:
            groups.setdefault(len(self.errors[i]), []).append(i)
        return [(np.stack([self.errors[i] for i in g]), np.stack([self.targets[i] for i in g]))
                for g in groups.values()]


def pd_target(error: np.ndarray, setpoint: np.ndarray, gains: PIDGains = PD_GAINS) -> np.ndarray:
    """Kp·e − Kd·Δmeas/dt with meas = setpoint − error (first sample: no derivative)."""
    meas = np.asarray(setpoint, float) - np.asarray(error, float)
    d = np.zeros_like(meas)
    d[..., 1:] = -gains.kd * np.diff(meas, axis=-1) / gains.dt
    return gains.kp * np.asarray(error, float) + d


def log_sequences(logs: list[FlightLog], gains: PIDGains = PD_GAINS) -> MimicSet:
    out = MimicSet()
    for log in logs:
        out.add(log.name, log["error"], pd_target(log["error"], log["ref"], gains))
    return out


def split_by_flight(logs: list[FlightLog], test_flights: list[str]) -> tuple[list[FlightLog], list[FlightLog]]:
    """Segments of one flight overlap, so a held-out set must hold out whole flights."""
    test = [log for log in logs if flight_id(log) in test_flights]
    return [log for log in logs if log not in test], test


def simulated_pd_sequences(count: int, seed: int, seconds: float = 70.0) -> MimicSet:
    """PD flights of the fitted blimp: 20 s at 0, then a step of up to ±1.5 m."""
    rng = np.random.default_rng(seed)
    plant = PhysicalBlimp(batch=count)
    hold = int(round(20.0 / plant.dt))
    total = int(round(seconds / plant.dt))
    steps = rng.uniform(-1.5, 1.5, count)
    sp = np.zeros((count, total))
    sp[:, hold:] = steps[:, None]
    flight = fly(plant, PID(PD_GAINS, batch=count), sp, seed=int(rng.integers(2**31)))
    out = MimicSet()
    for k in range(count):
        out.add(f"sim-pd-{seed}-{k}", flight.error[k], pd_target(flight.error[k], sp[k]))
    return out


def simulated_i_sequences(count: int, seed: int, steps: int = 5, seconds_each: float = 50.0) -> MimicSet:
    """PID flights of the double integrator; the target is the PID's integral term."""
    rng = np.random.default_rng(seed)
    plant = DoubleIntegrator(batch=count)
    sp = random_setpoints(rng, count, steps, seconds_each, plant.dt)
    pid = PID(I_GAINS, batch=count)
    integral = []

    def controller(error):
        p, i, d = pid.terms(error)
        integral.append(i)
        return p + i + d

    # the plant has no actuator limit, but the D kick at a step must not fling it
    flight = fly(plant, controller, sp, seed=int(rng.integers(2**31)), u_max=8.0)
    target = np.stack(integral, axis=1)
    out = MimicSet()
    for k in range(count):
        out.add(f"sim-i-{seed}-{k}", flight.error[k], target[k])
    return out

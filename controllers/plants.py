"""Altitude plants the controllers fly: batched, seeded, one common interface.

Every plant simulates ``batch`` independent copies at once (fitness evaluation and
training data fly many flights per call) and follows the ``Plant`` protocol:

- ``dt: float`` — control period [s] (0.1 s, the blimp's 10 Hz loop), ``batch: int``.
- ``reset(seed) -> (batch,)`` — altitude 0, at rest; reseeds the plant's own random
  generators (never the global ones) and returns the first measurement.
- ``step(u) -> (batch,)`` — apply command ``u`` (shape (batch,) or a scalar, which is
  broadcast) for one period and return the next measurement. Any other shape, or a
  non-finite command, raises ``edgesnn.errors.InputError``.
- ``altitude -> (batch,)`` — the true altitude (scores use it, not the sensor).
- ``on_setpoint_change()`` — called by the closed-loop runner whenever the set-point
  changes; only the double integrator uses it (it redraws its disturbance).

Randomness: element k of a batch draws from its own generator, seeded with child k
of ``np.random.SeedSequence(seed).spawn(batch)``. So element k never depends on the
batch size or on the other elements, and a batch-1 plant reset with
``[np.random.SeedSequence(seed).spawn(B)[k]]`` reproduces element k of a batch of B
reset with ``seed`` exactly (``reset`` accepts a list of ``batch`` SeedSequences for
this). Without noise (``noise_std=0``) a batch equals a loop of batch-1 plants for
any seeds.

Plants:

- ``IdentifiedBlimp`` — the linear 10 Hz command→range model identified in earlier
  work (see its docstring for the sign check).
- ``PhysicalBlimp`` — dead zone, saturation, motor lag, thrust against negative
  buoyancy and drag, a noisy 1 cm range sensor; parameters fitted to the published
  flight logs (``FITTED``, from ``tools/fit_blimp.py``). Its dynamics live in one
  place, ``advance``, which ``simulate`` (used by the fit, with the logs' irregular
  time stamps) and ``PhysicalBlimp.step`` both call.
- ``DoubleIntegrator`` — ẍ = u + b with a random constant disturbance b, redrawn at
  every set-point change: holding a set-point needs an integral term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from edgesnn.errors import InputError

__all__ = ["Plant", "BlimpParams", "FITTED", "U_MAX", "DEAD_ZONE", "IdentifiedBlimp",
           "PhysicalBlimp", "DoubleIntegrator", "Trajectory", "motor_command", "advance",
           "simulate", "lag", "tf_step", "element_rngs", "TF_NUM", "TF_DEN"]

U_MAX = 3.3  # actuator range of the blimp's motors
DEAD_ZONE = 0.1  # |u| below this does not spin the motors
MAX_SUBSTEP = 0.025  # [s] integration step inside one control period

# The identified command→range model of earlier work (10 Hz), in powers of z⁻¹.
TF_NUM = (0.0, -9.694e-4, 1.0188e-3)
TF_DEN = (1.0, -1.990293, 0.990312)

Seed = int | np.random.SeedSequence | Sequence[np.random.SeedSequence] | None


class Plant(Protocol):
    """What the closed-loop runner needs from a plant (see the module docstring)."""

    dt: float
    batch: int

    def reset(self, seed: Seed = None) -> np.ndarray: ...
    def step(self, u: np.ndarray | float) -> np.ndarray: ...
    @property
    def altitude(self) -> np.ndarray: ...
    def on_setpoint_change(self) -> None: ...


def element_rngs(seed: Seed, batch: int) -> list[np.random.Generator]:
    """One generator per batch element: children of ``SeedSequence(seed)`` (an int, a
    SeedSequence or None), or the given list of ``batch`` SeedSequences as they are."""
    if isinstance(seed, Sequence):
        if len(seed) != batch or not all(isinstance(s, np.random.SeedSequence) for s in seed):
            raise InputError(f"a seed list needs {batch} SeedSequence(s), got {len(seed)} item(s)")
        children = list(seed)
    else:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        children = root.spawn(batch)
    return [np.random.default_rng(c) for c in children]


def _check_batch(batch: int, dt: float) -> None:
    if not (isinstance(batch, (int, np.integer)) and batch >= 1):
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise InputError(f"dt must be a positive number of seconds, got {dt!r}")


def _command(u: np.ndarray | float, batch: int) -> np.ndarray:
    """``u`` as a (batch,) float array: a scalar is broadcast, other shapes rejected."""
    arr = np.asarray(u, dtype=float)
    if arr.ndim == 0:
        arr = np.full(batch, float(arr))
    elif arr.shape != (batch,):
        raise InputError(f"command must be a scalar or shape ({batch},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("command has NaN or Inf values")
    return arr


def tf_step(y1: np.ndarray, y2: np.ndarray, u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """One step of the identified model: y_k from y_{k−1}, y_{k−2}, u_{k−1}, u_{k−2}."""
    b, a = TF_NUM, TF_DEN
    return -a[1] * y1 - a[2] * y2 + b[1] * u1 + b[2] * u2


class IdentifiedBlimp:
    """The identified linear model, command → range, at 10 Hz:

        y_k = 1.990293 y_{k−1} − 0.990312 y_{k−2} − 9.694e-4 u_{k−1} + 1.0188e-3 u_{k−2}

    with the command saturated to ±3.3 first (no dead zone, no sensor noise).

    Sign check: the steady-state gain is (b1 + b2)/(1 + a1 + a2) = +2.60 m per unit of
    command, so a positive command ends at a positive altitude — the convention the
    flight logs and the PID use. The poles are 0.9973 and 0.9930 (time constants 37 s
    and 14 s), so over the seconds a controller cares about the model is nearly a
    double integrator with a slow leak ("near-integrating"). Its zero lies at 1.051,
    outside the unit circle: a positive step first dips (to −9 mm after 2 s) and
    only turns positive after 3.8 s. With the opposite sign the PD flown on the
    real blimp (Kp 9, Kd 14) diverges on this model, so the printed sign is the
    intended one. Its dt is fixed by the identification: 0.1 s.
    """

    dt = 0.1

    def __init__(self, batch: int = 1):
        _check_batch(batch, self.dt)
        self.batch = int(batch)
        self.reset()

    def reset(self, seed: Seed = None) -> np.ndarray:
        """Rest at 0 with a zero command history. Deterministic: ``seed`` is unused."""
        self._y = np.zeros((2, self.batch))  # y_{k-1}, y_{k-2}
        self._u = np.zeros((2, self.batch))  # u_{k-1}, u_{k-2}
        return self.altitude

    def step(self, u: np.ndarray | float) -> np.ndarray:
        u = np.clip(_command(u, self.batch), -U_MAX, U_MAX)
        self._u = np.stack([u, self._u[0]])
        self._y = np.stack([tf_step(*self._y, *self._u), self._y[0]])
        return self.altitude

    @property
    def altitude(self) -> np.ndarray:
        return self._y[0].copy()

    def on_setpoint_change(self) -> None:
        """Nothing to do: the model has no disturbance."""


@dataclass(frozen=True)
class BlimpParams:
    """Physical blimp: z̈ = k_thrust·T − g_net − c_lin·ż − c_quad·ż|ż|, where the thrust T
    follows the dead-zoned, saturated command with a first-order lag."""

    k_thrust: float  # [m/s² per unit of command] upward acceleration per unit of thrust
    g_net: float  # [m/s²] net downward acceleration (weight minus buoyancy); > 0 sinks
    c_lin: float  # [1/s] linear drag
    c_quad: float  # [1/m] quadratic drag
    tau_motor: float  # [s] time constant of the thrust lag (motors, servo, loop delay)
    noise_std: float = 0.0  # [m] range-sensor noise before quantisation
    resolution: float = 0.01  # [m] range-sensor quantisation step (0: none)
    mass_kg: float = 0.14  # documentation only: the dynamics are per unit mass

    def __post_init__(self) -> None:
        values = (self.k_thrust, self.g_net, self.c_lin, self.c_quad, self.tau_motor,
                  self.noise_std, self.resolution, self.mass_kg)
        if not all(np.isfinite(values)):
            raise InputError(f"blimp parameters must be finite: {self}")
        if self.tau_motor <= 0 or min(self.c_lin, self.c_quad, self.noise_std, self.resolution) < 0:
            raise InputError(f"need tau_motor > 0 and non-negative drag, noise, resolution: {self}")


# From `python tools/fit_blimp.py --logs /work/shared/data/blimp_flights` (the ten
# published flight segments, 5 s multiple-shooting windows): k_thrust, c_lin (which
# ran to its bound 0) and tau_motor fitted; g_net and c_quad fixed because the logs
# cannot pin them down (reasons at FIXED in controllers/blimp_fit.py); noise_std from
# the scatter of the logged altitude around a local quadratic.
FITTED = BlimpParams(k_thrust=0.03864, g_net=0.002, c_lin=0.0, c_quad=0.25, tau_motor=0.1636,
                     noise_std=0.00341)


class Trajectory(NamedTuple):
    """States at every time stamp, each (..., T): altitude, velocity, thrust."""

    z: np.ndarray
    w: np.ndarray
    thrust: np.ndarray


def motor_command(u: np.ndarray | float) -> np.ndarray:
    """The thrust the motors settle at: 0 inside the dead zone, saturated at ±U_MAX."""
    u = np.asarray(u, dtype=float)
    return np.where(np.abs(u) < DEAD_ZONE, 0.0, np.clip(u, -U_MAX, U_MAX))


def lag(thrust: np.ndarray, target: np.ndarray, dt: np.ndarray | float, tau: float) -> np.ndarray:
    """The motor lag, exact over ``dt`` for a held target. Separate from ``advance``
    because it does not depend on the altitude: the fit runs it alone over whole
    logs to know the thrust at the start of each window."""
    return target + (thrust - target) * np.exp(-np.asarray(dt) / tau)


def advance(params: BlimpParams, z: np.ndarray, w: np.ndarray, thrust: np.ndarray,
            u: np.ndarray, dt: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance (z, w, thrust) by ``dt`` (scalar or per element) with ``u`` held.

    The only place the blimp's dynamics are written. Each element takes
    ceil(dt/MAX_SUBSTEP) equal substeps of its own, so its result never depends on
    the other elements (a batch equals a loop of singles, whatever their dt). The
    thrust lag is integrated exactly, the rest with semi-implicit Euler (velocity
    first), stable for the small drag of a blimp.
    """
    z, w, thrust = (np.array(v, dtype=float) for v in (z, w, thrust))
    target = motor_command(u)
    dt = np.broadcast_to(np.asarray(dt, dtype=float), z.shape)
    n = np.maximum(1, np.ceil(dt / MAX_SUBSTEP - 1e-9)).astype(int)
    h = dt / n
    uniform = bool(np.all(n == n.flat[0])) if n.size else True
    if uniform:  # the closed loop's case: one dt for all, no masking needed
        h = h.flat[0] if h.size else 0.0
    for i in range(int(n.max(initial=0))):
        new_thrust = lag(thrust, target, h, params.tau_motor)
        acc = (params.k_thrust * new_thrust - params.g_net - params.c_lin * w
               - params.c_quad * w * np.abs(w))
        new_w = w + h * acc
        if uniform:
            z, w, thrust = z + h * new_w, new_w, new_thrust
        else:
            active = i < n
            z = np.where(active, z + h * new_w, z)
            w = np.where(active, new_w, w)
            thrust = np.where(active, new_thrust, thrust)
    return z, w, thrust


def simulate(params: BlimpParams, t: np.ndarray, u: np.ndarray, z0: np.ndarray | float,
             w0: np.ndarray | float, thrust0: np.ndarray | float = 0.0) -> Trajectory:
    """Open-loop states at the time stamps ``t`` (..., T), command ``u[..., k]`` held
    from ``t[..., k]`` to ``t[..., k+1]`` (the logs' zero-order hold, irregular dt
    allowed); the first column is the initial state. Leading axes are a batch."""
    t = np.asarray(t, dtype=float)
    u = np.broadcast_to(np.asarray(u, dtype=float), t.shape)
    if t.shape[-1] < 1:
        raise InputError("simulate needs at least one time stamp")
    if np.any(np.diff(t, axis=-1) < 0):
        raise InputError("time stamps must not decrease")
    batch = t.shape[:-1]
    state = tuple(np.broadcast_to(np.asarray(v, dtype=float), batch) for v in (z0, w0, thrust0))
    out = np.empty((3,) + t.shape)
    out[:, ..., 0] = state
    for k in range(t.shape[-1] - 1):
        state = advance(params, *state, u[..., k], t[..., k + 1] - t[..., k])
        out[:, ..., k + 1] = state
    return Trajectory(*out)


class PhysicalBlimp:
    """The physical model with a range sensor: altitude + N(0, noise_std), quantised
    to ``resolution``. No ground contact is modelled (altitudes are relative to the
    start), and with ``g_net > 0`` a blimp left without thrust sinks."""

    def __init__(self, params: BlimpParams = FITTED, batch: int = 1, dt: float = 0.1):
        _check_batch(batch, dt)
        self.params, self.batch, self.dt = params, int(batch), float(dt)
        self.reset()

    def reset(self, seed: Seed = None) -> np.ndarray:
        self._rngs = element_rngs(seed, self.batch)
        self._z, self._w, self._thrust = np.zeros((3, self.batch))
        return self._measure()

    def step(self, u: np.ndarray | float) -> np.ndarray:
        u = _command(u, self.batch)
        self._z, self._w, self._thrust = advance(self.params, self._z, self._w, self._thrust, u,
                                                 self.dt)
        return self._measure()

    def _measure(self) -> np.ndarray:
        p = self.params
        noise = np.array([rng.standard_normal() for rng in self._rngs])
        meas = self._z + p.noise_std * noise
        return np.round(meas / p.resolution) * p.resolution if p.resolution else meas

    @property
    def altitude(self) -> np.ndarray:
        return self._z.copy()

    def on_setpoint_change(self) -> None:
        """Nothing to do: the blimp's buoyancy does not change with the set-point."""


class DoubleIntegrator:
    """ẍ = u + b, exact for a command held over each period; b ~ U(−disturbance,
    disturbance) per element, drawn at reset and redrawn at every set-point change
    (so a controller without an integral term cannot hold a set-point). No actuator
    limit and a noise-free measurement: it is the I-term's training plant."""

    def __init__(self, batch: int = 1, dt: float = 0.1, disturbance: float = 4.0):
        _check_batch(batch, dt)
        if not (np.isfinite(disturbance) and disturbance >= 0):
            raise InputError(f"disturbance must be a non-negative number, got {disturbance!r}")
        self.batch, self.dt, self.disturbance = int(batch), float(dt), float(disturbance)
        self.reset()

    def reset(self, seed: Seed = None) -> np.ndarray:
        self._rngs = element_rngs(seed, self.batch)
        self._x, self._v = np.zeros((2, self.batch))
        self.on_setpoint_change()
        return self.altitude

    def on_setpoint_change(self) -> None:
        """Redraw the disturbance of every element from its own generator."""
        self.b = np.array([rng.uniform(-self.disturbance, self.disturbance) for rng in self._rngs])

    def step(self, u: np.ndarray | float) -> np.ndarray:
        acc = _command(u, self.batch) + self.b
        self._x = self._x + self._v * self.dt + 0.5 * acc * self.dt ** 2
        self._v = self._v + acc * self.dt
        return self.altitude

    @property
    def altitude(self) -> np.ndarray:
        return self._x.copy()

"""Fit the physical blimp model (``plants.BlimpParams``) to real flight logs.

Open-loop simulation of a 70 s log from its first sample drifts (the plant is
nearly a double integrator, so a small error in velocity or buoyancy grows
quadratically). The fit therefore uses multiple shooting: each log is cut into
windows of ~5 s, each window starts from the logged state and is simulated with
the logged commands at the logged (irregular) time stamps, and the squared
altitude errors of all windows are summed.

Window start state: altitude and velocity from a local quadratic fit of ``meas``
over ±``smooth_s`` (1 s) around the start (the raw sample carries the 1 cm
quantisation; a finite difference of it would be mostly quantisation). The thrust
at the start is the motor lag run over the log's commands from its first sample
(the lag does not depend on the altitude, so this is exact given the parameters).

``meas`` is relative to each file's pre-step set-point (an unknown constant
offset per file); the windows only compare differences from their start, so the
offset cancels.

The identified TF model is scored on the same windows for comparison: it is a
10 Hz model, so the commands are sampled on a 10 Hz grid from each window start
(zero-order hold of the logged commands, saturated at ±3.3), the model runs in
deviation from the start altitude with its past output set from the same
velocity estimate (y₋₁ = −w₀·0.1 s) and its past inputs from the logged commands
before the window, and its output is interpolated at the logged time stamps.

Limits, seen on the ten published segments: the climb after an upward step is
about twice as fast as the sink after a downward one for the same saturated
command, which a symmetric thrust gain cannot follow (it is the largest window
error); tau_motor depends on the smoothing span (0.07 s at ±0.5 s, 0.16 s at ±1 s,
0.34 s at ±1.5 s: the smoothed start velocity lags behind fast changes, and on
noise-free synthetic data ±1 s overestimates tau by ~20 %, ±0.3 s recovers it to
~3 %), while k_thrust stays within 0.037–0.040.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from edgesnn.controllers.flight_logs import FlightLog
from edgesnn.controllers.plants import (U_MAX, BlimpParams, lag, motor_command, simulate,
                                        tf_step)
from edgesnn.errors import DataError, require

__all__ = ["FitReport", "Windows", "make_windows", "fit_blimp", "window_rmse",
           "tf_window_rmse", "predict_physical", "predict_tf", "sensor_noise",
           "local_quadratic", "FIT_NAMES", "FIXED", "FIXED_REASONS"]

FIT_NAMES = ("k_thrust", "g_net", "c_lin", "c_quad", "tau_motor")
TF_DT = 0.1  # the identified model's sample period [s]
SMOOTH_S = 1.0  # half-width of the local quadratic fits [s]

# Parameters the published logs cannot pin down, held fixed in the real-data fit
# (fit_blimp's default). Why, from fits of the ten published segments:
FIXED: dict[str, float] = {
    # Free, the fit says slightly *positive* buoyancy (-0.0036 m/s²), but the sign
    # follows the assumed thrust map: with downward thrust half as effective as
    # upward (the steps show ~2x higher climb than sink speeds for the same
    # saturated command) the same fit gives +0.0033. So g_net is confounded with a
    # thrust offset/asymmetry this model does not have. The logged hover commands
    # average within about ±0.1 (the dead zone), so |g_net| ≲ 0.1·k_thrust ≈ 0.004;
    # the blimp carries an added mass to be negatively buoyant: half that bound.
    "g_net": 0.002,
    # Climb and sink speeds stay below 0.4 m/s, where quadratic drag is at most a few
    # hundredths of a m/s²; the free fit runs to the bound 0, and with g_net fixed the
    # cost at 0.25 is only 4.5 % above that at 0. Fixed at ½·ρ·C_d·A / m_eff for a ~0.4 m
    # envelope (ρ 1.2 kg/m³, C_d 0.5, A 0.13 m², m_eff 0.16 kg with added air mass),
    # which also brings the simulated PD overshoot closer to the logged one.
    "c_quad": 0.25,
}
FIXED_REASONS = {
    "g_net": "confounded with a thrust offset/asymmetry; hover commands bound it to ~0.004",
    "c_quad": "speeds < 0.4 m/s: free fit runs to 0 on a flat cost; geometric estimate",
}

# Starting point and bounds of the search. g_net may come out negative (positive
# buoyancy) so that the data, not the bound, decide its sign.
_INITIAL = {"k_thrust": 0.05, "g_net": 0.0, "c_lin": 0.2, "c_quad": 0.5, "tau_motor": 0.5}
_BOUNDS = {"k_thrust": (1e-4, 10.0), "g_net": (-1.0, 1.0), "c_lin": (0.0, 10.0),
           "c_quad": (0.0, 100.0), "tau_motor": (0.01, 5.0)}


def local_quadratic(t: np.ndarray, z: np.ndarray, at: float,
                    half_width: float = SMOOTH_S) -> tuple[float, float]:
    """Value and slope at ``at`` of a least-squares quadratic through the samples
    within ±``half_width`` s (a smoothed altitude and velocity from quantised data).
    Where a loop stall leaves fewer than three distinct time stamps, the span is
    widened until there are three."""
    span = half_width
    while True:
        near = np.abs(t - at) <= span
        if len(np.unique(np.round(t[near], 3))) >= 3:  # burst rows share a time stamp
            break
        if near.all():
            raise DataError(f"too few distinct time stamps to estimate a velocity at t={at:.2f} s")
        span *= 1.5
    c = np.polynomial.polynomial.polyfit(t[near] - at, z[near], 2)
    return float(c[0]), float(c[1])


def sensor_noise(logs: list[FlightLog], resolution: float = 0.01) -> float:
    """Range-sensor noise before quantisation [m]: the scatter of ``meas`` around a
    local quadratic (±1 s), minus the variance quantisation alone adds (res²/12)."""
    residuals = []
    for log in logs:
        t, z = log["time"], log["meas"]
        for k in range(len(t)):
            near = np.abs(t - t[k]) <= SMOOTH_S
            n = np.count_nonzero(near)
            if n < 8:
                continue
            c = np.polynomial.polynomial.polyfit(t[near] - t[k], z[near], 2)
            # leave-in residual, inflated by the quadratic's 3 degrees of freedom
            residuals.append((z[k] - c[0]) * math.sqrt(n / (n - 3)))
    if not residuals:
        raise DataError("logs too short to estimate the sensor noise")
    var = float(np.mean(np.square(residuals))) - resolution ** 2 / 12
    return math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class Windows:
    """Multiple-shooting windows of several logs, stacked: every array is (W, L) with
    L samples per window (time re-zeroed at the window start), or (W,)."""

    log_index: np.ndarray  # which log each window comes from
    start_row: np.ndarray
    t: np.ndarray
    u: np.ndarray  # logged command at each sample (held until the next)
    meas: np.ndarray
    z0: np.ndarray  # smoothed start altitude
    w0: np.ndarray  # smoothed start velocity
    u_prev: np.ndarray  # the command in force 0.1 s before the start (the TF's u₋₁)
    names: tuple[str, ...]
    log_t: tuple[np.ndarray, ...] = field(repr=False)  # whole logs, for the motor lag
    log_u: tuple[np.ndarray, ...] = field(repr=False)

    def __len__(self) -> int:
        return len(self.z0)


def make_windows(logs: list[FlightLog], window_s: float = 5.0,
                 smooth_s: float = SMOOTH_S) -> Windows:
    """Cut every log into consecutive windows of round(window_s / 0.1) samples (the
    loop's nominal 10 Hz; with the irregular timing a window spans ~``window_s``).
    Start states come from local quadratics over ±``smooth_s``: wide enough to
    average the 1 cm steps of real logs, narrow enough not to blur the response to
    a command step (noise-free data want it narrow)."""
    rows = int(round(window_s / TF_DT))
    if rows < 3:
        raise DataError(f"window_s={window_s} gives fewer than 3 samples per window")
    parts: dict[str, list] = {k: [] for k in ("log_index", "start_row", "t", "u", "meas", "z0",
                                              "w0", "u_prev")}
    for i, log in enumerate(logs):
        t, u, meas = log["time"], log.flown_command, log["meas"]
        for s in range(0, len(t) - rows + 1, rows):
            z0, w0 = local_quadratic(t, meas, t[s], smooth_s)
            u_prev = u[max(0, np.searchsorted(t, t[s] - TF_DT, "right") - 1)]
            for key, value in (("log_index", i), ("start_row", s), ("t", t[s:s + rows] - t[s]),
                               ("u", u[s:s + rows]), ("meas", meas[s:s + rows]), ("z0", z0),
                               ("w0", w0), ("u_prev", u_prev)):
                parts[key].append(value)
    if not parts["z0"]:
        raise DataError(f"no log is long enough for a {window_s} s window")
    return Windows(**{k: np.array(v) for k, v in parts.items()},
                   names=tuple(log.name for log in logs),
                   log_t=tuple(log["time"] for log in logs),
                   log_u=tuple(log.flown_command for log in logs))


def _window_thrust(params: BlimpParams, win: Windows) -> np.ndarray:
    """Thrust at every window start: the motor lag over each whole log, starting
    settled at the first logged command."""
    out = np.empty(len(win))
    for i, (t, u) in enumerate(zip(win.log_t, win.log_u)):
        target = motor_command(u)
        thrust = np.empty(len(t))
        thrust[0] = target[0]
        decay_dt = np.diff(t)
        for k in range(len(t) - 1):
            thrust[k + 1] = lag(thrust[k], target[k], decay_dt[k], params.tau_motor)
        mine = win.log_index == i
        out[mine] = thrust[win.start_row[mine]]
    return out


def predict_physical(params: BlimpParams, win: Windows) -> np.ndarray:
    """The physical model's altitude at every window sample, (W, L)."""
    return simulate(params, win.t, win.u, win.z0, win.w0, _window_thrust(params, win)).z


def predict_tf(win: Windows) -> np.ndarray:
    """The identified TF model's altitude at every window sample, (W, L) (run at
    10 Hz and interpolated; see the module docstring)."""
    steps = int(math.ceil(win.t[:, -1].max() / TF_DT)) + 1
    grid = np.arange(steps) * TF_DT
    idx = np.stack([np.searchsorted(t, grid + 1e-9, "right") - 1 for t in win.t])
    u = np.clip(np.take_along_axis(win.u, idx, axis=1), -U_MAX, U_MAX)
    y = np.zeros((len(win), steps))
    y1, y2 = np.zeros(len(win)), -win.w0 * TF_DT  # deviation from z0 now and 0.1 s ago
    u1 = np.clip(win.u_prev, -U_MAX, U_MAX)
    for k in range(1, steps):
        u1, u2 = u[:, k - 1], u1
        y1, y2 = tf_step(y1, y2, u1, u2), y1
        y[:, k] = y1
    return np.stack([np.interp(t, grid, row) for t, row in zip(win.t, y)]) + win.z0[:, None]


def _errors(prediction: np.ndarray, win: Windows) -> np.ndarray:
    """Predicted minus logged altitude, (W, L−1): the start sample is not scored."""
    return prediction[:, 1:] - win.meas[:, 1:]


def _per_log_rmse(errors: np.ndarray, win: Windows) -> list[float]:
    return [float(np.sqrt(np.mean(errors[win.log_index == i] ** 2)))
            for i in range(len(win.names))]


def window_rmse(params: BlimpParams, logs: list[FlightLog], window_s: float = 5.0) -> list[float]:
    """Multiple-shooting altitude RMSE [m] of the physical model, one per log."""
    win = make_windows(logs, window_s)
    return _per_log_rmse(_errors(predict_physical(params, win), win), win)


def tf_window_rmse(logs: list[FlightLog], window_s: float = 5.0) -> list[float]:
    """The same score for the identified TF model, one per log."""
    win = make_windows(logs, window_s)
    return _per_log_rmse(_errors(predict_tf(win), win), win)


@dataclass
class FitReport:
    """Fitted parameters and how well they (and the identified TF model) predict
    the logs over the multiple-shooting windows."""

    params: BlimpParams
    names: list[str]
    windows: list[int]  # per log
    rmse_physical: list[float]  # per log [m]
    rmse_tf: list[float]  # per log [m]
    window_s: float
    fixed: dict[str, float]  # parameters held at a given value instead of fitted
    cost: float  # sum of squared window errors [m²]

    @property
    def overall_physical(self) -> float:
        return _pooled(self.rmse_physical, self.windows)

    @property
    def overall_tf(self) -> float:
        return _pooled(self.rmse_tf, self.windows)

    def table(self) -> str:
        """The parameters and the per-log RMSE of both models, as printable text."""
        lines = ["parameter        value"]
        for f in dataclasses.fields(self.params):
            note = (f"  fixed: {FIXED_REASONS.get(f.name, 'given')}" if f.name in self.fixed
                    else "  from the sensor scatter" if f.name == "noise_std" else "")
            lines.append(f"{f.name:<14}{getattr(self.params, f.name):>10.5g}{note}")
        width = max(len(n) for n in self.names) + 2
        head = f"\n{'log':<{width}}{'windows':>8}{'physical cm':>13}{'TF cm':>9}"
        lines += [head, "-" * len(head.strip())]
        for row in zip(self.names, self.windows, self.rmse_physical, self.rmse_tf):
            lines.append(f"{row[0]:<{width}}{row[1]:>8}{100 * row[2]:>13.2f}{100 * row[3]:>9.2f}")
        lines.append(f"{'all':<{width}}{sum(self.windows):>8}{100 * self.overall_physical:>13.2f}"
                     f"{100 * self.overall_tf:>9.2f}")
        return "\n".join(lines)


def _pooled(rmse: list[float], counts: list[int]) -> float:
    return float(np.sqrt(np.average(np.square(rmse), weights=counts)))


def fit_blimp(logs: list[FlightLog], window_s: float = 5.0, fixed: dict[str, float] | None = None,
              noise_std: float | None = None, resolution: float = 0.01,
              smooth_s: float = SMOOTH_S) -> FitReport:
    """Least-squares fit of the parameters in FIT_NAMES not in ``fixed`` (default
    ``FIXED``) over the windows of all logs; ``noise_std`` defaults to the estimate
    from the logs' scatter (``sensor_noise``); ``smooth_s`` as in ``make_windows``."""
    optimize = require("scipy.optimize", "evolve")
    fixed = dict(FIXED if fixed is None else fixed)
    unknown = set(fixed) - set(FIT_NAMES)
    if unknown:
        raise DataError(f"cannot fix unknown parameter(s) {sorted(unknown)}; "
                        f"choose from {FIT_NAMES}")
    free = [n for n in FIT_NAMES if n not in fixed]
    if noise_std is None:
        noise_std = sensor_noise(logs, resolution)
    win = make_windows(logs, window_s, smooth_s)

    def params_of(x: np.ndarray) -> BlimpParams:
        values = fixed | dict(zip(free, map(float, x)))
        return BlimpParams(**values, noise_std=noise_std, resolution=resolution)

    def residuals(x: np.ndarray) -> np.ndarray:
        return _errors(predict_physical(params_of(x), win), win).ravel()

    if free:
        lower, upper = zip(*(_BOUNDS[n] for n in free))
        x = optimize.least_squares(residuals, [_INITIAL[n] for n in free],
                                   bounds=(lower, upper), x_scale="jac").x
    else:
        x = np.empty(0)
    params = params_of(x)
    errors = _errors(predict_physical(params, win), win)
    return FitReport(
        params=params, names=list(win.names),
        windows=[int(np.count_nonzero(win.log_index == i)) for i in range(len(logs))],
        rmse_physical=_per_log_rmse(errors, win),
        rmse_tf=_per_log_rmse(_errors(predict_tf(win), win), win),
        window_s=window_s, fixed=fixed, cost=float(np.sum(errors ** 2)))

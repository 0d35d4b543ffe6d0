"""A spiking winner-take-all place-recognition module (Diehl & Cook 2015, as used by
VPRSNN, Hussaini et al. ICRA 2023). Optional: the ensemble works without it.

One module learns one region (default 25 places) from a few reference traverses.
Each image (inputs pixels in [0, 1], e.g. a 28×28 patch-normalised image) is shown
for ``present_ms`` as independent Poisson spike trains, pixel p firing at
p · ``max_rate_hz`` (D&C: 255/4 = 63.75 Hz for a white pixel). The inputs drive
``neurons`` excitatory LIF neurons, all to all. They are conductance-based, as in the
paper: the reversal potentials bound v, so the strong lateral inhibition saturates
instead of driving v arbitrarily low (a current-based copy would need retuning):

    τ_m dv/dt = (E_rest − v) + g_e (E_exc − v) + g_i (E_inh − v)
    τ_e dg_e/dt = −g_e,   g_e += w_ij   on an input spike of pixel i
    τ_i dg_i/dt = −g_i,   g_i += w_inh  on a spike of any *other* excitatory neuron
    spike when v > v_thresh + θ_j;  then v = v_reset, held for ``refractory_ms``
    θ_j += θ⁺ on each spike of j;  τ_θ dθ/dt = −θ  (training only; frozen at test)

Lateral inhibition. D&C pair every excitatory neuron with an inhibitory one (weight
10.4), which fires within a millisecond of its partner and inhibits every other
excitatory neuron (weight 17). Here that population is folded into the g_i term: a
spike of neuron j at step t adds ``inhibition`` to g_i of every other neuron, felt
from step t+1 (the one-step delay stands in for the inhibitory neuron's own latency).

Integration. Conductances decay exactly (×exp(−dt/τ)) and v takes the exact
exponential step for the step-averaged conductances ḡ = g · τ/dt · (1 − exp(−dt/τ)):

    g = 1 + ḡ_e + ḡ_i,  v∞ = (E_rest + ḡ_e E_exc + ḡ_i E_inh) / g
    v ← v∞ + (v − v∞) · exp(−g dt / τ_m)

so every input spike delivers the same charge whatever dt (with τ_e = 1 ms, plain
Euler at dt = 1 ms would over-count it by 58 %) and no step can overshoot.

Learning (training only): D&C's triplet STDP on input→excitatory weights (not a pair
rule: potentiation needs a post burst, which keeps single chance spikes from learning).
Traces are nearest-spike — *set* to 1 at a spike, then decaying: x_i of input i
(τ_pre = 20 ms), y1_j and y2_j of neuron j (τ_post1 = 20 ms, τ_post2 = 40 ms):

    pre spike of i:   w_ij ← max(0, w_ij − ν_pre · y1_j)
    post spike of j:  w_ij ← min(w_max, w_ij + ν_post · x_i · y2_j)   (y2_j from just
                      before this spike; then y1_j = y2_j = 1)

Before every presentation each neuron's incoming weights are rescaled to sum to
``weight_sum`` · inputs/784 (78 for 784 inputs). The rescaling respects w ≤ w_max by
water-filling (weights that would exceed w_max are pinned at it and the rest rescaled),
so the weights stay in [0, w_max] *and* each row has the target sum (D&C rescale
only and let the next STDP update clip).

Rest. Instead of simulating the 150 ms rest, the state (v, g_e, g_i, traces,
refractory counters) is reset to rest after each presentation; only θ decays over
``rest_ms`` (θ's decay, τ_θ = 10⁴ s, is applied once per presentation plus rest).
Each presentation is then independent of the previous image, which is what
lets the test-time pass run a whole batch of images in parallel. (Over a real 150 ms
rest v would keep ~22 % of its deviation, τ_m = 100 ms; the rest exists to erase it.)

D&C re-present an image at a higher input rate (+``retry_rate_step_hz`` each time)
when the excitatory layer fired fewer than ``min_spikes`` spikes; so do training and
``activity`` here, at most ``max_retries`` times (counts of the last presentation).

After training each neuron is labelled with the place whose training images (averaged
over traverses) made it fire most in a test-mode pass; neurons that never fire get -1.
All randomness (initial weights, presentation order, Poisson spikes) comes from
generators spawned from ``np.random.SeedSequence(seed)``, never from the global state.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from edgesnn.errors import InputError, ModelFileError

REFERENCE_INPUTS = 784  # weight_sum is stated for 28×28 inputs and scales with the input count
_TIME_CHUNK = 32        # test-time steps whose input drive is computed in one matrix product
_BATCH_CHUNK = 128      # test-time images simulated together (bounds memory)


@dataclass(frozen=True)
class SpikingConfig:
    """Hyperparameters of one module. Defaults follow Diehl & Cook (2015) except
    ``epochs`` and ``dt_ms`` (see below)."""

    neurons: int = 400
    # Passes over the training images (traverses × places each, reshuffled per pass).
    # Measured on synthetic 25-place modules (smooth random textures, 2 noisy traverses,
    # noisy queries): top-1 accuracy 0.5-0.8 after 3 passes, 0.6-0.96 after 5, 0.8-1.0
    # after 8 and no better after 12 or 16; each pass costs ~1 s for 400 neurons.
    epochs: int = 8
    present_ms: float = 350.0
    rest_ms: float = 150.0         # not simulated: state is reset (only θ decays over it)
    # D&C use 0.5 ms; with the step-averaged conductances 1 ms gives the same charge per
    # input spike at ~60 % of the cost. The same weights fire ~25 % more spikes at 1 ms
    # (coarser inhibition delay and refractory timing) with the same place accuracy.
    dt_ms: float = 1.0
    max_rate_hz: float = 63.75     # rate of a pixel of value 1
    retry_rate_step_hz: float = 31.875  # D&C: input intensity +1 → +255/8 Hz
    min_spikes: int = 5            # fewer excitatory spikes in a presentation → retry
    max_retries: int = 4
    theta_plus_mv: float = 0.05
    tau_theta_ms: float = 1e7
    weight_sum: float = 78.0       # per neuron, for 784 inputs
    weight_max: float = 1.0
    init_weight_max: float = 0.3   # initial weights ~ U(0, init_weight_max), then normalised
    v_rest_mv: float = -65.0
    v_reset_mv: float = -65.0
    v_thresh_mv: float = -52.0     # effective threshold: v_thresh + θ
    refractory_ms: float = 5.0
    e_exc_mv: float = 0.0
    e_inh_mv: float = -100.0
    tau_mem_ms: float = 100.0
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    inhibition: float = 17.0       # g_i added to every other neuron per excitatory spike
    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    nu_pre: float = 1e-4
    nu_post: float = 1e-2

    def __post_init__(self):
        for name in ("neurons", "epochs", "min_spikes", "max_retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer; got {value!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{f.name} must be a number; got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite; got {value!r}")
        if self.neurons < 1 or self.epochs < 1:
            raise ValueError("neurons and epochs must be at least 1")
        if self.min_spikes < 0 or self.max_retries < 0:
            raise ValueError("min_spikes and max_retries must not be negative")
        positive = ("present_ms", "dt_ms", "max_rate_hz", "tau_theta_ms", "weight_sum", "weight_max",
                    "init_weight_max", "tau_mem_ms", "tau_ge_ms", "tau_gi_ms", "tau_pre_ms",
                    "tau_post1_ms", "tau_post2_ms")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)!r}")
        for name in ("rest_ms", "retry_rate_step_hz", "theta_plus_mv", "refractory_ms", "inhibition",
                     "nu_pre", "nu_post"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative; got {getattr(self, name)!r}")
        if self.dt_ms > self.present_ms:
            raise ValueError(f"dt_ms ({self.dt_ms}) is longer than present_ms ({self.present_ms})")
        if self.weight_sum > REFERENCE_INPUTS * self.weight_max:
            raise ValueError(f"weight_sum {self.weight_sum} cannot be reached with weights ≤ "
                             f"weight_max {self.weight_max} ({REFERENCE_INPUTS} inputs)")
        if not self.e_inh_mv < self.v_reset_mv < self.v_thresh_mv < self.e_exc_mv:
            raise ValueError("need e_inh_mv < v_reset_mv < v_thresh_mv < e_exc_mv")
        if not self.e_inh_mv <= self.v_rest_mv <= self.e_exc_mv:
            raise ValueError("v_rest_mv must lie between e_inh_mv and e_exc_mv")

    @property
    def steps(self) -> int:
        """Simulation steps per presentation."""
        return max(1, round(self.present_ms / self.dt_ms))

    def to_metadata(self) -> dict:
        """JSON-ready dict of every field (for a model file's metadata)."""
        return {k: (int(v) if isinstance(v, (int, np.integer)) else float(v))
                for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, d: dict) -> SpikingConfig:
        """Inverse of ``to_metadata``; any missing, unknown or invalid field is a
        ModelFileError (the file is not one this version wrote)."""
        if not isinstance(d, dict):
            raise ModelFileError(f"spiking module config must be a dict; got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - d.keys()), sorted(d.keys() - names)
        if missing or unknown:
            raise ModelFileError(f"spiking module config: missing fields {missing}, unknown fields "
                                 f"{unknown} (written by a different edgesnn version?)")
        try:
            return cls(**d)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"spiking module config: {exc}") from None


# ------------------------------------------------------------------------- dynamics


class _Constants:
    """Per-step factors derived from a config once, as float32 scalars so that array
    arithmetic stays float32."""

    def __init__(self, c: SpikingConfig):
        f = np.float32
        dt = c.dt_ms
        de, di = math.exp(-dt / c.tau_ge_ms), math.exp(-dt / c.tau_gi_ms)
        self.de, self.di = f(de), f(di)
        # ḡ/g at the start of the step: the mean of an exponential decay over dt
        self.ae, self.ai = f(c.tau_ge_ms / dt * (1 - de)), f(c.tau_gi_ms / dt * (1 - di))
        self.dpre = math.exp(-dt / c.tau_pre_ms)
        self.dpost1, self.dpost2 = f(math.exp(-dt / c.tau_post1_ms)), math.exp(-dt / c.tau_post2_ms)
        self.refractory = round(c.refractory_ms / dt)
        self.minus_dt_over_tau = f(-dt / c.tau_mem_ms)
        self.theta_decay = f(math.exp(-(c.present_ms + c.rest_ms) / c.tau_theta_ms))
        self.e_rest, self.e_exc, self.e_inh = f(c.v_rest_mv), f(c.e_exc_mv), f(c.e_inh_mv)
        self.v_reset, self.inhibition = f(c.v_reset_mv), f(c.inhibition)
        self.c = c


def _membrane(k: _Constants, v, ge, gi, refractory_until, t: int, buf) -> None:
    """One exact exponential step of v (in place) for the step-averaged conductances;
    neurons still refractory at step ``t`` stay at reset. ``buf``: three scratch arrays
    shaped like v (the training loop runs this ~10⁵ times; allocation would dominate)."""
    gbe, gbi, g = buf
    np.multiply(ge, k.ae, out=gbe)
    np.multiply(gi, k.ai, out=gbi)
    np.add(gbe, gbi, out=g)
    g += 1
    gbe *= k.e_exc
    gbi *= k.e_inh
    gbe += gbi
    gbe += k.e_rest
    gbe /= g                         # v∞
    g *= k.minus_dt_over_tau
    np.exp(g, out=g)
    v -= gbe
    v *= g
    v += gbe
    np.copyto(v, k.v_reset, where=refractory_until > t)


def _rates(c: SpikingConfig, x: np.ndarray, retry: int) -> np.ndarray:
    """Per-step spike probability of each pixel on presentation attempt ``retry``."""
    hz = c.max_rate_hz + retry * c.retry_rate_step_hz
    return np.minimum(x * (hz * c.dt_ms / 1000.0), 1.0).astype(np.float32)


def _normalise(wt: np.ndarray, target: float, w_max: float) -> np.ndarray:
    """Rescale each column of ``wt`` (inputs, neurons) to sum to ``target`` with every
    weight ≤ w_max: find s with Σ_i min(s·w_i, w_max) = target. Saturated weights only
    join the pinned set as s grows, so a few rounds settle it. A column with fewer than
    target/w_max non-zero weights ends with all of them at w_max (sum below target)."""
    total = wt.sum(axis=0, dtype=np.float64)
    scale = np.divide(target, total, out=np.zeros_like(total), where=total > 0)
    hit = np.flatnonzero(wt.max(axis=0) * scale > w_max)
    out = (wt * scale.astype(np.float32)).astype(np.float32)
    if hit.size:  # only the columns that would exceed w_max need the iteration
        w, s = wt[:, hit].astype(np.float64), scale[hit]
        for _ in range(w.shape[0]):
            sat = w * s >= w_max
            free = np.where(sat, 0.0, w).sum(axis=0)
            room = target - sat.sum(axis=0) * w_max
            new = np.divide(room, free, out=s.copy(), where=free > 0)
            if np.array_equal(new, s):
                break
            s = new
        out[:, hit] = np.minimum(w * s, w_max)
    return out


def _weight_target(c: SpikingConfig, inputs: int) -> float:
    return c.weight_sum * inputs / REFERENCE_INPUTS


def _present_batch(k: _Constants, wt: np.ndarray, thr: np.ndarray, p: np.ndarray,
                   rngs: list) -> np.ndarray:
    """Test mode: images with per-pixel spike probabilities ``p`` (B, inputs), one
    generator each, through frozen weights ``wt`` (inputs, neurons) and thresholds
    ``thr`` (neurons,). Returns (B, neurons) spike counts."""
    c = k.c
    b, n = p.shape[0], wt.shape[1]
    v = np.full((b, n), c.v_rest_mv, np.float32)
    ge, gi = np.zeros((b, n), np.float32), np.zeros((b, n), np.float32)
    until = np.zeros((b, n), np.int64)  # refractory until this step (exclusive)
    buf = tuple(np.empty((b, n), np.float32) for _ in range(3))
    counts = np.zeros((b, n), np.int32)
    steps = c.steps
    for start in range(0, steps, _TIME_CHUNK):
        tc = min(_TIME_CHUNK, steps - start)
        # g_e only depends on the input (no excitatory recurrence), so a chunk's drive is
        # one matrix product; each image draws its own spikes, so its activity does not
        # depend on which batch it is in
        spikes = np.stack([r.random((tc, p.shape[1]), dtype=np.float32) < p[i]
                           for i, r in enumerate(rngs)])
        drive = spikes.astype(np.float32) @ wt  # (B, tc, neurons)
        for j in range(tc):
            t = start + j
            _membrane(k, v, ge, gi, until, t, buf)
            ge *= k.de
            gi *= k.di
            fired = v > thr
            if fired.any():
                v[fired] = k.v_reset
                until[fired] = t + 1 + k.refractory
                counts += fired
                gi += k.inhibition * (fired.sum(axis=1, keepdims=True) - fired)
            ge += drive[:, j]
    return counts


class _Trainer:
    """Sequential training state: weights (transposed, inputs × neurons, so an input
    spike reads and writes contiguous rows) and θ."""

    def __init__(self, c: SpikingConfig, inputs: int, rng: np.random.Generator):
        self.k = _Constants(c)
        self.c = c
        self.target = _weight_target(c, inputs)
        self.wt = (rng.random((inputs, c.neurons)) * c.init_weight_max).astype(np.float32)
        self.theta = np.zeros(c.neurons, np.float32)

    def present(self, x: np.ndarray, rng: np.random.Generator) -> int:
        """Show one image with plasticity, retrying at higher rates while the layer
        stays (nearly) silent. Returns the spike count of the last attempt."""
        c = self.c
        for retry in range(c.max_retries + 1):
            self.wt = _normalise(self.wt, self.target, c.weight_max)
            total = self._present_once(_rates(c, x, retry), rng)
            self.theta *= self.k.theta_decay
            if total >= c.min_spikes:
                break
        return total

    def _present_once(self, p: np.ndarray, rng: np.random.Generator) -> int:
        c, k, wt, theta = self.c, self.k, self.wt, self.theta
        n, steps = c.neurons, c.steps
        t_idx, i_idx = np.nonzero(rng.random((steps, p.size), dtype=np.float32) < p)
        bounds = np.searchsorted(t_idx, np.arange(steps + 1)).tolist()
        v = np.full(n, c.v_rest_mv, np.float32)
        ge, gi = np.zeros(n, np.float32), np.zeros(n, np.float32)
        buf = tuple(np.empty(n, np.float32) for _ in range(3))
        thr = (c.v_thresh_mv + theta).astype(np.float32)
        until = np.zeros(n, np.int64)
        # x_i and y2_j are only read at a post spike, so they are kept as the step of the
        # last spike and evaluated then; y1 is read at every input spike and decays here
        last_pre = np.full(p.size, -10**9, np.int64)
        last_post = np.full(n, -10**9, np.int64)
        post1 = np.zeros(n, np.float32)
        above = np.empty(n, bool)
        total, depress_from = 0, steps  # no depression before the first post spike
        for t in range(steps):
            _membrane(k, v, ge, gi, until, t, buf)
            ge *= k.de
            gi *= k.di
            if t > depress_from:
                post1 *= k.dpost1
            if np.greater(v, thr, out=above).any():
                fired = np.flatnonzero(above)
                total += fired.size
                v[fired] = k.v_reset
                until[fired] = t + 1 + k.refractory
                theta[fired] += c.theta_plus_mv
                thr[fired] += c.theta_plus_mv
                gi += k.inhibition * fired.size
                gi[fired] -= k.inhibition  # no self-inhibition
                pre = (k.dpre ** (t - last_pre)).astype(np.float32)
                post2 = (k.dpost2 ** (t - last_post[fired])).astype(np.float32)
                cols = wt[:, fired] + c.nu_post * pre[:, None] * post2
                wt[:, fired] = np.minimum(cols, c.weight_max)
                post1[fired] = 1.0
                last_post[fired] = t
                depress_from = min(depress_from, t)
            lo, hi = bounds[t], bounds[t + 1]
            if hi > lo:
                idx = i_idx[lo:hi]
                rows = wt[idx]
                ge += rows.sum(axis=0)
                last_pre[idx] = t
                if t >= depress_from:
                    rows -= c.nu_pre * post1
                    np.maximum(rows, 0.0, out=rows)
                    wt[idx] = rows
        return total


# --------------------------------------------------------------------------- module


def _check_images(x, name: str, ndim: int, inputs: int | None = None) -> np.ndarray:
    """Validate an image array (pixels in [0, 1]) and return it as float32."""
    x = np.asarray(x)
    shape = "(traverses, places, inputs)" if ndim == 3 else "(images, inputs)"
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
                                 or x.dtype == bool):
        raise InputError(f"{name} must be a numeric array; got dtype {x.dtype}")
    if x.ndim != ndim:
        raise InputError(f"{name} must have shape {shape}; got {x.ndim}-D shape {x.shape}")
    if x.size == 0:
        raise InputError(f"{name} is empty (shape {x.shape})")
    if inputs is not None and x.shape[-1] != inputs:
        raise InputError(f"{name} has {x.shape[-1]} inputs per image; this module takes {inputs}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{name} contains NaN or Inf ({int((~np.isfinite(x)).sum())} values)")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise InputError(f"{name} values must lie in [0, 1] (patch-normalised pixels); got "
                         f"[{lo:g}, {hi:g}]")
    return x


@dataclass
class SpikingModule:
    """A trained module: frozen weights and thresholds plus each neuron's place label."""

    config: SpikingConfig
    weights: np.ndarray       # (neurons, inputs) float32, rows normalised
    theta: np.ndarray         # (neurons,) float32 adaptive threshold (mV), frozen
    neuron_place: np.ndarray  # (neurons,) int32 local place index, -1 unassigned
    n_places: int

    @property
    def inputs(self) -> int:
        return int(self.weights.shape[1])

    def activity(self, x: np.ndarray, seed: int = 0) -> np.ndarray:
        """(N, inputs) images in [0, 1] → (N, neurons) float32 spike counts in test mode
        (no plasticity, θ frozen). Image i draws its Poisson spikes from the i-th
        generator spawned from ``SeedSequence(seed)``, so the result is deterministic
        for a seed and (up to float summation order) independent of the batch size.
        Images that fire fewer than ``min_spikes`` spikes are re-presented at higher rate.

        Most of the time goes into one BLAS product per 32 steps; on a busy 2-core machine
        set OPENBLAS_NUM_THREADS=1 (100 images: 0.7 s with one thread, 25 s with two)."""
        x = _check_images(x, "x", 2, self.inputs)
        return _activity(self, x, np.random.SeedSequence(seed))

    def place_scores(self, activity: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """(N, neurons) spike counts → (N, n_places) float32. A place's score is the
        mean count of its kept labelled neurons (``keep``: bool (neurons,), default all);
        a place with no kept neuron scores 0."""
        a = np.asarray(activity)
        n = self.config.neurons
        if a.ndim != 2 or a.shape[1] != n:
            raise InputError(f"activity must have shape (N, {n}); got {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
            raise InputError("activity must be finite numbers")
        if keep is None:
            keep = np.ones(n, bool)
        keep = np.asarray(keep)
        if keep.dtype != bool or keep.shape != (n,):
            raise InputError(f"keep must be a bool array of shape ({n},); got {keep.dtype} {keep.shape}")
        use = keep & (self.neuron_place >= 0)
        member = np.zeros((n, self.n_places), np.float32)
        member[np.flatnonzero(use), self.neuron_place[use]] = 1.0
        size = member.sum(axis=0)
        sums = a.astype(np.float32) @ member
        return np.divide(sums, size, out=np.zeros_like(sums), where=size > 0).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays, for a model file (config goes in metadata)."""
        return {"weights": self.weights, "theta": self.theta, "neuron_place": self.neuron_place}

    @classmethod
    def from_arrays(cls, config: SpikingConfig, arrays: dict, n_places: int) -> SpikingModule:
        """Rebuild a module from ``arrays()``; wrong keys, shapes, dtypes or values are a
        ModelFileError."""
        def bad(msg):
            return ModelFileError(f"spiking module: {msg}")

        missing = {"weights", "theta", "neuron_place"} - set(arrays)
        if missing:
            raise bad(f"missing arrays {sorted(missing)}")
        if isinstance(n_places, bool) or not isinstance(n_places, (int, np.integer)) or n_places < 1:
            raise bad(f"n_places must be a positive integer; got {n_places!r}")
        n = config.neurons
        w, theta, place = (np.asarray(arrays[k]) for k in ("weights", "theta", "neuron_place"))
        if w.ndim != 2 or w.shape[0] != n or w.shape[1] < 1:
            raise bad(f"weights must have shape ({n}, inputs); got {w.shape}")
        if theta.shape != (n,) or place.shape != (n,):
            raise bad(f"theta and neuron_place must have shape ({n},); got {theta.shape}, {place.shape}")
        for name, a in (("weights", w), ("theta", theta)):
            if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
                raise bad(f"{name} must be finite floats")
        if w.min() < 0 or w.max() > config.weight_max * (1 + 1e-6):
            raise bad(f"weights must lie in [0, {config.weight_max}]")
        if not np.issubdtype(place.dtype, np.integer) or place.min() < -1 or place.max() >= n_places:
            raise bad(f"neuron_place must be integers in [-1, {n_places})")
        return cls(config, w.astype(np.float32), theta.astype(np.float32), place.astype(np.int32),
                   int(n_places))


def _activity(module: SpikingModule, x: np.ndarray, seq: np.random.SeedSequence) -> np.ndarray:
    c = module.config
    k = _Constants(c)
    wt = np.ascontiguousarray(module.weights.T)
    thr = (c.v_thresh_mv + module.theta).astype(np.float32)
    rngs = [np.random.default_rng(s) for s in seq.spawn(len(x))]
    out = np.zeros((len(x), c.neurons), np.float32)
    todo = np.arange(len(x))
    for retry in range(c.max_retries + 1):
        for s in range(0, len(todo), _BATCH_CHUNK):
            idx = todo[s:s + _BATCH_CHUNK]
            out[idx] = _present_batch(k, wt, thr, _rates(c, x[idx], retry), [rngs[i] for i in idx])
        todo = todo[out[todo].sum(axis=1) < c.min_spikes]
        if todo.size == 0:
            break
    return out


def train_spiking_module(images: np.ndarray, config: SpikingConfig = SpikingConfig(), seed: int = 0,
                         progress: bool = False) -> SpikingModule:
    """Learn one region's places without labels, then label the neurons.

    ``images``: (traverses, places, inputs) in [0, 1], the same places seen on each
    reference traverse. Every epoch shows all traverses × places images once, in an
    order shuffled afresh per epoch; plasticity (STDP, θ) runs throughout. Neurons are
    then labelled by a test-mode pass over the same images (see the module docstring).
    The returned weights are normalised, as they would be before another presentation.
    """
    from tqdm.auto import tqdm

    x = _check_images(images, "images", 3)
    traverses, places, inputs = x.shape
    flat = x.reshape(traverses * places, inputs)
    init_seq, order_seq, spike_seq, label_seq = np.random.SeedSequence(seed).spawn(4)
    trainer = _Trainer(config, inputs, np.random.default_rng(init_seq))
    order_rng, spike_rng = np.random.default_rng(order_seq), np.random.default_rng(spike_seq)
    total = config.epochs * len(flat)
    with tqdm(total=total, desc="training spiking module", unit="image", disable=not progress) as bar:
        for _ in range(config.epochs):
            for i in order_rng.permutation(len(flat)):
                trainer.present(flat[i], spike_rng)
                bar.update(1)
    weights = np.ascontiguousarray(_normalise(trainer.wt, trainer.target, config.weight_max).T)
    module = SpikingModule(config, weights, trainer.theta, np.full(config.neurons, -1, np.int32), places)
    # label from the final, frozen network rather than from responses recorded while it
    # was still changing
    response = _activity(module, flat, label_seq).reshape(traverses, places, -1).mean(axis=0)
    module.neuron_place = np.where(response.max(axis=0) > 0, response.argmax(axis=0), -1).astype(np.int32)
    return module

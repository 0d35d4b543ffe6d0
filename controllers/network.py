"""SNN controllers as edgesnn graphs, and the flat parameter vector evolution searches.

One controller (the PD part or the I part) is, for N neurons per layer:

    error ─► encoder (N LIF, pairs: shared bias b_k, weights +w_k / −w_k)
          ─► pairs   (2×2 block-diagonal Linear: encoder pair k → hidden pair k)
          ─► hidden  (N CuBa-LIF; "r-" variants add an N×N recurrent Linear,
                      "iwta-" variants make it an AdaptiveLIF whose thresholds rise
                      with the population's spike traces)
          ─► decoder (Linear N→1 with weight (1−λ)·W_d) ─► command (LI, decay λ) ─► output

so the decoder computes y_t = λ y_{t−1} + (1 − λ) W_d s_t as in the spec.
:class:`ControllerSpec` fixes the structure, :class:`ParameterLayout` names every
evolvable number with its bounds, and :func:`build_graph` / :func:`parameters_from_graph`
convert between a vector and a graph. :func:`simulate_population` steps many
parameter vectors over many error sequences at once with the runtime's own LIF
update, so that a whole CMA-ES generation costs a few numpy calls per time step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from edgesnn.compile.kernels import lif_float
from edgesnn.errors import GraphError, InputError
from edgesnn.ir import LI, AdaptiveLIF, CubaLIF, Graph, Input, Linear, Output, SpikeEncoder

__all__ = ["VARIANTS", "TARGETS", "ControllerSpec", "Param", "ParameterLayout", "build_graph",
           "parameters_from_graph", "PopulationController", "simulate_population", "mimic_loss",
           "pd_ladder", "i_ladder", "ladder"]

VARIANTS = ("lif", "r-lif", "iwta-lif", "r-iwta-lif")
TARGETS = ("pd", "i")
# The spec allows thresholds in [0, 10]; a threshold of exactly 0 makes a neuron fire
# on any positive membrane (and the IR rejects it), so the lower bound is just above 0.
THRESHOLD_MIN = 1e-3


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[int, ...]
    lo: float
    hi: float
    log: bool = False  # searched on a log scale (thresholds span four decades)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class ControllerSpec:
    """Structure of one controller: which term it mimics, the neuron variant, the size."""

    target: str = "pd"
    variant: str = "lif"
    neurons: int = 40

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise GraphError(f"target must be one of {TARGETS}; got {self.target!r}")
        if self.variant not in VARIANTS:
            raise GraphError(f"variant must be one of {VARIANTS}; got {self.variant!r}")
        if self.neurons < 2 or self.neurons % 2:
            raise GraphError(f"neurons must be a positive even number; got {self.neurons}")

    @property
    def recurrent(self) -> bool:
        return self.variant.startswith("r-")

    @property
    def adaptive(self) -> bool:
        return "iwta" in self.variant

    @cached_property
    def layout(self) -> "ParameterLayout":
        n, pairs = self.neurons, self.neurons // 2
        params = [
            Param("encoder_weight", (pairs,), -2.0, 2.0),
            Param("encoder_bias", (pairs,), -1.0, 1.0),
            Param("encoder_beta", (n,), 0.0, 1.0),
            Param("encoder_threshold", (n,), THRESHOLD_MIN, 10.0, log=True),
            Param("pair_weight", (pairs, 2, 2), -2.0, 2.0),
            Param("hidden_alpha", (n,), 0.0, 1.0),
            Param("hidden_beta", (n,), 0.0, 1.0),
            Param("hidden_threshold", (n,), THRESHOLD_MIN, 10.0, log=True),
        ]
        if self.recurrent:
            params.append(Param("recurrent_weight", (n, n), -1.0, 1.0))
        if self.adaptive:
            params += [Param("trace_decay", (n,), 0.0, 1.0),
                       Param("threshold_weight", (n, n), -1.0, 1.0)]
        # the I controller must integrate in its hidden layer, not in a slow decoder
        params += [Param("decoder_weight", (n,), -1.0, 1.0),
                   Param("decoder_decay", (1,), 0.0, 0.3 if self.target == "i" else 1.0)]
        return ParameterLayout(tuple(params))

    def as_dict(self) -> dict:
        return {"target": self.target, "variant": self.variant, "neurons": self.neurons}


@dataclass(frozen=True)
class ParameterLayout:
    """Where each named parameter sits in the flat vector, and its bounds."""

    params: tuple[Param, ...]

    @cached_property
    def size(self) -> int:
        return sum(p.size for p in self.params)

    @cached_property
    def lower(self) -> np.ndarray:
        return np.concatenate([np.full(p.size, p.lo) for p in self.params])

    @cached_property
    def upper(self) -> np.ndarray:
        return np.concatenate([np.full(p.size, p.hi) for p in self.params])

    def unpack(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """(D,) → arrays of each parameter's shape; (P, D) → arrays with a leading P."""
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.shape[-1] != self.size or vectors.ndim not in (1, 2):
            raise InputError(f"parameter vector must have shape ({self.size},) or (P, {self.size}); "
                             f"got {vectors.shape}")
        out, at = {}, 0
        for p in self.params:
            out[p.name] = vectors[..., at:at + p.size].reshape(vectors.shape[:-1] + p.shape)
            at += p.size
        return out

    def pack(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(values[p.name], np.float64).reshape(-1)
                               for p in self.params])

    def within_bounds(self, vectors: np.ndarray) -> np.ndarray:
        return np.all((vectors >= self.lower) & (vectors <= self.upper), axis=-1)

    @cached_property
    def _log(self) -> np.ndarray:
        return np.concatenate([np.full(p.size, p.log) for p in self.params])

    def _to_search(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, np.float64)
        out[..., self._log] = np.log(np.maximum(out[..., self._log], self.lower[self._log]))
        return out

    @cached_property
    def _search_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self._to_search(self.lower), self._to_search(self.upper)

    def from_unit(self, z: np.ndarray) -> np.ndarray:
        """The unit cube evolution searches in → parameter space: linear in each
        parameter's range, or in its logarithm for thresholds, where a step of
        0.01 must mean a few percent at 0.01 and at 5 alike."""
        lo, hi = self._search_bounds
        x = lo + np.asarray(z, np.float64) * (hi - lo)
        x[..., self._log] = np.exp(x[..., self._log])
        return np.clip(x, self.lower, self.upper)

    def to_unit(self, vectors: np.ndarray) -> np.ndarray:
        lo, hi = self._search_bounds
        return (self._to_search(vectors) - lo) / (hi - lo)


def pd_ladder(spec: ControllerSpec, span: float = 0.53, far_level: float = 0.7,
              far_weight: float = 1.0, p_gain: float = 15.0, d_gain: float = 26.0, delay_decay: float = 0.9,
              delay_fraction: float = 0.33, decoder_decay: float = 0.44) -> np.ndarray:
    """A hand-built spiking PD controller, the starting point of ``--init ladder``.

    Each encoder pair is a level detector: with shared bias −2ℓ and weights ±2 its
    +twin fires while e > ℓ and its −twin while e < −ℓ. The first half of the pairs
    serve levels +ℓ_k (their +twin), the second half the mirrored −ℓ_k (their −twin).
    Both hidden neurons of a pair listen to that one twin:

    - the *fast* neuron relays it (fires while e is beyond the level);
    - the *slow* neuron low-pass filters it (synaptic decay ``delay_decay``) and fires
      a few steps after the level is crossed and stops a few steps after it is left
      (threshold ``delay_fraction`` of the filtered steady state; with the soft reset
      the on and off delays are equal).

    The decoder adds (P + D)·width for every fast neuron and −D·width for every slow
    one, width being the level's share of the error axis. The sum is a staircase of
    the error (the P term) plus a pulse at every level crossing, i.e. the error
    minus its own delayed copy: a smoothed derivative (the D term). Levels are
    spaced quadratically (fine near zero, where a hovering blimp's error lives) up to
    ``span``; the last level of each side sits at ``far_level`` with weight
    ``far_weight`` so that large errors still command a large output (encoder
    weight 1/ℓ there, as the bias bound |b| ≤ 1 limits levels to 0.5 at weight 2). Decoder weights are capped at
    ±1 by the spec's bounds, which caps the gains per level. The defaults come from
    a small search scored both on the logged flights (mimic loss) and flying the
    fitted blimp (overshoot, steady band; docs/controllers.md); evolution then
    refines every parameter."""
    n, pairs = spec.neurons, spec.neurons // 2
    side = pairs // 2
    if side < 2:
        raise GraphError(f"a PD ladder needs at least 8 neurons; got {n}")
    near = side - 1
    levels = np.append(span * ((np.arange(near) + 0.5) / near) ** 2, far_level)
    width = np.diff(levels, prepend=0.0)
    d = np.minimum(d_gain * width, 1.0)
    d[-1] = 0.0
    fast = np.minimum(p_gain * width + d, 1.0)
    fast[-1] = far_weight
    sign = np.repeat([1.0, -1.0], side)
    pair_weight = np.zeros((pairs, 2, 2))
    pair_weight[:side, :, 0] = 1.0  # +twin → fast and slow neuron
    pair_weight[side:2 * side, :, 1] = 1.0  # −twin → fast and slow neuron
    hidden_alpha = np.zeros(n)
    hidden_threshold = np.full(n, 0.01)
    hidden_alpha[1:4 * side:2] = delay_decay
    hidden_threshold[1:4 * side:2] = delay_fraction / (1.0 - delay_decay)
    decoder = np.zeros(n)
    decoder[0:4 * side:2] = sign * np.tile(fast, 2)
    decoder[1:4 * side:2] = -sign * np.tile(d, 2)
    encoder_weight, encoder_bias = _level_encoder(np.resize(levels, pairs))  # pair k+side: −ℓ_k
    values = {
        "encoder_weight": encoder_weight, "encoder_bias": encoder_bias,
        "encoder_beta": np.zeros(n), "encoder_threshold": np.full(n, 0.01),
        "pair_weight": pair_weight, "hidden_alpha": hidden_alpha, "hidden_beta": np.zeros(n),
        "hidden_threshold": np.clip(hidden_threshold, THRESHOLD_MIN, 10.0),
        "decoder_weight": decoder, "decoder_decay": [decoder_decay],
    }
    return _pack_feedforward(spec, values)


def i_ladder(spec: ControllerSpec, spacing: float = 0.02, power: float = 1.5,
             dead_band: float = 0.01, weight: float = 0.01, synapse_decay: float = 0.999,
             membrane_decay: float = 0.9, threshold: float = 3.0, decoder_weight: float = 1.0,
             decoder_decay: float = 0.3) -> np.ndarray:
    """A hand-built spiking integral controller, the starting point of ``--init ladder``
    for the I target.

    Encoder pair k detects e > ℓ_k (+twin) and e < −ℓ_k (−twin), levels growing as
    ``dead_band`` + ``spacing``·(k+½)^``power``. Both hidden neurons of the pair
    integrate the difference of the twins in their synaptic current, one with each
    sign, and fire at a rate that grows with the positive part of that integral. The
    decoder adds the positive neurons and subtracts the negative ones, so the output
    follows Σ_k ∫ staircase, i.e. the integral of the error: the integration happens
    in the hidden layer, as the spec's decoder bound demands.

    Three departures from a perfect integrator keep the loop calm on a blimp whose
    motors ignore |u| < 0.1 and whose sensor counts whole centimetres (measured in
    docs/controllers.md): the ``dead_band`` ignores the ±1 cm the sensor flickers by
    (integrating it drives a limit cycle through the motor dead zone); the synaptic
    leak ``synapse_decay`` (time constant ~100 s at 10 Hz) bounds the integral, an
    anti-windup that needs no clamp; the membrane leak ``membrane_decay`` stops a
    neuron from building up a negative charge while its side of the integral is
    negative, which would delay its response when the sign flips back."""
    n, pairs = spec.neurons, spec.neurons // 2
    levels = dead_band + spacing * (np.arange(pairs) + 0.5) ** power
    encoder_weight, encoder_bias = _level_encoder(levels)
    twins = np.array([[1.0, -1.0], [-1.0, 1.0]]) * weight
    values = {
        "encoder_weight": encoder_weight, "encoder_bias": encoder_bias,
        "encoder_beta": np.zeros(n), "encoder_threshold": np.full(n, 0.01),
        "pair_weight": np.tile(twins, (pairs, 1, 1)), "hidden_alpha": np.full(n, synapse_decay),
        "hidden_beta": np.full(n, membrane_decay), "hidden_threshold": np.full(n, threshold),
        "decoder_weight": np.tile([decoder_weight, -decoder_weight], pairs),
        "decoder_decay": [decoder_decay],
    }
    return _pack_feedforward(spec, values)


def ladder(spec: ControllerSpec) -> np.ndarray:
    """The hand-built starting point for the spec's target (:func:`pd_ladder`, :func:`i_ladder`)."""
    return pd_ladder(spec) if spec.target == "pd" else i_ladder(spec)


def _level_encoder(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encoder weights and biases whose +twins fire for e > ℓ and −twins for e < −ℓ.
    Weight 2 where the bias bound |b| ≤ 1 allows (ℓ ≤ 0.5), else 1/ℓ."""
    weight = np.minimum(2.0, 1.0 / np.maximum(levels, 1e-9))
    return weight, np.clip(-weight * levels, -1.0, 1.0)


def _pack_feedforward(spec: ControllerSpec, values: dict) -> np.ndarray:
    """A hand-built controller has no recurrent or threshold-adaptation links: zeros there."""
    n = spec.neurons
    if spec.recurrent:
        values["recurrent_weight"] = np.zeros((n, n))
    if spec.adaptive:
        values["trace_decay"] = np.zeros(n)
        values["threshold_weight"] = np.zeros((n, n))
    return spec.layout.pack(values)


# ---------------------------------------------------------------------- graph mapping

def _encoder_arrays(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs share their bias and use opposite weights: neuron 2k gets +w_k, 2k+1 −w_k."""
    w = p["encoder_weight"]
    weight = np.stack([w, -w], axis=-1).reshape(w.shape[:-1] + (-1,))
    bias = np.repeat(p["encoder_bias"], 2, axis=-1)
    return weight, bias


def _pair_matrix(pair_weight: np.ndarray) -> np.ndarray:
    """(..., G, 2, 2) blocks → (..., 2G, 2G) block-diagonal (out, in) matrix."""
    g = pair_weight.shape[-3]
    eye = np.eye(g)
    dense = eye[:, None, :, None] * pair_weight[..., :, :, None, :]  # [.., a, i, b, j]
    return dense.reshape(pair_weight.shape[:-3] + (2 * g, 2 * g))


def build_graph(spec: ControllerSpec, vector: np.ndarray, dt: float = 0.1) -> Graph:
    p = spec.layout.unpack(vector)
    if not spec.layout.within_bounds(np.asarray(vector, np.float64)):
        raise GraphError("parameter vector is outside the controller's bounds")
    n = spec.neurons
    weight, bias = _encoder_arrays(p)
    if spec.adaptive:
        hidden = AdaptiveLIF(n, p["hidden_alpha"], p["hidden_beta"], p["hidden_threshold"],
                             p["trace_decay"], p["threshold_weight"])
    else:
        hidden = CubaLIF(n, p["hidden_alpha"], p["hidden_beta"], p["hidden_threshold"])
    decay = float(p["decoder_decay"][0])
    nodes = {
        "error": Input(1),
        "encoder": SpikeEncoder(1, n, weight, bias, p["encoder_beta"], p["encoder_threshold"]),
        "pairs": Linear(_pair_matrix(p["pair_weight"])),
        "hidden": hidden,
        "decoder": Linear(((1.0 - decay) * p["decoder_weight"])[None, :]),
        "command": LI(1, decay),
        "output": Output(1),
    }
    edges = [("error", "encoder"), ("encoder", "pairs"), ("pairs", "hidden"),
             ("hidden", "decoder"), ("decoder", "command"), ("command", "output")]
    recurrent = []
    if spec.recurrent:
        nodes["recurrent"] = Linear(p["recurrent_weight"])
        edges.append(("recurrent", "hidden"))
        recurrent.append(("hidden", "recurrent"))
    return Graph(nodes, edges, recurrent, dt=dt)


def parameters_from_graph(spec: ControllerSpec, graph: Graph) -> np.ndarray:
    """Inverse of :func:`build_graph` (float32 storage rounds the values)."""
    nodes = graph.nodes
    n, g = spec.neurons, spec.neurons // 2
    try:
        enc, hid = nodes["encoder"], nodes["hidden"]
        pairs = nodes["pairs"].weight.astype(np.float64)
        decay = float(nodes["command"].beta[0])
        dec = nodes["decoder"].weight[0].astype(np.float64)
    except (KeyError, AttributeError) as exc:
        raise GraphError(f"not a {spec.variant} controller graph (missing {exc})") from None
    if pairs.shape != (n, n):
        raise GraphError(f"controller graph has {pairs.shape[0]} hidden neurons; spec says {n}")
    blocks = np.stack([pairs[2 * k:2 * k + 2, 2 * k:2 * k + 2] for k in range(g)])
    values = {
        "encoder_weight": enc.weight[0::2], "encoder_bias": enc.bias[0::2],
        "encoder_beta": enc.beta, "encoder_threshold": enc.threshold, "pair_weight": blocks,
        "hidden_alpha": hid.alpha, "hidden_beta": hid.beta, "hidden_threshold": hid.threshold,
        # with λ = 1 the decoder ignores its weights; 0 is as good as any
        "decoder_weight": dec / (1.0 - decay) if decay < 1.0 else np.zeros(n),
        "decoder_decay": [decay],
    }
    if spec.recurrent:
        values["recurrent_weight"] = nodes["recurrent"].weight
    if spec.adaptive:
        values["trace_decay"] = hid.trace_decay
        values["threshold_weight"] = hid.threshold_weight
    # float32 storage may round a value at a bound (0.3 → 0.30000001) just outside it
    return np.clip(spec.layout.pack(values), spec.layout.lower, spec.layout.upper)


# ------------------------------------------------------------------ batched simulation

class PopulationController:
    """P controllers (parameter vectors (P, D)), each run on S independent error
    streams, stepped together with explicit state (reset by ``reset``). The same
    float32 arithmetic as the runtime's numpy-float backend, up to the summation
    order of the decoder and recurrent weights (outputs agree to ~1e-6).

    Used open loop over recorded sequences (:func:`simulate_population`) and closed
    loop on a batch of P·S plants (``__call__`` takes and returns the flat (P·S,)
    batch, so it is a :class:`~edgesnn.controllers.closed_loop.Controller`)."""

    def __init__(self, spec: ControllerSpec, vectors: np.ndarray, streams: int = 1):
        vectors = np.atleast_2d(vectors)
        self.spec, self.population, self.streams = spec, vectors.shape[0], int(streams)
        p64 = spec.layout.unpack(vectors)
        p = {k: v.astype(np.float32) for k, v in p64.items()}

        def per_neuron(a):  # (P, N) → broadcastable against (P, S, N)
            return a[:, None, :]

        enc_w, enc_b = (a.astype(np.float32) for a in _encoder_arrays(p))
        self.enc_w, self.enc_b = per_neuron(enc_w), per_neuron(enc_b)
        self.enc_beta, self.enc_thr = per_neuron(p["encoder_beta"]), per_neuron(p["encoder_threshold"])
        # The 2×2 pair blocks as two per-neuron weights: hidden neuron i of pair k gets
        # W[k, i, 0]·s_{2k} + W[k, i, 1]·s_{2k+1}. With the off-block zeros that is exactly
        # what the dense matmul of the runtime adds up, at a fraction of the cost.
        self.from_even = p["pair_weight"][:, None, :, :, 0]  # (P, 1, pairs, 2)
        self.from_odd = p["pair_weight"][:, None, :, :, 1]
        self.alpha, self.beta, self.thr = (per_neuron(p[k]) for k in
                                           ("hidden_alpha", "hidden_beta", "hidden_threshold"))
        self.decay = p["decoder_decay"][:, :, None]  # (P, 1, 1)
        # rounded once from float64, as build_graph does
        self.dec_t = ((1.0 - p64["decoder_decay"]) * p64["decoder_weight"]).astype(np.float32)[:, :, None]
        self.rec_t = p["recurrent_weight"].swapaxes(-1, -2) if spec.recurrent else None
        if spec.adaptive:
            self.trace_decay = per_neuron(p["trace_decay"])
            self.adapt_t = p["threshold_weight"].swapaxes(-1, -2)
        self.reset()

    def reset(self) -> None:
        zeros = np.zeros((self.population, self.streams, self.spec.neurons), np.float32)
        self.v_enc, self.v_hid, self.i_hid = zeros.copy(), zeros.copy(), zeros.copy()
        self.s_hid, self.trace, self.last_thr = zeros.copy(), zeros.copy(), zeros.copy()
        self.y = np.zeros((self.population, self.streams, 1), np.float32)

    def encoder_current(self, errors: np.ndarray) -> np.ndarray:
        """Encoder input current for errors (P|1, S, ...) → (..., N), as the encoder kernel."""
        errors = np.asarray(errors, np.float32)
        extra = (None,) * (errors.ndim - 2)
        w = self.enc_w[(slice(None), slice(None)) + extra]
        b = self.enc_b[(slice(None), slice(None)) + extra]
        return (errors[..., None] * w + b).astype(np.float32)

    def step_current(self, current: np.ndarray) -> np.ndarray:
        """One step from the encoder current (P, S, N); returns the commands (P, S)."""
        n_pop, n_seq, n = self.population, self.streams, self.spec.neurons
        s_enc, self.v_enc = lif_float(self.enc_beta, self.enc_thr, "subtract", self.v_enc, current)
        pairs = s_enc.reshape(n_pop, n_seq, n // 2, 2)
        x = (pairs[..., 0:1] * self.from_even + pairs[..., 1:2] * self.from_odd).reshape(n_pop, n_seq, n)
        if self.rec_t is not None:
            x += self.s_hid @ self.rec_t
        self.i_hid = (self.alpha * self.i_hid + x).astype(np.float32)
        if self.spec.adaptive:
            threshold = (self.thr + self.trace @ self.adapt_t).astype(np.float32)
            self.s_hid, self.v_hid = lif_float(self.beta, threshold, "subtract", self.v_hid,
                                               self.i_hid, self.last_thr)
            self.trace = (self.trace_decay * self.trace + self.s_hid).astype(np.float32)
            self.last_thr = threshold
        else:
            self.s_hid, self.v_hid = lif_float(self.beta, self.thr, "subtract", self.v_hid, self.i_hid)
        self.y = (self.decay * self.y + self.s_hid @ self.dec_t).astype(np.float32)
        return self.y[..., 0]

    def __call__(self, error: np.ndarray) -> np.ndarray:
        """Closed-loop step on the flat batch: error (P·S,) → command (P·S,)."""
        e = np.asarray(error, np.float32).reshape(self.population, self.streams)
        return self.step_current(self.encoder_current(e)).reshape(-1).astype(np.float64)


def simulate_population(spec: ControllerSpec, vectors: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Commands of P controllers on S error sequences: vectors (P, D), errors (S, T) →
    (P, S, T), open loop."""
    errors = np.asarray(errors, np.float32)
    if errors.ndim != 2:
        raise InputError(f"errors must have shape (sequences, steps); got {errors.shape}")
    controller = PopulationController(spec, vectors, errors.shape[0])
    currents = controller.encoder_current(errors[None])  # (P, S, T, N), all steps at once
    out = np.empty((controller.population,) + errors.shape, np.float32)
    for t in range(errors.shape[1]):
        out[:, :, t] = controller.step_current(currents[:, :, t])
    return out


def mimic_loss(commands: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """MAE + (1 − Pearson ρ) over the last axis (time), averaged over sequences.

    commands (P, S, T), (S, T) or (T,) with targets (S, T) or (T,) → (P,) or a scalar. A constant output has
    no correlation with anything: ρ is taken as 0 there (not NaN)."""
    u = np.asarray(targets, np.float64)
    uh = np.asarray(commands, np.float64)
    mae = np.mean(np.abs(uh - u), axis=-1)
    du = u - u.mean(axis=-1, keepdims=True)
    duh = uh - uh.mean(axis=-1, keepdims=True)
    denom = np.sqrt(np.sum(du * du, axis=-1) * np.sum(duh * duh, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, np.sum(du * duh, axis=-1) / np.where(denom > 0, denom, 1), 0.0)
    loss = mae + 1.0 - rho
    return loss.mean(axis=-1) if loss.ndim else loss

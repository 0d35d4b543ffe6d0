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
           "parameters_from_graph", "simulate_population", "mimic_loss", "p_ladder"]

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
            Param("encoder_threshold", (n,), THRESHOLD_MIN, 10.0),
            Param("pair_weight", (pairs, 2, 2), -2.0, 2.0),
            Param("hidden_alpha", (n,), 0.0, 1.0),
            Param("hidden_beta", (n,), 0.0, 1.0),
            Param("hidden_threshold", (n,), THRESHOLD_MIN, 10.0),
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

    def from_unit(self, z: np.ndarray) -> np.ndarray:
        """The unit cube evolution searches in → parameter space."""
        return self.lower + z * (self.upper - self.lower)

    def to_unit(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.lower) / (self.upper - self.lower)


def p_ladder(spec: ControllerSpec, gain: float = 9.0, span: float = 0.8) -> np.ndarray:
    """A hand-built spiking P controller, a starting point for evolution.

    Encoder pair k fires its +twin while e > ℓ_k and its −twin while e < −ℓ_k, for
    levels ℓ_k evenly spread over (0, span); hidden neurons relay their encoder, and
    the decoder adds ±gain·span/pairs per active level: a staircase of gain·e up to
    ±span. From uniform random starts CMA-ES spends thousands of generations just
    finding thresholds that let spikes through; from here it refines a working
    controller (docs/controllers.md)."""
    n, pairs = spec.neurons, spec.neurons // 2
    w = np.full(pairs, 2.0)
    levels = (np.arange(pairs) + 0.5) * span / pairs
    step = gain * span / pairs
    values = {
        "encoder_weight": w, "encoder_bias": np.clip(-levels * w, -1.0, 1.0),
        "encoder_beta": np.zeros(n), "encoder_threshold": np.full(n, 0.01),
        "pair_weight": np.tile(np.eye(2), (pairs, 1, 1)),
        "hidden_alpha": np.zeros(n), "hidden_beta": np.zeros(n),
        "hidden_threshold": np.full(n, 0.01),
        "decoder_weight": np.clip(np.tile([step, -step], pairs), -1.0, 1.0),
        "decoder_decay": [0.0],
    }
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

def simulate_population(spec: ControllerSpec, vectors: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Commands of P controllers on S error sequences: vectors (P, D), errors (S, T) →
    (P, S, T). The same float32 arithmetic as the runtime's numpy-float backend, up to
    the summation order of the decoder and recurrent weights (outputs agree to ~1e-6)."""
    vectors = np.atleast_2d(vectors)
    errors = np.asarray(errors, np.float32)
    if errors.ndim != 2:
        raise InputError(f"errors must have shape (sequences, steps); got {errors.shape}")
    p64 = spec.layout.unpack(vectors)
    p = {k: v.astype(np.float32) for k, v in p64.items()}
    f32 = np.float32
    n_pop, (n_seq, steps), n = vectors.shape[0], errors.shape, spec.neurons

    def per_neuron(a):  # (P, N) → broadcastable against (P, S, N)
        return a[:, None, :]

    enc_w, enc_b = (a.astype(f32) for a in _encoder_arrays(p))
    currents = (errors[None, :, :, None] * enc_w[:, None, None, :]
                + enc_b[:, None, None, :]).astype(f32)  # (P, S, T, N), as the encoder kernel
    enc_beta, enc_thr = per_neuron(p["encoder_beta"]), per_neuron(p["encoder_threshold"])
    # The 2×2 pair blocks as two per-neuron weights: hidden neuron i of pair k gets
    # W[k, i, 0]·s_{2k} + W[k, i, 1]·s_{2k+1}. With the off-block zeros that is exactly
    # what the dense matmul of the runtime adds up, at a fraction of the cost.
    from_even = p["pair_weight"][:, None, :, :, 0]  # (P, 1, pairs, 2)
    from_odd = p["pair_weight"][:, None, :, :, 1]
    alpha, beta, thr = (per_neuron(p[k]) for k in ("hidden_alpha", "hidden_beta", "hidden_threshold"))
    decay = p["decoder_decay"][:, :, None]  # (P, 1, 1)
    # rounded once from float64, as build_graph does
    dec_t = ((1.0 - p64["decoder_decay"]) * p64["decoder_weight"]).astype(f32)[:, :, None]
    rec_t = p["recurrent_weight"].swapaxes(-1, -2) if spec.recurrent else None
    if spec.adaptive:
        trace_decay = per_neuron(p["trace_decay"])
        adapt_t = p["threshold_weight"].swapaxes(-1, -2)

    zeros = np.zeros((n_pop, n_seq, n), f32)
    v_enc, v_hid, i_hid = zeros.copy(), zeros.copy(), zeros.copy()
    s_hid, trace, last_thr = zeros.copy(), zeros.copy(), zeros.copy()
    y = np.zeros((n_pop, n_seq, 1), f32)
    out = np.empty((n_pop, n_seq, steps), f32)
    for t in range(steps):
        s_enc, v_enc = lif_float(enc_beta, enc_thr, "subtract", v_enc, currents[:, :, t])
        pairs = s_enc.reshape(n_pop, n_seq, n // 2, 2)
        x = (pairs[..., 0:1] * from_even + pairs[..., 1:2] * from_odd).reshape(n_pop, n_seq, n)
        if rec_t is not None:
            x += s_hid @ rec_t
        i_hid = (alpha * i_hid + x).astype(f32)
        if spec.adaptive:
            threshold = (thr + trace @ adapt_t).astype(f32)
            s_hid, v_hid = lif_float(beta, threshold, "subtract", v_hid, i_hid, last_thr)
            trace = (trace_decay * trace + s_hid).astype(f32)
            last_thr = threshold
        else:
            s_hid, v_hid = lif_float(beta, thr, "subtract", v_hid, i_hid)
        y = (decay * y + s_hid @ dec_t).astype(f32)
        out[:, :, t] = y[..., 0]
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

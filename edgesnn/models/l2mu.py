"""L2MU: a Legendre Memory Unit built only from spiking populations (specs/l2mu.md).

One step, with s_x the encoder spikes and s_h, s_m the previous hidden and memory
spikes (recurrent edges):

    I_u = e_x s_x + e_h s_h + e_m s_m                 → u: LIF (memory_size)
    I_m = Ā s_m (on each memory row) + B̄ s_u (each)   → m: LIF (memory_size × order)
    I_h = W_x s_x + W_h s_h + W_m s_m(this step)       → h: LIF (hidden)
    readout: Affine(hidden → classes) → LI (or LIF); logits = mean over the window

Ā and B̄ are the zero-order-hold discretisation of the Legendre system over one step
(fixed, not trained); the memory applies Ā itself, not its transpose. The "synaptic"
variant uses CuBa-LIF for u, m and h. Input normalisation (per-channel mean/std of the
training data) is folded into the encoder's weights and biases, so the model takes raw
sensor values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgesnn.errors import require
from edgesnn.ir import LI, LIF, Affine, CubaLIF, GroupedLinear, Graph, Input, Linear, Output, SpikeEncoder

VARIANTS = ("leaky", "synaptic")
READOUTS = ("li", "lif")


@dataclass
class L2MUConfig:
    channels: int
    classes: int
    order: int = 4            # Legendre order d
    theta: float = 16.0       # memory window, in steps
    memory: int = 16          # memory_size: u neurons; memory population = memory × order
    hidden: int = 64
    population: int = 8       # encoder neurons per input channel
    variant: str = "leaky"
    readout: str = "li"       # "li": leaky-integrator membrane (default); "lif": spike rate
    beta: float = 0.8
    threshold: float = 0.5
    alpha: float = 0.5        # synaptic decay of the "synaptic" variant
    readout_beta: float = 0.9
    logit_scale: float = 10.0  # "lif" readout: logits = scale × mean spike rate

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}; got {self.variant!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}; got {self.readout!r}")
        for name in ("channels", "classes", "order", "memory", "hidden", "population"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer")
        if not self.theta > 0:
            raise ValueError("theta must be positive (steps)")


def legendre_system(order: int) -> tuple[np.ndarray, np.ndarray]:
    """The continuous LMU matrices A (d×d) and B (d,) of Voelker et al. (2019)."""
    i = np.arange(order)[:, None]
    j = np.arange(order)[None, :]
    a = (2 * i + 1) * np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    b = (2 * np.arange(order) + 1) * (-1.0) ** np.arange(order)
    return a, b


def lmu_matrices(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation over one step: Ā = expm(A/θ), B̄ from the block
    exponential of [[A, B], [0, 0]]/θ."""
    expm = require("scipy.linalg", "train").expm
    a, b = legendre_system(order)
    block = np.zeros((order + 1, order + 1))
    block[:order, :order] = a
    block[:order, order] = b
    e = expm(block / theta)
    return e[:order, :order], e[:order, order]


def init_params(cfg: L2MUConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights as keras-lmu: e_x, e_h LeCun-uniform, e_m = 0, W_* Xavier-normal;
    encoder gains and biases spread so each channel's population covers ±2 σ of the
    z-scored input."""
    rng = np.random.default_rng(seed)
    c, p, m, d, h, k = cfg.channels, cfg.population, cfg.memory, cfg.order, cfg.hidden, cfg.classes
    n_x, n_m = c * p, m * d

    def lecun(out, inp):
        lim = np.sqrt(3.0 / inp)
        return rng.uniform(-lim, lim, (out, inp))

    def xavier(out, inp):
        return rng.normal(0.0, np.sqrt(2.0 / (out + inp)), (out, inp))

    signs = np.where(np.arange(p) % 2 == 0, 1.0, -1.0)  # half the neurons see -x
    params = {
        "enc_weight": np.tile(signs * np.linspace(0.5, 1.5, p), (c, 1)),
        "enc_bias": np.tile(np.linspace(-0.25, 0.25, p), (c, 1)),
        "e_x": lecun(m, n_x), "e_h": lecun(m, h), "e_m": np.zeros((m, n_m)),
        "w_x": xavier(h, n_x), "w_h": xavier(h, h), "w_m": xavier(h, n_m),
        # the LI sums ~1/(1-β) steps of input: scale so initial logits are O(1)
        "ro_weight": xavier(k, h) * (1.0 - cfg.readout_beta), "ro_bias": np.zeros(k),
        "norm_mean": np.zeros(c), "norm_std": np.ones(c),
    }
    for pop, size in (("enc", n_x), ("u", m), ("m", n_m), ("h", h)):
        params[f"{pop}_beta"] = np.full(size, cfg.beta)
        params[f"{pop}_threshold"] = np.full(size, cfg.threshold)
        if cfg.variant == "synaptic" and pop != "enc":
            params[f"{pop}_alpha"] = np.full(size, cfg.alpha)
    params["ro_beta"] = np.full(k, cfg.readout_beta)
    if cfg.readout == "lif":
        params["ro_threshold"] = np.full(k, cfg.threshold)
    return {name: np.asarray(v, dtype=np.float32) for name, v in params.items()}


def folded_encoder(params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Encoder gain and bias acting on raw inputs: w·(x−μ)/σ + b = (w/σ)·x + (b − w·μ/σ).
    Computed in float32 exactly as the training graph computes it."""
    w, b = params["enc_weight"], params["enc_bias"]
    std, mean = params["norm_std"][:, None], params["norm_mean"][:, None]
    gain = (w / std).astype(np.float32)
    return gain, (b - gain * mean).astype(np.float32)


def _neuron(cfg: L2MUConfig, params: dict, pop: str, size: int):
    if cfg.variant == "synaptic":
        return CubaLIF(size, params[f"{pop}_alpha"], params[f"{pop}_beta"],
                       params[f"{pop}_threshold"])
    return LIF(size, params[f"{pop}_beta"], params[f"{pop}_threshold"])


def build_graph(cfg: L2MUConfig, params: dict[str, np.ndarray], dt: float | None = None) -> Graph:
    a_bar, b_bar = lmu_matrices(cfg.order, cfg.theta)
    m, d, h, k = cfg.memory, cfg.order, cfg.hidden, cfg.classes
    gain, bias = folded_encoder(params)
    readout = (LI(k, params["ro_beta"]) if cfg.readout == "li"
               else LIF(k, params["ro_beta"], params["ro_threshold"]))
    nodes = {
        "input": Input(cfg.channels),
        "encoder": SpikeEncoder(cfg.channels, cfg.population, gain, bias, params["enc_beta"],
                                params["enc_threshold"]),
        "u_from_x": Linear(params["e_x"]), "u_from_h": Linear(params["e_h"]),
        "u_from_m": Linear(params["e_m"]),
        "u": _neuron(cfg, params, "u", m),
        "m_from_u": GroupedLinear(m, b_bar[:, None]),
        "m_from_m": GroupedLinear(m, a_bar),
        "m": _neuron(cfg, params, "m", m * d),
        "h_from_x": Linear(params["w_x"]), "h_from_h": Linear(params["w_h"]),
        "h_from_m": Linear(params["w_m"]),
        "h": _neuron(cfg, params, "h", h),
        "readout": Affine(params["ro_weight"], params["ro_bias"]),
        "out": readout,
        "output": Output(k),
    }
    # Edge order fixes the order of summation; the training graph sums in the same order.
    edges = [("input", "encoder"),
             ("encoder", "u_from_x"), ("u_from_x", "u"), ("u_from_h", "u"), ("u_from_m", "u"),
             ("u", "m_from_u"), ("m_from_m", "m"), ("m_from_u", "m"),
             ("encoder", "h_from_x"), ("h_from_x", "h"), ("h_from_h", "h"), ("m", "h_from_m"),
             ("h_from_m", "h"),
             ("h", "readout"), ("readout", "out"), ("out", "output")]
    recurrent = [("h", "u_from_h"), ("m", "u_from_m"), ("m", "m_from_m"), ("h", "h_from_h")]
    return Graph(nodes, edges, recurrent, dt=dt)


def decision_metadata(cfg: L2MUConfig) -> dict:
    """How a consumer turns output sequences into a class: stored in the model file."""
    scale = 1.0 if cfg.readout == "li" else cfg.logit_scale
    return {"aggregate": "mean", "logit_scale": scale}


def config_metadata(cfg: L2MUConfig) -> dict:
    return {"family": "l2mu", **asdict(cfg)}


def params_from_graph(cfg: L2MUConfig, graph: Graph) -> dict[str, np.ndarray]:
    """The parameters of a built graph, with normalisation already folded into the encoder
    (mean 0, std 1): ``build_graph(cfg, params_from_graph(cfg, g))`` rebuilds ``g``."""
    n = graph.nodes
    shape = (cfg.channels, cfg.population)
    params = {
        "enc_weight": n["encoder"].weight.reshape(shape), "enc_bias": n["encoder"].bias.reshape(shape),
        "enc_beta": n["encoder"].beta, "enc_threshold": n["encoder"].threshold,
        "e_x": n["u_from_x"].weight, "e_h": n["u_from_h"].weight, "e_m": n["u_from_m"].weight,
        "w_x": n["h_from_x"].weight, "w_h": n["h_from_h"].weight, "w_m": n["h_from_m"].weight,
        "ro_weight": n["readout"].weight, "ro_bias": n["readout"].bias,
        "norm_mean": np.zeros(cfg.channels, np.float32),
        "norm_std": np.ones(cfg.channels, np.float32),
        "ro_beta": n["out"].beta,
    }
    for pop in ("u", "m", "h"):
        params[f"{pop}_beta"] = n[pop].beta
        params[f"{pop}_threshold"] = n[pop].threshold
        if cfg.variant == "synaptic":
            params[f"{pop}_alpha"] = n[pop].alpha
    if cfg.readout == "lif":
        params["ro_threshold"] = n["out"].threshold
    return {k: np.array(v, dtype=np.float32) for k, v in params.items()}

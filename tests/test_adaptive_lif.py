"""AdaptiveLIF (the "IWTA" neuron): float kernel vs the equations, CubaLIF limit,
inhibition, fixed point and model-file round trip.

The equations (edgesnn/ir/nodes.py):

    J_t = α J_{t-1} + I_t
    Θ_t = ϑ + W_θ X_{t-1}
    U_t = β U_{t-1} + J_t − S_{t-1} Θ_{t-1}      (reset="subtract")
    U_t = (1 − S_{t-1}) (β U_{t-1} + J_t)        (reset="zero")
    S_t = [U_t > Θ_t]
    X_t = γ X_{t-1} + S_t
"""

from __future__ import annotations

import numpy as np
import pytest

import edgesnn
from edgesnn.compile import FIXED, FLOAT32, compile_graph
from edgesnn.ir import AdaptiveLIF, Affine, CubaLIF, Graph, Input, Output
from edgesnn.modelfile import from_bytes, to_bytes

N, F = 6, 3  # neurons, input features
f32 = np.float32


def params(seed: int = 0, n: int = N) -> dict:
    rng = np.random.default_rng(seed)
    return {"alpha": rng.uniform(0.3, 0.9, n), "beta": rng.uniform(0.6, 0.95, n),
            "threshold": rng.uniform(0.5, 1.5, n), "trace_decay": rng.uniform(0.5, 0.95, n)}


def affine(seed: int = 0, n: int = N) -> Affine:
    """Dyadic weights and bias: with dyadic inputs (see ``inputs``) every current is exact
    in float32 whatever the summation order, so the reference can recompute it."""
    rng = np.random.default_rng(seed + 100)
    return Affine(rng.integers(-6, 7, (n, F)) / 4.0, rng.integers(-1, 3, n) / 8.0)


def inputs(seed: int, batch: int = 3, steps: int = 120) -> np.ndarray:
    """Normal(0, 1) rounded to multiples of 2**-10 (few significant bits)."""
    rng = np.random.default_rng(seed)
    return (np.round(rng.normal(0, 1, (batch, steps, F)) * 1024) / 1024).astype(f32)


def adaptive_graph(w_theta, reset="subtract", seed=0) -> Graph:
    p = params(seed)
    node = AdaptiveLIF(N, p["alpha"], p["beta"], p["threshold"], p["trace_decay"], w_theta,
                       reset=reset)
    return Graph({"in": Input(F), "fc": affine(seed), "alif": node, "out": Output(N)},
                 [("in", "fc"), ("fc", "alif"), ("alif", "out")], dt=0.1)


def cuba_graph(reset="subtract", seed=0) -> Graph:
    p = params(seed)
    node = CubaLIF(N, p["alpha"], p["beta"], p["threshold"], reset=reset)
    return Graph({"in": Input(F), "fc": affine(seed), "lif": node, "out": Output(N)},
                 [("in", "fc"), ("fc", "lif"), ("lif", "out")], dt=0.1)


def inhibitory(seed: int = 1) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(0, 0.3, (N, N)))


def mixed(seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, (N, N))


W_THETAS = {"zero": lambda: np.zeros((N, N)), "inhibitory": inhibitory, "mixed": mixed}


def step_through(program, xs: np.ndarray, name: str):
    """Run step by step; returns spikes (B, T, N) and each state buffer of ``name`` (B, T, N)."""
    state = program.init_state(xs.shape[0])
    spikes, states = [], {}
    for t in range(xs.shape[1]):
        y, state = program.step(state, xs[:, t])
        spikes.append(y)
        for key, value in state.items():
            if key.startswith(name + "."):
                states.setdefault(key[len(name) + 1:], []).append(value.copy())
    return np.stack(spikes, 1), {k: np.stack(v, 1) for k, v in states.items()}


def reference(graph: Graph, xs: np.ndarray):
    """The equations above, one neuron-population step at a time, in float32 (the
    runtime's precision) but written independently of the kernels."""
    fc, node = graph.nodes["fc"], graph.nodes["alif"]
    w_in, b_in = fc.weight.astype(np.float64), fc.bias.astype(np.float64)
    alpha, beta = node.alpha.astype(f32), node.beta.astype(f32)
    theta0, gamma = node.threshold.astype(f32), node.trace_decay.astype(f32)
    w_theta = node.threshold_weight.astype(np.float64)
    batch, steps, _ = xs.shape
    J = np.zeros((batch, N), f32)
    U = np.zeros((batch, N), f32)
    X = np.zeros((batch, N), f32)
    S_prev = np.zeros((batch, N), bool)
    theta_prev = np.zeros((batch, N), f32)
    out = {k: np.zeros((batch, steps, N), f32) for k in ("s", "v", "i", "trace", "thr")}
    for t in range(steps):
        for b in range(batch):
            # inputs and weights are dyadic with few bits: this is exact in any precision
            current = (w_in @ xs[b, t].astype(np.float64) + b_in).astype(f32)
            for k in range(N):
                J[b, k] = f32(alpha[k] * J[b, k]) + current[k]
                theta = theta0[k] + f32(sum(w_theta[k, j] * float(X[b, j]) for j in range(N)))
                leaky = f32(beta[k] * U[b, k]) + J[b, k]
                if node.reset == "subtract":
                    U[b, k] = leaky - (theta_prev[b, k] if S_prev[b, k] else f32(0))
                else:
                    U[b, k] = f32(0) if S_prev[b, k] else leaky
                out["thr"][b, t, k] = theta
            S = U[b] > out["thr"][b, t]
            X[b] = (gamma * X[b]).astype(f32) + S.astype(f32)
            S_prev[b], theta_prev[b] = S, out["thr"][b, t]
            out["s"][b, t], out["v"][b, t], out["i"][b, t], out["trace"][b, t] = S, U[b], J[b], X[b]
    return out


# ------------------------------------------------------------------ float kernel


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("kind", sorted(W_THETAS))
def test_float_kernel_matches_the_equations(reset, kind):
    graph = adaptive_graph(W_THETAS[kind](), reset)
    xs = inputs(seed=3)
    spikes, state = step_through(compile_graph(graph), xs, "alif")
    ref = reference(graph, xs)
    assert 0.05 < spikes.mean() < 0.95  # the comparison exercises both outcomes
    assert np.array_equal(spikes, ref["s"])
    # elementwise float32 only: bit-exact
    assert np.array_equal(state["i"], ref["i"])
    assert np.array_equal(state["trace"], ref["trace"])
    # Θ sums W_θ X in whatever order the matmul picks: equal to rounding
    np.testing.assert_allclose(state["thr"], ref["thr"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(state["v"], ref["v"], rtol=0, atol=1e-5)
    if kind == "zero":
        assert np.array_equal(state["thr"], ref["thr"]) and np.array_equal(state["v"], ref["v"])


def one_neuron(w_theta: float, reset: str, gamma: float = 1.0) -> Graph:
    node = AdaptiveLIF(1, 0.0, 1.0, 1.0, gamma, [[w_theta]], reset=reset)
    return Graph({"in": Input(1), "fc": Affine([[1.0]], [0.0]), "alif": node, "out": Output(1)},
                 [("in", "fc"), ("fc", "alif"), ("alif", "out")], dt=0.1)


def test_subtractive_reset_removes_the_threshold_that_was_crossed():
    """α = 0, β = 1, ϑ = 1, W_θ = 0.5, γ = 1 (all dyadic: exact in float32).
    t=0: I = 1.5, Θ_0 = 1, U_0 = 1.5 > 1 → spike, X_0 = 1.
    t=1: I = 0,   Θ_1 = 1.5, U_1 = 1.5 − Θ_0 = 0.5 (not 1.5 − Θ_1 = 0) → no spike.
    t=2: I = 0.75, Θ_2 = 1.5, U_2 = 1.25 → no spike (it would fire against ϑ = 1)."""
    program = compile_graph(one_neuron(0.5, "subtract"))
    spikes, state = step_through(program, np.array([[[1.5], [0.0], [0.75]]], f32), "alif")
    assert spikes[0, :, 0].tolist() == [1.0, 0.0, 0.0]
    assert state["thr"][0, :, 0].tolist() == [1.0, 1.5, 1.5]
    assert state["v"][0, :, 0].tolist() == [1.5, 0.5, 1.25]
    assert state["trace"][0, :, 0].tolist() == [1.0, 1.0, 1.0]


def test_zero_reset_clears_the_membrane_after_a_spike():
    program = compile_graph(one_neuron(0.5, "zero", gamma=0.5))
    spikes, state = step_through(program, np.array([[[1.5], [0.25], [2.0]]], f32), "alif")
    # t=1: S_0 = 1 → U_1 = 0 whatever came in; Θ_1 = 1 + 0.5·1; t=2: Θ_2 = 1 + 0.5·0.5
    assert state["v"][0, :, 0].tolist() == [1.5, 0.0, 2.0]
    assert state["thr"][0, :, 0].tolist() == [1.0, 1.5, 1.25]
    assert spikes[0, :, 0].tolist() == [1.0, 0.0, 1.0]
    assert state["trace"][0, :, 0].tolist() == [1.0, 0.5, 1.25]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_zero_threshold_weight_is_exactly_cuba_lif(reset):
    xs = inputs(seed=4, steps=200)
    s_a, st_a = step_through(compile_graph(adaptive_graph(np.zeros((N, N)), reset)), xs, "alif")
    s_c, st_c = step_through(compile_graph(cuba_graph(reset)), xs, "lif")
    assert s_a.sum() > 0
    assert np.array_equal(s_a, s_c)
    assert np.array_equal(st_a["v"], st_c["v"])
    assert np.array_equal(st_a["i"], st_c["i"])
    # and the threshold never moves
    assert np.all(st_a["thr"] == adaptive_graph(np.zeros((N, N))).nodes["alif"].threshold)


def test_inhibition_lowers_the_spike_count():
    xs = inputs(seed=5, batch=4, steps=200)
    free = compile_graph(adaptive_graph(np.zeros((N, N))))
    inhibited = compile_graph(adaptive_graph(inhibitory()))
    y0, _ = free.run(free.init_state(4), xs)
    y1, _ = inhibited.run(inhibited.init_state(4), xs)
    assert y0.sum() > 100
    assert y1.sum() < 0.9 * y0.sum()
    # and the thresholds only ever rise above their base value
    _, state = step_through(inhibited, xs, "alif")
    base = adaptive_graph(inhibitory()).nodes["alif"].threshold
    assert np.all(state["thr"] >= base) and np.any(state["thr"] > base)


# ------------------------------------------------------------------- fixed point


@pytest.fixture(scope="module", params=["subtract", "zero"])
def quantized(request):
    graph = adaptive_graph(mixed(), request.param)
    calibration = [x for x in inputs(seed=10, batch=2, steps=200)]
    return edgesnn.quantize(edgesnn.Model(graph, metadata={"name": "x"}), calibration)


def test_fixed_point_spikes_agree_with_float(quantized):
    xs = inputs(seed=11, batch=4, steps=200)  # not the calibration data
    y_float = edgesnn.Runtime(quantized, "numpy-float").run(xs)
    y_int = edgesnn.Runtime(quantized, "numpy-int").run(xs)
    assert set(np.unique(y_int).tolist()) <= {0.0, 1.0}
    assert 0.05 < y_float.mean() < 0.95
    agreement = float(np.mean(y_float == y_int))
    assert agreement >= 0.95, agreement


def test_fixed_point_run_is_deterministic_with_int32_state(quantized):
    xs = inputs(seed=12, batch=2, steps=150)
    runs = []
    for _ in range(2):
        rt = edgesnn.Runtime(quantized, "numpy-int")
        runs.append(rt.run(xs))
        for buf in ("v", "i", "trace", "thr"):
            assert rt.state["alif." + buf].dtype == np.int32, buf
    assert np.array_equal(runs[0], runs[1])
    # step by step on the integer core gives the same as run()
    program = compile_graph(quantized.graph, quantized.quantization)
    assert program.numerics == FIXED
    state = program.init_state(2)
    stepped = []
    for t in range(xs.shape[1]):
        y, state = program.step(state, xs[:, t])
        stepped.append(y)
    assert np.array_equal(np.stack(stepped, 1), runs[0])
    # traces count spikes (Q15.16): never negative
    assert np.all(state["alif.trace"] >= 0) and np.any(state["alif.trace"] > 0)


def test_model_file_round_trip_keeps_outputs(quantized):
    blob = to_bytes(quantized)
    back = from_bytes(blob)
    assert isinstance(back.graph.nodes["alif"], AdaptiveLIF)
    assert back.graph.nodes["alif"].reset == quantized.graph.nodes["alif"].reset
    assert to_bytes(back) == blob
    xs = inputs(seed=13, batch=2, steps=100)
    for backend in ("numpy-float", "numpy-int"):
        a = edgesnn.Runtime(quantized, backend).run(xs)
        b = edgesnn.Runtime(back, backend).run(xs)
        assert np.array_equal(a, b), backend
    assert compile_graph(back.graph).numerics == FLOAT32

"""L2MU: LMU memory, builder structure, torch ↔ runtime equivalence, training, streaming."""

import numpy as np
import pytest

import edgesnn
from edgesnn.errors import DataError

pytest.importorskip("scipy", reason="the L2MU builder needs extra 'train' (scipy)")
from edgesnn.models import l2mu  # noqa: E402


def shifted_legendre(order: int, r: np.ndarray) -> np.ndarray:
    """P̃_i(r) = P_i(2r − 1), the basis the LMU memory projects its window onto."""
    from numpy.polynomial import legendre
    return np.stack([legendre.legval(2 * r - 1, np.eye(order)[i]) for i in range(order)])


def run_lmu(a_bar, b_bar, u):
    m = np.zeros(len(b_bar))
    out = []
    for value in u:
        m = a_bar @ m + b_bar * value
        out.append(m)
    return np.array(out)


def test_legendre_system_matches_the_lmu_paper():
    a, b = l2mu.legendre_system(3)
    assert a.tolist() == [[-1, -1, -1], [3, -3, -3], [-5, 5, -5]]
    assert b.tolist() == [1, -3, 5]


def test_memory_with_a_bar_reconstructs_the_delayed_window():
    order, theta = 6, 20.0
    a_bar, b_bar = l2mu.lmu_matrices(order, theta)
    t = np.arange(400)
    u = np.sin(2 * np.pi * t / 60)
    m = run_lmu(a_bar, b_bar, u)
    for delay in (0.0, 5.0, 10.0, 15.0):
        basis = shifted_legendre(order, np.array([delay / theta]))[:, 0]
        # Voelker et al.: u(t − θ') ≈ Σ_i P̃_i(θ'/θ) m_i(t)
        recon = m[100:] @ basis
        target = np.sin(2 * np.pi * (t[100:] - delay) / 60)
        assert np.abs(recon - target).max() < 0.08, delay  # Legendre order 6 truncation
    wrong = run_lmu(a_bar.T, b_bar, u)  # the transpose bug of the public code
    basis = shifted_legendre(order, np.array([0.5]))[:, 0]
    assert np.abs(wrong[100:] @ basis - np.sin(2 * np.pi * (t[100:] - 10) / 60)).max() > 0.3


@pytest.mark.parametrize("variant", ["leaky", "synaptic"])
def test_graph_structure_and_shapes(variant):
    cfg = l2mu.L2MUConfig(channels=6, classes=5, order=3, memory=7, hidden=11, population=4,
                          variant=variant)
    g = l2mu.build_graph(cfg, l2mu.init_params(cfg, seed=2), dt=0.05)
    n = g.nodes
    assert n["encoder"].out_size == 24 and n["u"].size == 7 and n["m"].size == 21
    assert n["h"].size == 11 and n["output"].size == 5
    a_bar, b_bar = l2mu.lmu_matrices(3, cfg.theta)
    assert np.allclose(n["m_from_m"].weight, a_bar, atol=1e-7)  # Ā itself, not Āᵀ
    assert n["m_from_m"].groups == 7 and np.allclose(n["m_from_u"].weight[:, 0], b_bar)
    neuron = "CubaLIF" if variant == "synaptic" else "LIF"
    assert {type(n[p]).__name__ for p in ("u", "m", "h")} == {neuron}
    # s_h and s_m of the previous step feed u; m feeds h in the same step
    assert set(g.recurrent) == {("h", "u_from_h"), ("m", "u_from_m"), ("m", "m_from_m"),
                                ("h", "h_from_h")}
    assert ("m", "h_from_m") in g.edges
    assert g.dt == 0.05


def test_grouped_memory_applies_a_bar_to_each_row():
    cfg = l2mu.L2MUConfig(channels=1, classes=2, order=4, memory=3)
    g = l2mu.build_graph(cfg, l2mu.init_params(cfg))
    program = edgesnn.compile_graph(g)
    op = next(o for o in program.ops if o.name == "m_from_m")
    from edgesnn.compile.kernels import f_grouped
    x = np.random.default_rng(0).normal(size=(1, 12)).astype(np.float32)
    y, _ = f_grouped(op, x, {})
    a_bar, _ = l2mu.lmu_matrices(4, cfg.theta)
    np.testing.assert_allclose(y.reshape(3, 4), x.reshape(3, 4) @ a_bar.T, rtol=1e-5, atol=1e-6)


def test_normalisation_is_folded_into_the_encoder():
    cfg = l2mu.L2MUConfig(channels=2, classes=2, population=3)
    p = l2mu.init_params(cfg, seed=1)
    p["norm_mean"] = np.array([3.0, -1.0], np.float32)
    p["norm_std"] = np.array([2.0, 0.5], np.float32)
    enc = l2mu.build_graph(cfg, p).nodes["encoder"]
    x = np.array([5.0, 0.0], np.float32)
    raw = np.repeat(x, 3) * enc.weight + enc.bias
    z = (np.repeat(x, 3) - np.repeat(p["norm_mean"], 3)) / np.repeat(p["norm_std"], 3)
    np.testing.assert_allclose(raw, z * p["enc_weight"].ravel() + p["enc_bias"].ravel(), atol=1e-5)


def test_params_round_trip_through_the_graph():
    for variant in ("leaky", "synaptic"):
        for readout in ("li", "lif"):
            cfg = l2mu.L2MUConfig(channels=3, classes=2, variant=variant, readout=readout)
            g = l2mu.build_graph(cfg, l2mu.init_params(cfg, seed=4))
            assert l2mu.build_graph(cfg, l2mu.params_from_graph(cfg, g)) == g


@pytest.mark.parametrize("variant", ["leaky", "synaptic"])
@pytest.mark.parametrize("readout", ["li", "lif"])
def test_float_runtime_reproduces_the_torch_forward_pass(variant, readout):
    torch = pytest.importorskip("torch", reason="extra 'train'")
    from edgesnn.models.l2mu_train import L2MUNet

    cfg = l2mu.L2MUConfig(channels=6, classes=4, variant=variant, readout=readout)
    params = l2mu.init_params(cfg, seed=5)
    params["norm_mean"] = np.linspace(-1, 1, 6).astype(np.float32)
    params["norm_std"] = np.linspace(0.5, 3, 6).astype(np.float32)
    x = (np.random.default_rng(1).normal(size=(4, 80, 6)) * 3).astype(np.float32)
    with torch.no_grad():
        theirs = L2MUNet(cfg, params)(torch.from_numpy(x)).numpy()
    ours = edgesnn.Runtime(edgesnn.Model(l2mu.build_graph(cfg, params))).run(x)
    assert np.abs(ours).max() > 0.1  # the network is active
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)

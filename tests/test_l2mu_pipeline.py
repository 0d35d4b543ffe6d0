"""L2MU end to end: CLI train → eval, reproducibility, streaming, real data."""

import json
from pathlib import Path

import numpy as np
import pytest

import edgesnn
from edgesnn.cli import main
from edgesnn.classify import StreamingClassifier, window_logits
from edgesnn.data import har

torch = pytest.importorskip("torch", reason="L2MU training needs extra 'train'")
pytest.importorskip("scipy", reason="L2MU training needs extra 'train'")
from edgesnn.models import l2mu  # noqa: E402
from edgesnn.models.l2mu_train import train_l2mu  # noqa: E402

BASICMOTIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "har_basicmotions"
SMALL = ["--hidden", "16", "--memory", "4", "--population", "4", "--epochs", "6"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small L2MU trained through the CLI on synthetic data."""
    out = tmp_path_factory.mktemp("l2mu") / "model.esnn"
    assert main(["train", "l2mu", "--data", "synthetic", "--out", str(out), *SMALL,
                 "--calib-windows", "8"]) == 0
    return out


def test_cli_train_writes_a_quantized_model_with_its_metadata(trained):
    model = edgesnn.load_model(trained)
    meta = model.metadata
    assert model.quantization is not None
    assert meta["classes"] == list(har.SYNTHETIC_CLASSES)
    assert meta["channels"] == list(har.SYNTHETIC_CHANNELS)
    assert meta["l2mu"]["hidden"] == 16 and meta["training"]["split"]["by"] == "auto"
    assert meta["decision"] == {"aggregate": "mean", "logit_scale": 1.0}
    assert model.graph.dt == pytest.approx(1 / 20)


def test_cli_eval_prints_both_backends_and_writes_the_plot(trained, tmp_path, capsys):
    png = tmp_path / "cm.png"
    assert main(["eval", str(trained), "--data", "synthetic", "--split", "test",
                 "--plot", str(png), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["backend"]: r for r in report["rows"]}
    assert set(rows) == {"numpy-float", "numpy-int"}
    for r in rows.values():
        cm = np.array(r["confusion"])
        assert cm.shape == (5, 5) and cm.sum() == report["windows"]
        assert r["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
        assert r["flash"] > 0 and r["ram"] > 0 and r["synaptic_ops"] > 0
    assert rows["numpy-int"]["flash"] < rows["numpy-float"]["flash"]
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_eval_table_and_latency(trained, capsys):
    assert main(["eval", str(trained), "--data", "synthetic", "--split", "val",
                 "--latency"]) == 0
    out = capsys.readouterr().out
    for text in ("numpy-float", "numpy-int", "pytorch", "ms/window", "confusion matrix"):
        assert text in out


def test_eval_rejects_data_that_does_not_fit(trained, tmp_path, capsys):
    ds = har.synthetic(n_subjects=3, windows_per_class=3, seed=1)
    wrong = har.HarDataset(ds.x[:, :, :4], ds.y, ds.classes, ds.channels[:4], ds.subjects, 20.0)
    har.save_npz(wrong, tmp_path / "four.npz")
    assert main(["eval", str(trained), "--data", str(tmp_path / "four.npz")]) == 1
    assert "channels" in capsys.readouterr().err
    assert main(["eval", str(trained), "--data", str(tmp_path / "missing.npz")]) == 1


def test_training_is_reproducible_for_a_seed():
    ds = har.synthetic(n_subjects=4, windows_per_class=8, steps=20, seed=3)
    cfg = l2mu.L2MUConfig(channels=6, classes=5, hidden=8, memory=4, population=2)
    runs = [train_l2mu(cfg, ds.x, ds.y, ds.x[:10], ds.y[:10], epochs=3, seed=7,
                       progress=False) for _ in range(2)]
    assert runs[0].params.keys() == runs[1].params.keys()
    assert all(np.array_equal(runs[0].params[k], runs[1].params[k]) for k in runs[0].params)
    other = train_l2mu(cfg, ds.x, ds.y, ds.x[:10], ds.y[:10], epochs=3, seed=8, progress=False)
    assert not np.array_equal(other.params["w_x"], runs[0].params["w_x"])


@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_streaming_with_reset_equals_windowed_classification(trained, backend):
    model = edgesnn.load_model(trained)
    ds = har.synthetic(n_subjects=2, windows_per_class=4, seed=5)
    expected = window_logits(edgesnn.Runtime(model, backend), ds.x)
    stream = StreamingClassifier(edgesnn.Runtime(model, backend), hop=ds.x.shape[1],
                                 reset_each_decision=True)
    decisions = [d for d in (stream.push(s) for s in ds.x.reshape(-1, 6)) if d is not None]
    assert len(decisions) == len(ds.x)
    got = np.array([d.logits for d in decisions])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert [d.label for d in decisions] == expected.argmax(axis=1).tolist()
    assert all(0 < d.confidence <= 1 and d.name in ds.classes for d in decisions)


def test_streaming_keeps_state_and_rejects_bad_samples(trained):
    model = edgesnn.load_model(trained)
    stream = StreamingClassifier(edgesnn.Runtime(model, "numpy-int"), hop=10)
    samples = har.synthetic(n_subjects=2, windows_per_class=2, seed=6).x.reshape(-1, 6)
    out = [stream.push(s) for s in samples[:35]]
    assert [i for i, d in enumerate(out) if d is not None] == [9, 19, 29]
    state = {k: v.copy() for k, v in stream.runtime.state.items()}
    with pytest.raises(edgesnn.errors.InputError):
        stream.push(np.full(6, np.nan))
    with pytest.raises(edgesnn.errors.InputError):
        stream.push(np.zeros(5))
    assert all(np.array_equal(state[k], stream.runtime.state[k]) for k in state)


@pytest.mark.slow
def test_basicmotions_real_data(tmp_path, capsys):
    if not BASICMOTIONS.is_dir():
        pytest.skip(f"real data not present at {BASICMOTIONS} (it ships beside the repo in CI)")
    out = tmp_path / "bm.esnn"
    assert main(["train", "l2mu", "--data", str(BASICMOTIONS / "train.npz"), "--test-fraction",
                 "0", "--out", str(out), "--seed", "0"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--data", str(BASICMOTIONS / "test.npz"), "--json"]) == 0
    rows = {r["backend"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["numpy-float"]["accuracy"] >= 0.95
    assert abs(rows["numpy-int"]["accuracy"] - rows["numpy-float"]["accuracy"]) <= 0.025


def test_quantized_l2mu_is_deterministic(trained):
    xs = har.synthetic(n_subjects=2, windows_per_class=2, seed=8).x
    runs = []
    for _ in range(2):
        program = edgesnn.load(trained, backend="numpy-int").executor
        state = program.init_state(len(xs))
        xq = program.quantize_input(xs)
        outs = []
        for t in range(xs.shape[1]):
            y, state = program.step_int(state, xq[:, t])
            outs.append(y)
        runs.append((np.stack(outs), state))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert all(np.issubdtype(v.dtype, np.integer) for v in runs[0][1].values())


def test_learnable_decays_and_thresholds_stay_valid():
    ds = har.synthetic(n_subjects=4, windows_per_class=8, steps=20, seed=2)
    cfg = l2mu.L2MUConfig(channels=6, classes=5, hidden=8, memory=4, population=2)
    fixed = train_l2mu(cfg, ds.x, ds.y, ds.x[:10], ds.y[:10], epochs=3, progress=False)
    learned = train_l2mu(cfg, ds.x, ds.y, ds.x[:10], ds.y[:10], epochs=3, progress=False,
                         learn_beta=True, learn_threshold=True, readout_lr=0.2, lr=0.2)
    assert np.all(fixed.params["h_beta"] == cfg.beta)
    assert not np.allclose(learned.params["h_beta"], cfg.beta)
    assert not np.allclose(learned.params["h_threshold"], cfg.threshold)
    for name, value in learned.params.items():
        if name.endswith("_beta"):
            assert value.min() >= 0 and value.max() <= 1, name
        if name.endswith("_threshold"):
            assert value.min() > 0, name
    l2mu.build_graph(cfg, learned.params)  # still a valid graph

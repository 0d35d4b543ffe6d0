"""The edgesnn command: info, run, quantize, bench, --help, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgesnn
from edgesnn.cli import main
from edgesnn.ir import LI, Affine, CubaLIF, Graph, Input, Linear, Output, SpikeEncoder
from edgesnn.models.reference import REFERENCE_MODEL, lif_mlp, reference_input

REF = str(REFERENCE_MODEL)


# ----------------------------------------------------------------------------- helpers

def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the command in-process; a Python exception escaping main() is a bug (the
    user would see a traceback), so it fails the test with a clear message."""
    argv = [str(a) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: --help, usage errors
        rc = exc.code
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"'edgesnn {' '.join(argv)}' raised {type(exc).__name__}: {exc} "
                    "(a traceback instead of a one-line error)")
    out, err = capsys.readouterr()
    return rc, out, err


def expect_error(capsys, *argv, needles=()) -> str:
    rc, out, err = cli(capsys, *argv)
    assert rc != 0 and rc == 1, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("edgesnn: error: "), lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def ref_model():
    return edgesnn.load_model(REFERENCE_MODEL)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small models on disk: float-only (4 -> 8 -> 3 LIF) and a quantized value-output
    model (3 channels -> encoder -> CuBa-LIF with a recurrent loop -> LI readout)."""
    d = tmp_path_factory.mktemp("models")
    edgesnn.save(lif_mlp((4, 8, 3), seed=2), d / "float.esnn")
    rng = np.random.default_rng(0)
    g = Graph({"in": Input(3),
               "enc": SpikeEncoder(3, 4, rng.normal(0, 1.5, (3, 4)), rng.normal(0, 0.2, (3, 4)),
                                   0.8, 0.5),
               "fc": Affine(rng.normal(0, 0.6, (8, 12)), rng.normal(0, 0.1, 8)),
               "hid": CubaLIF(8, 0.6, 0.85, 1.0), "rec": Linear(rng.normal(0, 0.4, (8, 8))),
               "ro": Linear(rng.normal(0, 0.5, (2, 8))), "li": LI(2, 0.9), "out": Output(2)},
              [("in", "enc"), ("enc", "fc"), ("fc", "hid"), ("rec", "hid"), ("hid", "ro"),
               ("ro", "li"), ("li", "out")], recurrent=[("hid", "rec")], dt=0.01)
    calib = rng.normal(0, 1, (3, 60, 3)).astype(np.float32)
    values = edgesnn.quantize(edgesnn.Model(g, metadata={"name": "values"}), calib)
    edgesnn.save(values, d / "values.esnn")
    small_q = edgesnn.quantize(lif_mlp((4, 8, 3), seed=2), rng.normal(0, 1, (2, 20, 4)))
    edgesnn.save(small_q, d / "small-q.esnn")
    return {"float": d / "float.esnn", "values": d / "values.esnn", "small_q": d / "small-q.esnn"}


def _write_csv(path, x: np.ndarray, header: bool) -> None:
    lines = [",".join(f"ch{i}" for i in range(x.shape[1]))] if header else []
    lines += [",".join(f"{v:.9g}" for v in row) for row in x]  # float32 survives %.9g
    path.write_text("\n".join(lines) + "\n")


def _read_csv_output(path) -> np.ndarray:
    head, *rows = path.read_text().splitlines()
    assert head.split(",")[0] == "y0"
    return np.array([[float(c) for c in r.split(",")] for r in rows], dtype=np.float32)


# -------------------------------------------------------------------------------- info

def test_info_prints_memory_and_quantization_error(capsys, ref_model):
    rc, out, err = cli(capsys, "info", REF)
    assert rc == 0, err
    q = ref_model.quantization
    for key, program in (("float32", edgesnn.compile_graph(ref_model.graph)),
                         ("fixed", edgesnn.compile_graph(ref_model.graph, q))):
        m = program.memory()
        line = next(ln for ln in out.splitlines() if ln.startswith(f"memory   {key}"))
        assert f"flash {m.flash:>9,} B" in line and f"RAM {m.ram:>8,} B" in line, line
    e = q.error
    assert f"mean |Δ| {e['output_mean_abs_error']:.4g}" in out
    assert f"max |Δ| {e['output_max_abs_error']:.4g}" in out
    assert f"calibrated on {q.calibration['sequences']} sequences" in out
    assert "input    64 features" in out and "output   10 spikes" in out
    for name in ref_model.graph.nodes:
        assert name in out


def test_info_json_matches_compiled_memory(capsys, ref_model):
    rc, out, _ = cli(capsys, "info", REF, "--json")
    assert rc == 0
    info = json.loads(out)
    expect = {"float32": edgesnn.compile_graph(ref_model.graph).memory(),
              "fixed": edgesnn.compile_graph(ref_model.graph, ref_model.quantization).memory()}
    assert set(info["memory"]) == set(expect)
    for key, m in expect.items():
        assert info["memory"][key] == {"flash": m.flash, "ram": m.ram, "state": m.state,
                                       "scratch": m.scratch}
        assert m.flash > 0 and m.ram > 0
    assert info["memory"]["fixed"]["flash"] < info["memory"]["float32"]["flash"]
    assert info["quantization"]["error"] == ref_model.quantization.error
    assert info["input"] == 64 and info["output"] == 10 and info["output_spiking"] is True
    assert info["metadata"] == ref_model.metadata
    assert [n["name"] for n in info["nodes"]] == ref_model.graph.order
    assert info["file"]["bytes"] == REFERENCE_MODEL.stat().st_size


def test_info_on_float_only_model(capsys, files):
    rc, out, _ = cli(capsys, "info", files["float"], "--json")
    assert rc == 0
    info = json.loads(out)
    assert info["quantization"] is None and list(info["memory"]) == ["float32"]
    rc, out, _ = cli(capsys, "info", files["float"])
    assert rc == 0 and "quant    none" in out and "edgesnn quantize" in out


def test_info_with_numeric_class_labels(capsys, tmp_path):
    # class labels are JSON values; digits as labels ([0, 1, 2]) are an ordinary choice
    model = lif_mlp((4, 8, 3))
    model.metadata.update(classes=[0, 1, 2], channels=[10, 11, 12, 13])
    edgesnn.save(model, tmp_path / "digits.esnn")
    rc, out, err = cli(capsys, "info", tmp_path / "digits.esnn")
    assert rc == 0, err
    assert "0, 1, 2" in out


# --------------------------------------------------------------------------------- run

def _fresh_runs(model, backend, xs):
    return np.stack([edgesnn.Runtime(model, backend).run(x) for x in xs])


@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_run_npz_batch(capsys, tmp_path, ref_model, backend):
    # 300 steps: more than the CLI's 256-step chunk, so the state must carry over
    xs = reference_input(sequences=2, steps=300, seed=5)
    np.savez(tmp_path / "x.npz", x=xs)
    rc, out, err = cli(capsys, "run", REF, "-i", tmp_path / "x.npz", "-o", tmp_path / "y.npz",
                       "--backend", backend)
    assert rc == 0, err
    assert "ran 2 sequence(s) of 300 steps" in out
    with np.load(tmp_path / "y.npz") as f:
        y = f["y"]
    assert y.shape == (2, 300, 10)
    assert np.array_equal(y, edgesnn.Runtime(ref_model, backend).run(xs))
    singles = _fresh_runs(ref_model, backend, xs)
    if backend == "numpy-int":
        assert np.array_equal(y, singles)
    else:  # BLAS may order a batched sum differently
        np.testing.assert_allclose(y, singles, rtol=0, atol=1e-5)
    assert y.sum() > 0


@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_run_npz_single_sequence_to_csv(capsys, tmp_path, files, backend):
    model = edgesnn.load_model(files["values"])
    x = np.random.default_rng(3).normal(0, 1, (40, 3)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    rc, _, err = cli(capsys, "run", files["values"], "-i", tmp_path / "x.npz",
                     "-o", tmp_path / "y.csv", "-b", backend)
    assert rc == 0, err
    y = _read_csv_output(tmp_path / "y.csv")
    expected = edgesnn.Runtime(model, backend).run(x)
    assert y.shape == expected.shape == (40, 2)
    assert np.array_equal(y, expected)  # values, not only spikes: %.9g is exact for float32
    assert np.abs(expected).max() > 0


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_run_csv_input(capsys, tmp_path, files, backend, header):
    model = edgesnn.load_model(files["values"])
    x = np.random.default_rng(4).normal(0, 1, (30, 3)).astype(np.float32)
    _write_csv(tmp_path / "x.csv", x, header)
    rc, _, err = cli(capsys, "run", files["values"], "--input", tmp_path / "x.csv",
                     "--output", tmp_path / "y.npz", "--backend", backend)
    assert rc == 0, err
    with np.load(tmp_path / "y.npz") as f:
        y = f["y"]
    assert y.shape == (30, 2)  # every data row is a step; only a header is skipped
    assert np.array_equal(y, edgesnn.Runtime(model, backend).run(x))


def test_run_csv_with_utf8_bom_keeps_first_row(capsys, tmp_path, files):
    # Spreadsheet "CSV UTF-8" exports start with a byte-order mark; the first data row
    # must not be mistaken for a header and dropped.
    model = edgesnn.load_model(files["values"])
    x = np.random.default_rng(6).normal(0, 1, (5, 3)).astype(np.float32)
    text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in x) + "\n"
    (tmp_path / "x.csv").write_bytes(text.encode("utf-8-sig"))
    rc, _, err = cli(capsys, "run", files["values"], "-i", tmp_path / "x.csv",
                     "-o", tmp_path / "y.npz")
    assert rc == 0, err
    with np.load(tmp_path / "y.npz") as f:
        y = f["y"]
    assert y.shape == (5, 2), "a data row was dropped"
    assert np.array_equal(y, edgesnn.Runtime(model).run(x))


# ---------------------------------------------------------------------------- quantize

def test_quantize_writes_a_model_that_runs_on_numpy_int(capsys, tmp_path, files):
    calib = np.random.default_rng(8).normal(0, 1, (3, 20, 4)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=calib)
    out_path = tmp_path / "q.esnn"
    rc, out, err = cli(capsys, "quantize", files["float"], "--calib", tmp_path / "calib.npz",
                       "--out", out_path)
    assert rc == 0, err
    assert f"wrote {out_path}" in out
    q = edgesnn.load_model(out_path)
    assert q.quantization is not None
    assert q.quantization.calibration == {"sequences": 3, "steps": 60}
    direct = edgesnn.quantize(edgesnn.load_model(files["float"]), calib)
    assert q.quantization.scales == direct.quantization.scales
    assert q.quantization.error == direct.quantization.error
    assert q.graph == direct.graph and q.metadata == direct.metadata
    x = np.random.default_rng(9).normal(0, 1, (25, 4)).astype(np.float32)
    y = edgesnn.Runtime(q, "numpy-int").run(x)
    assert y.shape == (25, 3) and np.array_equal(y, edgesnn.Runtime(direct, "numpy-int").run(x))
    # and the command line runs it too
    np.savez(tmp_path / "x.npz", x=x)
    rc, _, err = cli(capsys, "run", out_path, "-i", tmp_path / "x.npz", "-o", tmp_path / "y.npz",
                     "-b", "numpy-int")
    assert rc == 0, err
    with np.load(tmp_path / "y.npz") as f:
        assert np.array_equal(f["y"], y)


# ------------------------------------------------------------------------------- bench

def test_bench_json(capsys):
    rc, out, err = cli(capsys, "bench", REF, "--steps", "50", "--warmup", "5", "--no-snntorch",
                       "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["steps"] == 50 and report["model"] == REF
    rows = report["rows"]
    assert [r["backend"] for r in rows] == ["numpy-float", "numpy-int"]
    for r in rows:
        for key in ("median_us", "p99_us", "steps_per_s", "speedup"):
            assert isinstance(r[key], (int, float)) and r[key] > 0, (r["backend"], key, r[key])


# -------------------------------------------------------------------------- bad input

@pytest.fixture
def inputs(tmp_path):
    """Named input files for the reference model (64 features) and the small models."""
    p = {}
    good = reference_input(sequences=2, steps=12, seed=2)
    np.savez(tmp_path / "good.npz", x=good)
    p["good"] = tmp_path / "good.npz"
    np.savez(tmp_path / "wide.npz", x=np.zeros((2, 12, 65), np.float32))
    p["wide"] = tmp_path / "wide.npz"
    for name, value in (("nan", np.nan), ("inf", np.inf), ("neginf", -np.inf)):
        x = good.copy()
        x[1, 5, 7] = value
        np.savez(tmp_path / f"{name}.npz", x=x)
        p[name] = tmp_path / f"{name}.npz"
    np.savez(tmp_path / "nokey.npz", data=good)
    p["nokey"] = tmp_path / "nokey.npz"
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 this is not really a zip" * 3)
    p["garbage"] = tmp_path / "garbage.npz"
    (tmp_path / "text.npz").write_text("hello\n")
    p["text_npz"] = tmp_path / "text.npz"
    (tmp_path / "ragged.csv").write_text("1,2,3,4\n5,6,7,8\n9,10,11\n")
    p["ragged"] = tmp_path / "ragged.csv"
    (tmp_path / "word.csv").write_text("a,b,c,d\n1,2,3,4\n5,six,7,8\n")
    p["word"] = tmp_path / "word.csv"
    (tmp_path / "x.txt").write_text("1,2,3,4\n")
    p["txt"] = tmp_path / "x.txt"
    np.savez(tmp_path / "calib5.npz", x=np.zeros((2, 10, 5), np.float32))
    p["calib5"] = tmp_path / "calib5.npz"
    np.savez(tmp_path / "x4.npz", x=np.ones((1, 10, 4), np.float32))
    p["x4"] = tmp_path / "x4.npz"
    corrupt = bytearray(REFERENCE_MODEL.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x10
    (tmp_path / "corrupt.esnn").write_bytes(bytes(corrupt))
    p["corrupt"] = tmp_path / "corrupt.esnn"
    return p


def test_missing_model_file(capsys, tmp_path):
    for cmd in (["info"], ["bench", "--steps", "5"]):
        expect_error(capsys, *cmd, tmp_path / "nope.esnn", needles=["no such model file"])
    expect_error(capsys, "run", tmp_path / "nope.esnn", "-i", tmp_path / "x.npz",
                 "-o", tmp_path / "y.npz", needles=["no such model file"])


def test_corrupt_model_file(capsys, inputs, tmp_path):
    expect_error(capsys, "info", inputs["corrupt"], needles=["corrupt", "checksum"])
    expect_error(capsys, "run", inputs["corrupt"], "-i", inputs["good"], "-o",
                 tmp_path / "y.npz", needles=["corrupt"])


def test_unknown_backend_lists_available(capsys, inputs, tmp_path):
    msg = expect_error(capsys, "run", REF, "-i", inputs["good"], "-o", tmp_path / "y.npz",
                       "--backend", "nope", needles=["nope", "numpy-float", "numpy-int"])
    assert "available" in msg
    expect_error(capsys, "bench", REF, "--backend", "nope", "--steps", "5", "--no-snntorch",
                 needles=["nope", "numpy-float"])
    assert not (tmp_path / "y.npz").exists()


@pytest.mark.parametrize("key, needles", [
    ("wide", ["65 features", "64"]),
    ("nan", ["NaN or Inf"]),
    ("inf", ["NaN or Inf"]),
    ("neginf", ["NaN or Inf"]),
    ("nokey", ["'x'", "data"]),
    ("garbage", ["not a readable .npz"]),
    ("text_npz", ["not a readable .npz"]),
    ("ragged", ["row 3", "columns"]),
    ("word", ["not numeric", "six"]),
    ("txt", ["unsupported input format", ".txt"]),
])
@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_bad_run_input(capsys, tmp_path, inputs, files, key, needles, backend):
    # the 4-column files go to a 4-feature quantized model, so only the file is wrong
    model = files["small_q"] if key in ("ragged", "word", "txt") else REF
    expect_error(capsys, "run", model, "-i", inputs[key], "-o", tmp_path / "y.npz",
                 "-b", backend, needles=needles)
    assert not (tmp_path / "y.npz").exists()


def test_numpy_int_on_float_only_model(capsys, tmp_path, inputs, files):
    expect_error(capsys, "run", files["float"], "-i", inputs["x4"], "-o", tmp_path / "y.npz",
                 "-b", "numpy-int", needles=["quantize"])
    expect_error(capsys, "bench", files["float"], "-b", "numpy-int", "--steps", "5",
                 "--no-snntorch", needles=["quantize"])


def test_quantize_with_calibration_of_wrong_width(capsys, tmp_path, inputs, files):
    expect_error(capsys, "quantize", files["float"], "--calib", inputs["calib5"],
                 "--out", tmp_path / "q.esnn", needles=["calibration", "4"])
    assert not (tmp_path / "q.esnn").exists()


def test_quantize_with_nonfinite_calibration(capsys, tmp_path, inputs):
    expect_error(capsys, "quantize", REF, "--calib", inputs["nan"], "--out", tmp_path / "q.esnn",
                 needles=["NaN or Inf"])


def test_multi_sequence_output_to_csv_is_refused(capsys, tmp_path, inputs):
    expect_error(capsys, "run", REF, "-i", inputs["good"], "-o", tmp_path / "y.csv",
                 needles=["CSV holds one sequence", ".npz"])


def test_input_with_zero_steps(capsys, tmp_path):
    for name, shape in (("seqs", (2, 0, 64)), ("one", (0, 64))):
        np.savez(tmp_path / f"{name}.npz", x=np.zeros(shape, np.float32))
        expect_error(capsys, "run", REF, "-i", tmp_path / f"{name}.npz", "-o", tmp_path / "y.npz")


def test_npy_file_named_npz(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 64), np.float32))
    shutil.move(tmp_path / "x.npy", tmp_path / "x.npz")
    expect_error(capsys, "run", REF, "-i", tmp_path / "x.npz", "-o", tmp_path / "y.npz",
                 needles=["npz"])


def test_csv_that_is_not_utf8(capsys, tmp_path):
    (tmp_path / "x.csv").write_bytes("temp\xe9rature,b\n1,2\n".encode("latin-1"))
    expect_error(capsys, "run", REF, "-i", tmp_path / "x.csv", "-o", tmp_path / "y.npz")


def test_run_output_into_missing_directory(capsys, tmp_path, inputs):
    expect_error(capsys, "run", REF, "-i", inputs["good"], "-o", tmp_path / "no" / "y.npz",
                 needles=["y.npz"])


def test_quantize_output_into_missing_directory(capsys, tmp_path, inputs):
    expect_error(capsys, "quantize", REF, "-c", inputs["good"], "-o", tmp_path / "no" / "q.esnn",
                 needles=["q.esnn"])


def test_error_in_a_real_process_is_one_line(inputs):
    proc = subprocess.run([sys.executable, "-m", "edgesnn", "info", str(inputs["corrupt"])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgesnn: error:"), proc.stderr
    assert "corrupt" in lines[0] and str(inputs["corrupt"]) in lines[0]
    assert proc.stdout == ""


# -------------------------------------------------------------------------------- help

@pytest.mark.parametrize("command", [[], ["info"], ["run"], ["quantize"], ["bench"], ["demo"]],
                         ids=["top", "info", "run", "quantize", "bench", "demo"])
def test_help(capsys, command):
    rc, out, _ = cli(capsys, *command, "--help")
    assert rc == 0
    assert out.startswith(f"usage: {' '.join(['edgesnn', *command])}")
    if not command:
        for sub in ("info", "run", "quantize", "bench", "demo"):
            assert sub in out
    if command == ["run"]:
        assert "--input" in out and "--backend" in out and "numpy-int" in out


def test_version(capsys):
    rc, out, _ = cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"edgesnn {edgesnn.__version__}"


def test_no_command_is_a_usage_error(capsys):
    rc, _, err = cli(capsys)
    assert rc == 2 and "usage:" in err


# ---------------------------------------------------------------------- controllers

def test_evolve_then_sim_with_the_evolved_controller(tmp_path, capsys):
    pytest.importorskip("deap", reason="the 'evolve' extra is not installed")
    out = tmp_path / "pd.esnn"
    assert main(["evolve", "--target", "pd", "--neurons", "8", "--generations", "6",
                 "--population", "8", "--sim-sequences", "4", "--engine", "serial",
                 "--init", "ladder", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert out.exists() and np.isfinite(report["test_loss"])
    # the deployed model scores like the evolution's own simulator
    assert report["test_loss"] == pytest.approx(report["check_population_loss"], abs=1e-4)
    png = tmp_path / "flight.png"
    assert main(["sim", "-c", "pid", "-c", str(out), "--seconds", "20", "--schedule", "0.5,1.0",
                 "--backend", "numpy-int", "--plot", str(png), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["controller"] for r in rows] == ["PID", "pd"]
    assert all(np.isfinite(r["rmse_m"]) for r in rows)
    assert png.stat().st_size > 10_000


def test_sim_rejects_bad_arguments(tmp_path, capsys):
    assert main(["sim", "--schedule", "0.5,nan"]) == 1
    assert "--schedule" in capsys.readouterr().err
    not_a_controller = tmp_path / "x.esnn"
    not_a_controller.write_bytes(b"junk")
    assert main(["sim", "-c", str(not_a_controller)]) == 1
    assert "edgesnn: error:" in capsys.readouterr().err
    assert main(["evolve", "--init", str(not_a_controller), "--out", str(tmp_path / "o.esnn")]) == 1
    capsys.readouterr()
    assert main(["evolve", "--sigma", "0", "--out", str(tmp_path / "o.esnn")]) == 1
    assert "--sigma" in capsys.readouterr().err
    assert main(["evolve", "--flight-weight", "-1", "--out", str(tmp_path / "o.esnn")]) == 1
    assert "--flight-weight" in capsys.readouterr().err
    assert main(["evolve", "--fly-with", str(not_a_controller), "--out", str(tmp_path / "o.esnn")]) == 1
    assert "positive --flight-weight" in capsys.readouterr().err
    # a controller model whose parameter vector is missing: a clear error, not a KeyError
    from edgesnn.controllers.network import ControllerSpec, build_graph
    from edgesnn.modelfile import Model, save
    spec = ControllerSpec("pd", "lif", 4)
    bare = tmp_path / "bare.esnn"
    save(Model(build_graph(spec, spec.layout.from_unit(np.full(spec.layout.size, 0.5))),
               metadata={"controller": spec.as_dict()}), bare)
    assert main(["evolve", "--flight-weight", "1", "--fly-with", str(bare),
                 "--out", str(tmp_path / "o.esnn")]) == 1
    assert "parameter vector" in capsys.readouterr().err


def test_evolve_an_i_controller_that_flies_with_a_pd(tmp_path, capsys):
    pytest.importorskip("deap", reason="the 'evolve' extra is not installed")
    from edgesnn.controllers.mimic_data import simulated_pd_sequences
    from edgesnn.controllers.network import ControllerSpec, pd_ladder
    from edgesnn.controllers.pipeline import controller_model
    from edgesnn.modelfile import save

    pd = tmp_path / "pd.esnn"
    spec = ControllerSpec("pd", "lif", 8)
    save(controller_model(spec, pd_ladder(spec), simulated_pd_sequences(2, 0), {"name": "pd"}), pd)
    out = tmp_path / "i.esnn"
    assert main(["evolve", "--target", "i", "--neurons", "8", "--generations", "3",
                 "--population", "6", "--sim-sequences", "2", "--engine", "serial",
                 "--init", "ladder", "--flight-weight", "2", "--fly-with", str(pd),
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["flight_loss_m"] > 0
    flight = edgesnn.load_model(out).metadata["evolution"]["flight"]
    assert flight["weight"] == 2.0 and flight["partner"]["spec"] == spec.as_dict()


def test_sim_reports_the_pd_mimic_loss_on_real_logs(tmp_path, capsys):
    logs = Path(__file__).resolve().parents[2] / "shared" / "data" / "blimp_flights"
    if not logs.is_dir():
        pytest.skip(f"real flight logs not found at {logs}")
    from edgesnn.controllers.evolution import population_loss
    from edgesnn.controllers.flight_logs import load_logs
    from edgesnn.controllers.mimic_data import log_sequences
    from edgesnn.controllers.network import ControllerSpec, pd_ladder
    from edgesnn.controllers.pipeline import controller_model
    from edgesnn.modelfile import save

    spec = ControllerSpec("pd", "lif", 8)
    data = log_sequences(load_logs(logs))
    path = tmp_path / "ladder.esnn"
    save(controller_model(spec, pd_ladder(spec), data, {"name": "ladder"}), path)
    assert main(["sim", "-c", str(path), "--seconds", "10", "--logs", str(logs), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    # the deployed model on the logs scores as the evolution's own simulator does
    expected = float(population_loss(spec, pd_ladder(spec), data)[0])
    assert row["mimic_loss_real_logs"] == pytest.approx(expected, abs=1e-4)


def test_sim_with_a_missing_log_folder_fails_clearly(tmp_path, capsys):
    assert main(["sim", "-c", "pd", "--logs", str(tmp_path / "nowhere")]) == 1
    assert "no such directory" in capsys.readouterr().err

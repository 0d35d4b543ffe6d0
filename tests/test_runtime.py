"""The public runtime API, float-vs-fixed agreement, integer-only determinism."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgesnn
from edgesnn.compile import FIXED
from edgesnn.errors import BackendError, InputError, QuantizationError
from edgesnn.models.reference import REFERENCE_MODEL, reference_input

from conftest import sensor_like


@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_step_by_step_equals_run_and_state_persists(reference_model, backend):
    xs = reference_input(sequences=1, steps=60, seed=3)[0]
    rt = edgesnn.Runtime(reference_model, backend)
    stepped = np.stack([rt.step(x) for x in xs])
    rt.reset()
    whole = rt.run(xs)
    assert np.array_equal(stepped, whole)
    rt.reset()
    halves = np.concatenate([rt.run(xs[:25]), rt.run(xs[25:])])  # run continues the state
    assert np.array_equal(halves, whole)
    assert whole.shape == (60, 10) and whole.sum() > 0


@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
def test_batch_run_equals_single_runs(mixed_model, backend):
    xs = sensor_like(seed=4, sequences=3, steps=40)
    batched = edgesnn.Runtime(mixed_model, backend).run(xs)
    singles = np.stack([edgesnn.Runtime(mixed_model, backend).run(x) for x in xs])
    assert batched.shape == (3, 40, 2)
    if backend == "numpy-int":
        assert np.array_equal(batched, singles)
    else:  # BLAS may sum a batched product in another order: last-bit differences only
        np.testing.assert_allclose(batched, singles, rtol=0, atol=1e-5)


def test_functional_step_leaves_given_state_untouched(mixed_model):
    program = edgesnn.compile_graph(mixed_model.graph, mixed_model.quantization)
    state = program.init_state(1)
    _, state = program.step(state, np.ones(3))
    before = {k: v.copy() for k, v in state.items()}
    y1, s1 = program.step(state, np.full(3, 0.5))
    y2, s2 = program.step(state, np.full(3, 0.5))
    assert all(np.array_equal(before[k], state[k]) for k in state)
    assert np.array_equal(y1, y2) and all(np.array_equal(s1[k], s2[k]) for k in s1)


def test_fixed_and_float_agree_within_reported_error_on_new_data(reference_model):
    reported = reference_model.quantization.error["output_mean_abs_error"]
    xs = reference_input(sequences=8, steps=200, seed=11)  # not the calibration data
    yf = edgesnn.Runtime(reference_model, "numpy-float").run(xs)
    yq = edgesnn.Runtime(reference_model, "numpy-int").run(xs)
    measured = float(np.abs(yf - yq).mean())
    assert 0 < measured <= 1.25 * reported  # the ±25 % that `edgesnn info` states
    rates_f, rates_q = yf.mean(axis=1), yq.mean(axis=1)
    assert np.abs(rates_f - rates_q).max() < 0.05  # rate codes agree closely


def test_value_output_agrees_within_reported_error(mixed_model):
    err = mixed_model.quantization.error
    xs = sensor_like(seed=9, sequences=6)
    yf = edgesnn.Runtime(mixed_model, "numpy-float").run(xs)
    yq = edgesnn.Runtime(mixed_model, "numpy-int").run(xs)
    assert float(np.abs(yf - yq).mean()) <= 1.25 * err["output_mean_abs_error"]
    assert err["output_mean_abs_error"] < 0.05 * err["output_peak"]


def test_integer_path_uses_integers_only(mixed_model):
    program = edgesnn.compile_graph(mixed_model.graph, mixed_model.quantization)
    assert program.numerics == FIXED
    for op in program.ops:
        for name, arr in op.params.items():
            assert np.issubdtype(arr.dtype, np.integer), (op.name, name, arr.dtype)
    seen = []

    def observe(name, inp, out, updates):
        seen.extend([inp.dtype, out.dtype] + [v.dtype for v in updates.values()])

    state = program.init_state(2)
    xq = program.quantize_input(sensor_like(seed=2, sequences=2, steps=30))
    for t in range(30):
        _, state = program.core_step(state, xq[:, t].astype(np.int64), observe)
    assert seen and all(np.issubdtype(d, np.integer) for d in seen)
    assert all(np.issubdtype(v.dtype, np.integer) for v in state.values())


_DIGEST_SCRIPT = """
import hashlib, sys, numpy as np, edgesnn
from edgesnn.models.reference import REFERENCE_MODEL, reference_input
rt = edgesnn.load(REFERENCE_MODEL, backend="numpy-int")
program = rt.executor
state = program.init_state(4)
xq = program.quantize_input(reference_input(sequences=4, steps=120, seed=21))
h = hashlib.sha256()
for t in range(xq.shape[1]):
    y, state = program.step_int(state, xq[:, t])
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
for k in sorted(state):
    h.update(np.ascontiguousarray(state[k], dtype=np.int64).tobytes())
print(h.hexdigest())
"""

# sha256 of the shipped reference model's integer outputs and final state on a seeded
# input. Fixed-point results must be identical on every platform and run; if the
# integer kernels change on purpose, regenerate this and say so in the commit.
GOLDEN_DIGEST_FILE = os.path.join(os.path.dirname(__file__), "golden", "reference_int.sha256")


def test_fixed_point_is_deterministic_across_processes_and_thread_counts():
    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   MKL_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        digests.add(out)
    assert len(digests) == 1
    with open(GOLDEN_DIGEST_FILE) as fh:
        assert digests.pop() == fh.read().strip()


def test_numpy_int_needs_a_quantized_model(reference_model):
    float_only = edgesnn.Model(reference_model.graph)
    with pytest.raises(BackendError, match="quantize"):
        edgesnn.Runtime(float_only, "numpy-int")


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(BackendError, match="numpy-float"):
        edgesnn.load(REFERENCE_MODEL, backend="cuda-magic")


@pytest.mark.parametrize("backend", ["numpy-float", "numpy-int"])
@pytest.mark.parametrize("bad, message", [
    (np.zeros(63), "63 features"),
    (np.zeros((2, 65)), "65 features"),
    (np.zeros((2, 3, 4, 64)), "shape"),
    (np.array([np.nan] + [0.0] * 63), "NaN or Inf"),
    (np.array([np.inf] + [0.0] * 63), "NaN or Inf"),
    (np.array(["a"] * 64), "real numbers"),
])
def test_bad_step_input_is_a_clear_error_and_keeps_state(reference_model, backend, bad, message):
    rt = edgesnn.Runtime(reference_model, backend)
    rt.step(np.ones(64))
    before = {k: v.copy() for k, v in rt.state.items()}
    with pytest.raises(InputError, match=message):
        rt.step(bad)
    assert all(np.array_equal(before[k], rt.state[k]) for k in before)


def test_batch_change_without_reset_is_a_clear_error(reference_model):
    rt = edgesnn.Runtime(reference_model)
    rt.step(np.zeros((2, 64)))
    with pytest.raises(InputError, match="reset"):
        rt.step(np.zeros((3, 64)))
    rt.reset()
    assert rt.step(np.zeros((3, 64))).shape == (3, 10)


def test_run_rejects_bad_sequences(reference_model):
    rt = edgesnn.Runtime(reference_model, "numpy-int")
    with pytest.raises(InputError, match="shape"):
        rt.run(np.zeros(64))
    with pytest.raises(InputError, match="nothing to run"):
        rt.run(np.zeros((0, 64)))
    xs = np.zeros((5, 64))
    xs[3, 7] = np.nan
    with pytest.raises(InputError, match=r"\(3, 7\)"):
        rt.run(xs)


def test_calibration_errors(reference_model):
    with pytest.raises(QuantizationError, match="64"):
        edgesnn.quantize(reference_model, np.zeros((2, 10, 5)))
    bad = np.zeros((2, 10, 64))
    bad[0, 0, 0] = np.inf
    with pytest.raises(QuantizationError, match="NaN or Inf"):
        edgesnn.quantize(reference_model, bad)


def test_memory_is_what_the_buffers_take(reference_model):
    # 64 → Affine(128) → LIF(128) → Affine(10) → LIF(10), computed by hand:
    fc1, fc2 = 64 * 128, 128 * 10
    fixed = edgesnn.compile_graph(reference_model.graph, reference_model.quantization).memory()
    # int8 weights + int32 bias + int32 multiplier + int8 shift per channel; int32 β, ϑ
    assert fixed.flash == (fc1 + 128 * 9) + (fc2 + 10 * 9) + (128 + 10) * 8
    floating = edgesnn.compile_graph(reference_model.graph).memory()
    assert floating.flash == 4 * (fc1 + 128 + fc2 + 10) + (128 + 10) * 8
    for m in (fixed, floating):
        assert m.state == (128 + 10) * 4  # one int32/float32 membrane per neuron
    assert fixed.scratch == 64 * 4 + 128 * 4 + 128 + 10 * 4 + 10  # spikes take one byte
    assert fixed.ram == fixed.state + fixed.scratch


def test_device_side_runtime_imports_numpy_only():
    script = (
        "import sys, numpy as np, edgesnn\n"
        "from edgesnn.models.reference import REFERENCE_MODEL\n"
        "rt = edgesnn.load(REFERENCE_MODEL, backend='numpy-int')\n"
        "rt.run(np.zeros((5, 64)))\n"
        "heavy = {'tqdm', 'torch', 'snntorch', 'scipy', 'matplotlib', 'onnx', 'hypothesis'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "[]"


def test_snntorch_network_spikes_like_numpy_float(reference_model):
    pytest.importorskip("snntorch", reason="snnTorch not installed (extra 'bench')")
    from edgesnn.bench import snntorch_stepper

    xs = reference_input(sequences=1, steps=150, seed=5)[0]
    step = snntorch_stepper(reference_model.graph)
    theirs = np.stack([step(x) for x in xs])
    ours = edgesnn.Runtime(reference_model, "numpy-float").run(xs)
    assert ours.sum() > 50
    assert np.array_equal(theirs, ours)


def test_bench_rows_and_baseline(reference_model):
    from edgesnn.bench import bench_model, format_table, rows_as_dicts

    rows = bench_model(reference_model, ["numpy-float", "numpy-int"], steps=30, warmup=3)
    names = [r.backend for r in rows]
    assert names[:2] == ["numpy-float", "numpy-int"] and names[-1] == "snntorch"
    timed = [r for r in rows if np.isfinite(r.median_us)]
    assert all(r.median_us > 0 and r.p99_us >= r.median_us and r.steps_per_s > 0 for r in timed)
    base = [r for r in timed if r.speedup == 1.0]
    assert len(base) >= 1
    table = format_table(rows)
    assert all(n in table for n in names)
    json.dumps(rows_as_dicts(rows), allow_nan=False)  # JSON-safe even for skipped rows


@pytest.mark.slow
def test_demo_runs_the_loop_over_dds_end_to_end(tmp_path):
    out = subprocess.run([sys.executable, "-m", "edgesnn", "demo", "--seconds", "20",
                          "--plot", str(tmp_path / "flight.png")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.strip()}
    # every recorded image recognised so far is its place; the blimp holds 0.5 m
    ok, n = map(int, rows["place_recognition"][2].split("/"))
    assert n >= 10 and ok == n
    assert int(rows["imu_activity"][1]) >= 6
    assert "set-point 0.5 m" in out.stdout and (tmp_path / "flight.png").stat().st_size > 0

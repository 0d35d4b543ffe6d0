"""TFLite export (one step, state as explicit tensors) on LiteRT and TFLite Micro: the
float form against numpy-float (1e-5), the integer form bit-exact against numpy-int on
both runtimes, for the shipped models, every node type and every edge conversion, also
from states on the int32 rails; the limb arithmetic at int32's extremes; the report;
refusals and corrupt files."""

import numpy as np
import pytest
from backend_checks import (
    SHIPPED,
    assert_close,
    check_run_continues,
    compare_float,
    compare_int,
    float_inputs,
    input_size,
    int_inputs,
    rail_inputs,
)
from node_graphs import KINDS, ordinary_model, quantized_model

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.compile import Program, compile_graph, fixed
from edgesnn.controllers.snn_controller import SHIPPED_PD
from edgesnn.errors import BackendError, InputError, MissingExtraError, ModelFileError
from edgesnn.ir import LI, LIF, Affine, Graph, Input, Linear, Output, Threshold
from edgesnn.models.reference import L2MU_DEMO_MODEL, REFERENCE_MODEL

pytest.importorskip("flatbuffers", reason="extra 'tflite'")
pytest.importorskip("tflite", reason="extra 'tflite'")
pytest.importorskip("ai_edge_litert", reason="extra 'tflite'")
pytest.importorskip("tflite_micro", reason="extra 'tflite'")

from edgesnn.backends.tflite_rt import TfliteRunner  # noqa: E402  (needs the extra)
from edgesnn.export.tflite import (  # noqa: E402
    _V,
    _Fixed,
    describe_tflite,
    export_tflite,
    program_to_tflite,
    to_tflite,
)

INTEGER_BACKENDS = ("tflite-int", "tflite-micro")
FLOAT_OPS = {"ADD", "CAST", "FULLY_CONNECTED", "GREATER", "MUL", "RESHAPE", "SELECT_V2", "SUB"}
INTEGER_OPS = {"ADD", "CAST", "DIV", "FULLY_CONNECTED", "GREATER", "GREATER_EQUAL", "MAXIMUM",
               "MINIMUM", "MUL", "RESHAPE", "SUB"}


# ------------------------------------------------------------------- shipped models


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_float_form_matches_numpy_float(name):
    model = edgesnn.load_model(SHIPPED[name])
    ys = compare_float(model, "tflite", float_inputs(input_size(model)))
    assert len(np.unique(ys)) > 1


@pytest.mark.parametrize("backend", INTEGER_BACKENDS)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_integer_form_is_bit_exact(name, backend):
    model = edgesnn.load_model(SHIPPED[name])
    ys, state = compare_int(model, backend, int_inputs(input_size(model)))
    assert len(np.unique(ys)) > 1  # the outputs move: the comparison is not of constants
    assert all(np.any(v != 0) for v in state.values())


# ------------------------------------------------------------------ every node type


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_type_float_form_matches_numpy_float(kind):
    rng = np.random.default_rng(7)
    model = ordinary_model(kind, rng)
    x = 3 * rng.normal(0, 1, (3, 40, input_size(model))).astype(np.float32)
    assert len(np.unique(compare_float(model, "tflite", x))) > 1


@pytest.mark.parametrize("backend", INTEGER_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_node_type_integer_form_is_bit_exact(kind, backend):
    rng = np.random.default_rng(7)
    model = quantized_model(kind, rng)
    ys, _ = compare_int(model, backend, rail_inputs(model, rng, 2, 40))
    assert len(np.unique(ys)) > 1


def _conversions_model() -> edgesnn.Model:
    """Edges that join different scales: spikes into value scales (× k), values rescaled
    into a neuron's scale, a node's input summed from three sources, recurrent values."""
    rng = np.random.default_rng(3)
    graph = Graph({"in": Input(3), "fc": Affine(rng.normal(0, 1, (5, 3)), rng.normal(0, .1, 5)),
                   "lif": LIF(5, 0.9, 0.8), "li": LI(5, 0.8), "thr": Threshold(5, -0.3),
                   "ro": Linear(rng.normal(0, 1, (2, 5))), "out": Output(2)},
                  [("in", "fc"), ("fc", "lif"), ("fc", "li"), ("lif", "li"), ("li", "thr"),
                   ("thr", "ro"), ("li", "ro"), ("ro", "out")],
                  recurrent=[("li", "lif"), ("fc", "li")], dt=0.01)
    return edgesnn.quantize(edgesnn.Model(graph), rng.normal(0, 1, (4, 60, 3)).astype(np.float32))


@pytest.mark.parametrize("backend", INTEGER_BACKENDS)
def test_edge_conversions_are_bit_exact(backend):
    model = _conversions_model()
    prog = compile_graph(model.graph, model.quantization)
    conversions = {s.conversion for op in prog.ops for s in op.sources}
    assert {"spike", "rescale"} <= conversions
    compare_int(model, backend, int_inputs(3, steps=60, seed=4))


def _extreme_state(prog, batch: int, rng) -> dict:
    """A state anywhere in int32, a third of it on or next to the rails (spike buffers
    hold 0/1, as every step writes them)."""
    state = {}
    for name, width, dtype in prog.state_layout():
        if np.dtype(dtype) == np.int8:
            state[name] = rng.integers(0, 2, (batch, width)).astype(np.int8)
            continue
        v = rng.integers(-2 ** 31, 2 ** 31, (batch, width))
        rail = rng.random((batch, width)) < 0.3
        v[rail] = rng.choice([-2 ** 31, -2 ** 31 + 1, 2 ** 31 - 2, 2 ** 31 - 1], rail.sum())
        state[name] = v.astype(np.int32)
    return state


@pytest.mark.parametrize("backend", INTEGER_BACKENDS)
@pytest.mark.parametrize("name", [*KINDS, "conversions", *SHIPPED])
def test_steps_from_any_int32_state_are_bit_exact(name, backend):
    """The saturating paths: states on the int32 rails, full-range int16 inputs."""
    model = (quantized_model(name, np.random.default_rng(7)) if name in KINDS else
             _conversions_model() if name == "conversions" else edgesnn.load_model(SHIPPED[name]))
    ref, other = get_backend("numpy-int")(model), get_backend(backend)(model)
    rng = np.random.default_rng(5)
    s_ref = _extreme_state(ref, 16, rng)
    s_other = dict(s_ref)
    for t in range(4):
        x = rng.integers(-32768, 32768, (16, ref.input_size)).astype(np.int16)
        y_ref, s_ref = ref.step_int(s_ref, x)
        y_other, s_other = other.step_int(s_other, x)
        np.testing.assert_array_equal(y_other, y_ref, err_msg=f"output, step {t}")
        for key in s_ref:
            np.testing.assert_array_equal(s_other[key], s_ref[key], err_msg=f"{key}, step {t}")


# ------------------------------------------- the int32 limb arithmetic at the extremes


def _primitive(width: int, body) -> bytes:
    """A .tflite graph of one primitive of the integer form on three int32 inputs."""
    low = _Fixed(Program(numerics="fixed", ops=[], input_size=width, output_size=width))
    xs = [_V(low.fb.add_input(f"x{i}", (1, width), np.int32), 2 ** 31) for i in range(3)]
    low.fb.add_output(low.output_tensor(body(low, xs), width), "y")
    return low.fb.serialize("primitive")


@pytest.mark.parametrize("micro", [False, True], ids=["litert", "micro"])
def test_rescale_and_saturation_are_exact_at_int32_extremes(micro):
    rng = np.random.default_rng(0)
    width = 64
    m = rng.integers(2 ** 30, 2 ** 31, width)
    m[:3] = [0, 2 ** 30, 2 ** 31 - 1]
    s = rng.integers(1, 63, width)
    s[3:8] = [1, 62, 2, 30, 31]
    rescale = TfliteRunner(_primitive(width, lambda low, xs: low.mul_q(xs[0], m, s, width)), micro)
    wide_sum = TfliteRunner(_primitive(width, lambda low, xs: low.sat32(
        [(xs[0], 0, 1), (xs[1], 0, -1), (xs[2], 5, 1)])), micro)
    special = np.array([-2 ** 31, 2 ** 31 - 1, 0, -1, 1, 2 ** 30, -2 ** 30, 12345])
    for trial in range(100):
        xs = [rng.choice(special, (1, width)) if trial % 2 else
              rng.integers(-2 ** 31, 2 ** 31, (1, width)) for _ in range(3)]
        np.testing.assert_array_equal(rescale.run(xs)[0], fixed.mul_q(xs[0], m, s))
        np.testing.assert_array_equal(wide_sum.run(xs)[0],
                                      fixed.saturate32(xs[0] - xs[1] + xs[2] * 32))


# ------------------------------------------------------------ runs, files, reports


def test_batched_run_continues_from_state_and_float_step_api_agrees():
    check_run_continues(edgesnn.load_model(L2MU_DEMO_MODEL), "tflite-micro")


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "integer"])
def test_export_report_and_the_file_runs_on_tflite_micro(tmp_path, quantized):
    model = edgesnn.load_model(SHIPPED_PD)
    path = tmp_path / "pd.tflite"
    info = export_tflite(model, path, quantized=quantized)
    prog = compile_graph(model.graph, model.quantization if quantized else None)
    layout = prog.state_layout()
    assert info["bytes"] == path.stat().st_size and info["path"] == str(path)
    assert set(info["ops"]) <= (INTEGER_OPS if quantized else FLOAT_OPS)
    assert [t["name"] for t in info["inputs"]] == ["x"] + [n for n, _, _ in layout]
    assert [t["name"] for t in info["outputs"]] == ["y"] + [f"{n}:next" for n, _, _ in layout]
    assert info["inputs"][0]["type"] == ("int16" if quantized else "float32")
    assert [(t["name"], t["shape"], t["type"]) for t in info["state"]] == \
        [(n, [1, w], np.dtype(d).name) for n, w, d in layout]
    assert describe_tflite(path) == {k: v for k, v in info.items() if k != "form"}
    # the written file, run by TFLite Micro through its explicit state, equals numpy
    runner = TfliteRunner.from_file(path, micro=True)
    state = prog.init_state()
    xq = prog.quantize_input(float_inputs(1, steps=20)[0])
    for t in range(20):
        y_ref, new = prog.core_step(state, xq[t:t + 1])
        y, *outs = runner.run([xq[t:t + 1]] + [state[n] for n, _, _ in layout])
        if quantized:
            np.testing.assert_array_equal(y, y_ref)
        else:
            assert_close("output", y_ref, y, t)
        state = dict(zip([n for n, _, _ in layout], outs))
        for name in new:
            if quantized:
                np.testing.assert_array_equal(state[name], new[name])
            else:
                assert_close(name, new[name], state[name], t)
            state[name] = new[name]


# ------------------------------------------------------------------- bad input


def test_corrupt_and_foreign_files_are_clear_errors(tmp_path):
    data = to_tflite(edgesnn.load_model(SHIPPED_PD), quantized=True)
    bad = {"truncated": data[:len(data) // 2], "empty": b"", "esnn": REFERENCE_MODEL.read_bytes(),
           "random": np.random.default_rng(0).bytes(4096), "header only": data[:64]}
    flipped = bytearray(data)
    flipped[8:40] = bytes(32)  # the root table's offsets
    bad["corrupt offsets"] = bytes(flipped)
    for name, blob in bad.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(blob)
        with pytest.raises(ModelFileError, match="TFLite model"):
            describe_tflite(path)
        with pytest.raises(ModelFileError, match="TFLite model"):
            TfliteRunner.from_file(path, micro=True)  # verified before TFLite Micro sees it
    with pytest.raises(ModelFileError, match="no such file"):
        describe_tflite(tmp_path / "missing.tflite")


def test_float_model_is_refused_by_the_integer_form():
    model = ordinary_model("LIF", np.random.default_rng(0))
    for backend in INTEGER_BACKENDS:
        with pytest.raises(BackendError, match="quantize"):
            get_backend(backend)(model)
    with pytest.raises(BackendError, match="quantize"):
        to_tflite(model, quantized=True)


@pytest.mark.parametrize("quantized", [False, True])
def test_unsupported_op_is_refused(quantized):
    model = quantized_model("LI", np.random.default_rng(0))
    program = compile_graph(model.graph, model.quantization if quantized else None)
    program.ops[1].kind = "spiking_conv"  # an op kind the export does not know
    with pytest.raises(BackendError, match="no TFLite form for op kind 'spiking_conv'"):
        program_to_tflite(program)


def test_inputs_outside_int16_are_refused():
    micro = get_backend("tflite-micro")(edgesnn.load_model(SHIPPED_PD))
    with pytest.raises(InputError, match="int16"):
        micro.step_int(micro.init_state(), np.full((1, micro.input_size), 40000, np.int32))


def test_missing_runtime_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    with pytest.raises(MissingExtraError, match=r"edgesnn\[tflite\]"):
        get_backend("tflite")(edgesnn.load_model(SHIPPED_PD))


def test_export_command_and_info(tmp_path, capsys):
    from edgesnn.cli import main

    path = tmp_path / "pd.tflite"
    assert main(["export", str(SHIPPED_PD), "--target", "tflite", "--quantized", "--out", str(path)]) == 0
    assert "hidden.v:next" in capsys.readouterr().out
    assert main(["info", str(path)]) == 0
    assert "FULLY_CONNECTED" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:100])
    assert main(["info", str(path)]) == 1
    assert str(path) in capsys.readouterr().err

"""ONNX export (one step, state as explicit inputs/outputs) run by onnxruntime: the
float form against numpy-float, the integer form bit-exact against numpy-int, for the
shipped models and every node type; the CLI; refusals and corrupt files."""

import numpy as np
import pytest
from backend_checks import (
    SHIPPED,
    compare_float,
    compare_int,
    float_inputs,
    input_size,
    int_inputs,
)
from node_graphs import KINDS, ordinary_model, quantized_model

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.cli import main
from edgesnn.controllers.snn_controller import SHIPPED_PD
from edgesnn.errors import BackendError, InputError, ModelFileError
from edgesnn.export import onnx as export_onnx_module
from edgesnn.export.onnx import export_onnx, to_onnx
from edgesnn.models.reference import L2MU_DEMO_MODEL

onnx = pytest.importorskip("onnx", reason="extra 'onnx'")
pytest.importorskip("onnxruntime", reason="extra 'onnx'")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_float_form_matches_numpy_float(name):
    model = edgesnn.load_model(SHIPPED[name])
    ys = compare_float(model, "onnx", float_inputs(input_size(model)))
    assert len(np.unique(ys)) > 1


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_integer_form_is_bit_exact_with_numpy_int(name):
    model = edgesnn.load_model(SHIPPED[name])
    ys, _ = compare_int(model, "onnx-int", int_inputs(input_size(model)))
    assert len(np.unique(ys)) > 1


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_type_in_both_forms(kind):
    rng = np.random.default_rng(3)
    model = quantized_model(kind, rng)
    compare_float(model, "onnx", float_inputs(input_size(model), seed=4))
    compare_int(model, "onnx-int", int_inputs(input_size(model), seed=4))


def test_state_is_explicit_graph_io_and_the_file_checks(tmp_path):
    model = edgesnn.load_model(L2MU_DEMO_MODEL)
    report = export_onnx(model, tmp_path / "l2mu.onnx", quantized=True)
    proto = onnx.load(tmp_path / "l2mu.onnx")
    onnx.checker.check_model(proto, full_check=True)
    layout = get_backend("numpy-int")(model).state_layout()
    assert [i.name for i in proto.graph.input] == ["x"] + [n for n, _, _ in layout]
    assert [o.name for o in proto.graph.output] == ["y"] + [f"{n}:next" for n, _, _ in layout]
    assert report["bytes"] == (tmp_path / "l2mu.onnx").stat().st_size
    # weights are stored as int8 in the integer form
    assert any(init.data_type == onnx.TensorProto.INT8 for init in proto.graph.initializer)


@pytest.mark.parametrize("quantized", [False, True], ids=["float", "integer"])
def test_sequence_form_runs_a_whole_sequence_like_the_step(quantized):
    import onnxruntime

    model = edgesnn.load_model(L2MU_DEMO_MODEL)
    ref = get_backend("numpy-int" if quantized else "numpy-float")(model)
    xs = float_inputs(ref.input_size, steps=30)
    session = onnxruntime.InferenceSession(to_onnx(model, quantized, sequence=True).SerializeToString())
    feeds = {"xs": np.ascontiguousarray(ref.quantize_input(xs).transpose(1, 0, 2))}
    ys, *final = session.run(None, feeds | ref.init_state(len(xs)))
    want, state = ref.run(ref.init_state(len(xs)), xs)
    got = ref.dequantize_output(ys.transpose(1, 0, 2))
    if quantized:
        np.testing.assert_array_equal(got, want)
        for a, name in zip(final, state):
            np.testing.assert_array_equal(a, state[name])
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_export_command_writes_both_forms(tmp_path, capsys):
    assert main(["export", str(SHIPPED_PD), "--target", "onnx", "--out", str(tmp_path / "f.onnx")]) == 0
    assert main(["export", str(SHIPPED_PD), "--target", "onnx", "--quantized",
                 "--out", str(tmp_path / "q.onnx")]) == 0
    out = capsys.readouterr().out
    assert "float32" in out and "integer" in out and "hidden.v" in out
    assert main(["info", str(tmp_path / "q.onnx")]) == 0
    assert "hidden.v" in capsys.readouterr().out


def test_float_model_has_no_integer_form():
    model = ordinary_model("LIF", np.random.default_rng(0))
    with pytest.raises(BackendError, match="quantize"):
        to_onnx(model, quantized=True)
    with pytest.raises(BackendError, match="quantize"):
        get_backend("onnx-int")(model)


def test_an_op_without_an_onnx_form_is_refused(monkeypatch):
    monkeypatch.delattr(export_onnx_module._Float, "k_li")
    with pytest.raises(BackendError, match="no ONNX form for op kind 'li'"):
        to_onnx(ordinary_model("LI", np.random.default_rng(0)))


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all", None], ids=["empty", "foreign", "truncated"])
def test_corrupt_onnx_files_give_a_clear_error(tmp_path, content, capsys):
    path = tmp_path / "bad.onnx"
    if content is None:
        export_onnx(edgesnn.load_model(SHIPPED_PD), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    assert main(["info", str(path)]) == 1
    assert "not a valid ONNX model" in capsys.readouterr().err
    with pytest.raises(ModelFileError):
        export_onnx_module.describe_onnx(path)


def test_integer_form_refuses_inputs_beyond_int16():
    prog = get_backend("onnx-int")(edgesnn.load_model(SHIPPED_PD))
    with pytest.raises(InputError, match="onnx-int backend takes int16"):
        prog.step_int(prog.init_state(), np.full((1, prog.input_size), 40000, np.int32))

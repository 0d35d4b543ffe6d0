"""ONNX export (one step, state as explicit inputs/outputs) run by onnxruntime: the
float form against numpy-float, the integer form bit-exact against numpy-int, for the
shipped models and every node type; the CLI; refusals and corrupt files."""

import numpy as np
import pytest
from node_graphs import KINDS, ordinary_model, quantized_model

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.cli import main
from edgesnn.controllers.snn_controller import SHIPPED_I, SHIPPED_PD
from edgesnn.errors import BackendError, ModelFileError
from edgesnn.export import onnx as export_onnx_module
from edgesnn.export.onnx import export_onnx, to_onnx
from edgesnn.models.reference import L2MU_DEMO_MODEL, REFERENCE_MODEL, VPR_DEMO_MODEL

onnx = pytest.importorskip("onnx", reason="extra 'onnx'")
pytest.importorskip("onnxruntime", reason="extra 'onnx'")

SHIPPED = {"reference-lif": REFERENCE_MODEL, "l2mu": L2MU_DEMO_MODEL, "controller-pd": SHIPPED_PD,
           "controller-i": SHIPPED_I, "vpr-ensemble": VPR_DEMO_MODEL}


def compare(model, reference: str, backend: str, x: np.ndarray, exact: bool) -> np.ndarray:
    """Step both backends through float inputs (batch, T, n): outputs and every state
    buffer equal (exact) or within 1e-5 relative to the buffer's scale."""
    ref, other = get_backend(reference)(model), get_backend(backend)(model)
    s_ref, s_other = ref.init_state(x.shape[0]), other.init_state(x.shape[0])
    ys = []
    for t in range(x.shape[1]):
        y_ref, s_ref = ref.step(s_ref, x[:, t])
        y_other, s_other = other.step(s_other, x[:, t])
        for name, a, b in [("output", y_ref, y_other)] + [(k, s_ref[k], s_other[k]) for k in s_ref]:
            assert a.dtype == b.dtype and a.shape == b.shape, name
            if exact:
                np.testing.assert_array_equal(b, a, err_msg=f"{name}, step {t}")
            else:
                np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(a).max()),
                                           err_msg=f"{name}, step {t}")
        ys.append(y_ref)
    return np.stack(ys, 1)


def inputs(n: int, seed: int = 1) -> np.ndarray:
    """Working-range inputs, and one sequence large enough to saturate the int16 input."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (2, 50, n)),
                           rng.normal(0, 1e4, (1, 50, n))]).astype(np.float32)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_float_form_matches_numpy_float(name):
    model = edgesnn.load_model(SHIPPED[name])
    ys = compare(model, "numpy-float", "onnx", inputs(get_backend("numpy-float")(model).input_size),
                 exact=False)
    assert len(np.unique(ys)) > 1


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_integer_form_is_bit_exact_with_numpy_int(name):
    model = edgesnn.load_model(SHIPPED[name])
    ys = compare(model, "numpy-int", "onnx-int", inputs(get_backend("numpy-int")(model).input_size),
                 exact=True)
    assert len(np.unique(ys)) > 1


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_type_in_both_forms(kind):
    rng = np.random.default_rng(3)
    model = quantized_model(kind, rng)
    x = inputs(get_backend("numpy-int")(model).input_size, seed=4)
    compare(model, "numpy-float", "onnx", x, exact=False)
    compare(model, "numpy-int", "onnx-int", x, exact=True)


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
    xs = inputs(ref.input_size)[:, :30]
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

"""The generated C (edgesnn export --target c, backend "c") against the numpy-int
reference: outputs and every state buffer equal at every step, for the shipped models of
all three families and for a graph of every node type; warning-free builds; errors."""

import shutil
import subprocess

import numpy as np
import pytest
from backend_checks import (
    SHIPPED,
    check_run_continues,
    compare_int,
    input_size,
    int_inputs,
    rail_inputs,
)
from node_graphs import KINDS, quantized_model
from test_modelfile import GRAPHS

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.cli import main
from edgesnn.controllers.snn_controller import SHIPPED_PD
from edgesnn.errors import BackendError, InputError
from edgesnn.export.c import export_c, generate
from edgesnn.modelfile import Model
from edgesnn.models.reference import L2MU_DEMO_MODEL

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler on this machine")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDGESNN_CACHE", str(tmp_path_factory.getbasetemp() / "c-cache"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_are_bit_exact_with_numpy_int(name):
    model = edgesnn.load_model(SHIPPED[name])
    ys, state = compare_int(model, "c", int_inputs(input_size(model), steps=60))
    assert len(np.unique(ys)) > 1  # the outputs move: the comparison is not of constants
    assert all(np.any(v != 0) for v in state.values())


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_type_is_bit_exact_with_numpy_int(kind):
    rng = np.random.default_rng(7)
    model = quantized_model(kind, rng)
    ys, _ = compare_int(model, "c", rail_inputs(model, rng, 3, 80))
    assert len(np.unique(ys)) > 1


def test_run_over_a_sequence_equals_numpy_int_and_continues_from_state():
    check_run_continues(edgesnn.load_model(L2MU_DEMO_MODEL), "c", steps=90)


def test_generated_sizes_match_the_program_memory():
    model = edgesnn.load_model(L2MU_DEMO_MODEL)
    code, mem = generate(model), get_backend("numpy-int")(model).memory()
    assert code.flash == mem.flash and code.state == mem.state


def _compilers():
    return [cc for cc in ("gcc", "clang") if shutil.which(cc)]


@pytest.mark.parametrize("kind", KINDS)
def test_generated_c_compiles_without_warnings(kind, tmp_path):
    rng = np.random.default_rng(0)
    export_c(quantized_model(kind, rng), tmp_path)
    for cc in _compilers():
        done = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                               "-c", "model.c", "-o", f"model-{cc}.o"], cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{cc}: {done.stderr}"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_generated_c_compiles_for_cortex_m4(tmp_path):
    export_c(edgesnn.load_model(L2MU_DEMO_MODEL), tmp_path)
    done = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Wall",
                           "-Wextra", "-Werror", "-pedantic", "-O2", "-c", "model.c"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_export_command_writes_a_buildable_directory(tmp_path, capsys):
    assert main(["export", str(SHIPPED_PD), "--target", "c", "--out", str(tmp_path / "pd")]) == 0
    out = capsys.readouterr().out
    assert "flash" in out and "model id 0x" in out
    header = (tmp_path / "pd" / "model.h").read_text()
    assert "void model_step(model_state_t *s, const int16_t *in, int32_t *out);" in header
    assert (tmp_path / "pd" / "esnn_lif.h").exists()


def test_float_model_is_refused_with_the_fix():
    model = Model(GRAPHS["LIF"](np.random.default_rng(0)))
    with pytest.raises(BackendError, match="quantize"):
        get_backend("c")(model)


def test_missing_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(BackendError, match="C compiler"):
        get_backend("c")(edgesnn.load_model(SHIPPED_PD))


def test_inputs_outside_int16_are_refused():
    c = get_backend("c")(edgesnn.load_model(SHIPPED_PD))
    with pytest.raises(InputError, match="int16"):
        c.step_int(c.init_state(), np.full((1, c.input_size), 40000, np.int32))

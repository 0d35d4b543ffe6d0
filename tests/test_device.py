"""The firmware in the loop: the same model on numpy-int, the host build of the device
and the Cortex-M4 image on QEMU (mps2-an386), over the serial protocol — bit-exact;
flash/RAM bytes against arm-none-eabi-size; ``edgesnn hil``."""

import importlib.util
import subprocess

import numpy as np
import pytest

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.cli import main
from edgesnn.controllers.snn_controller import SHIPPED_PD
from edgesnn.errors import BackendError
from edgesnn.export.c import export_c, generate
from edgesnn.models.reference import L2MU_DEMO_MODEL, REFERENCE_MODEL, VPR_DEMO_MODEL
from edgesnn.serial.hil import DeviceModel
from edgesnn.serial.host import Device
from edgesnn.serial.targets import build, image_size, missing_tools, serve

FAMILIES = {"l2mu": L2MU_DEMO_MODEL, "controller": SHIPPED_PD, "vpr-ensemble": VPR_DEMO_MODEL}


def needs(target: str, serial: bool = True):
    """Skip without the target's tools, or (when the test talks to a device) pyserial."""
    missing = missing_tools(target)
    if missing:
        return pytest.mark.skipif(True, reason=f"needs: apt-get install {' '.join(missing)}")
    return pytest.mark.skipif(serial and importlib.util.find_spec("serial") is None,
                              reason="pyserial not installed (extra 'serial')")


def assert_device_matches_numpy_int(model, port: str, steps: int = 40) -> None:
    ref = get_backend("numpy-int")(model)
    rng = np.random.default_rng(5)
    xs = rng.integers(-4000, 4000, (steps, ref.input_size)).astype(np.int16)
    state, expected = ref.init_state(), []
    for x in xs:
        y, state = ref.step_int(state, x[None])
        expected.append(y[0])
    with Device(port, timeout=10) as dev:
        dev.reset()
        got = np.concatenate([dev.run(xs[:steps // 2]), [dev.step(x) for x in xs[steps // 2:]]])
        assert dev.stats().steps == steps
    np.testing.assert_array_equal(got, np.array(expected))
    assert len(np.unique(got)) > 1


DEVICES = [pytest.param("host", marks=needs("host")),
           pytest.param("qemu", marks=[needs("qemu"), pytest.mark.slow])]


@pytest.mark.parametrize("target", DEVICES)
@pytest.mark.parametrize("family", FAMILIES)
def test_device_is_bit_exact_with_numpy_int(family, target, tmp_path):
    """host: the POSIX build on a pty; qemu: the Cortex-M4 image on mps2-an386."""
    model = edgesnn.load_model(FAMILIES[family])
    with serve(model, target, tmp_path) as (port, _):
        assert_device_matches_numpy_int(model, port)


@needs("qemu", serial=False)
def test_exported_byte_counts_match_arm_none_eabi_size(tmp_path):
    model = edgesnn.load_model(L2MU_DEMO_MODEL)
    info = export_c(model, tmp_path)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-std=c99", "-O2",
                    "-fdata-sections", "-c", "model.c"], cwd=tmp_path, check=True)
    out = subprocess.run(["arm-none-eabi-size", "-A", "model.o"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    sections = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    rodata = sum(v for k, v in sections.items() if k.startswith(".rodata"))
    bss = sum(v for k, v in sections.items() if k.startswith(".bss"))
    buffers = len(get_backend("numpy-int")(model).state_layout())
    # const data = the weights and parameters plus the table of state offsets
    assert rodata == info["flash_bytes"] + 4 * buffers
    assert bss == info["scratch_bytes"]
    image, _ = build(model, "qemu", tmp_path / "fw")
    size = image_size(image)
    assert size["flash"] > info["flash_bytes"] and size["ram"] > info["scratch_bytes"]


@needs("host")
def test_hil_runs_input_sequences_on_the_device(tmp_path, capsys):
    model = edgesnn.load_model(REFERENCE_MODEL)
    xs = np.random.default_rng(0).normal(0, 1, (2, 30, 64)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=xs)
    code = main(["hil", str(REFERENCE_MODEL), "--port", "host", "--input", str(tmp_path / "x.npz"),
                 "--output", str(tmp_path / "y.npz")])
    out = capsys.readouterr().out
    assert code == 0 and "outputs equal to numpy-int: yes" in out
    ref = get_backend("numpy-int")(model)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npz")["y"],
                                  ref.run(ref.init_state(2), xs)[0])


@needs("host")
def test_hil_flies_the_blimp_with_the_controller_on_the_device(capsys):
    assert main(["hil", str(SHIPPED_PD), "--port", "host", "--seconds", "5"]) == 0
    out = capsys.readouterr().out
    assert "commands equal to numpy-int: yes" in out and "on the device" in out


@needs("host")
def test_a_device_running_another_model_is_refused(tmp_path):
    pd, other = edgesnn.load_model(SHIPPED_PD), edgesnn.load_model(REFERENCE_MODEL)
    with serve(other, "host", tmp_path) as (port, _), Device(port, timeout=5) as dev:
        with pytest.raises(BackendError, match=f"0x{generate(pd).model_id:08x}"):
            DeviceModel(dev, pd)

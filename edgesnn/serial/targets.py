"""Build the device firmware for a model and start it, for tests, ``edgesnn hil`` and
the deployment report. Two targets, both serving the protocol on a pseudo-terminal:

- ``host``: the POSIX build (firmware/host), a local process; fast, for CI.
- ``qemu``: the Cortex-M4 image (firmware/mps2) on QEMU's ``mps2-an386`` machine, its
  UART0 redirected to a pty — the code an MCU would run, on an emulated MCU.

Builds go through firmware/Makefile (one description of the build for people and code).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

from edgesnn.errors import BackendError
from edgesnn.export.c import export_c
from edgesnn.modelfile import Model

TARGETS = ("host", "qemu")
# what build() makes: the two devices, and "bench", a host program that only steps the
# model (for instruction counts and native timing)
_PRODUCT = {"host": "edgesnn-device", "qemu": "edgesnn-mps2.elf", "bench": "edgesnn-bench"}
_MAKE_GOAL = {"host": "host", "qemu": "mps2", "bench": "bench"}
# tool → Debian package that provides it
_HOST_TOOLS = {"make": "make", "gcc": "gcc"}
_TOOLS = {"host": _HOST_TOOLS, "bench": _HOST_TOOLS,
          "qemu": {"make": "make", "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
                   "qemu-system-arm": "qemu-system-arm"}}


def firmware_dir() -> Path:
    return Path(str(files("edgesnn.firmware")))


def missing_tools(target: str) -> list[str]:
    """Debian packages still needed to build and run ``target`` (empty: all there)."""
    return sorted({pkg for tool, pkg in _TOOLS[target].items() if shutil.which(tool) is None})


def build(model: Model, target: str, workdir: str | Path) -> tuple[Path, dict]:
    """Export ``model`` to C under ``workdir`` and build ``target`` (a device of TARGETS,
    or "bench") with it; returns (the executable or image, export_c's report)."""
    if target not in _PRODUCT:
        raise BackendError(f"unknown device target {target!r}; choose from {', '.join(TARGETS)}")
    missing = missing_tools(target)
    if missing:
        raise BackendError(f"the {target} device needs: apt-get install {' '.join(missing)}")
    workdir = Path(workdir)
    info = export_c(model, workdir / "model")
    done = subprocess.run(["make", "-C", str(firmware_dir()), _MAKE_GOAL[target],
                           f"MODEL_DIR={workdir / 'model'}", f"BUILD={workdir / 'build'}"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackendError(f"building the {target} firmware failed:\n{done.stderr.strip()[-2000:]}")
    return workdir / "build" / _PRODUCT[target], info


def image_size(image: str | Path) -> dict[str, int]:
    """Sections of a Cortex-M image (arm-none-eabi-size): flash = text + data, RAM =
    data + bss."""
    done = subprocess.run(["arm-none-eabi-size", str(image)], capture_output=True, text=True,
                          check=True)
    text, data, bss = (int(v) for v in done.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}


@contextmanager
def start(binary: Path, target: str) -> Iterator[str]:
    """Run a built device; yields the path of the pty it serves on."""
    if target == "host":
        cmd, pattern = [str(binary)], r"(\S+)"
    else:
        cmd = ["qemu-system-arm", "-machine", "mps2-an386", "-display", "none", "-monitor", "none",
               "-serial", "pty", "-kernel", str(binary)]
        pattern = r"redirected to (\S+)"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(pattern, line)
        if not found:
            raise BackendError(f"the {target} device did not report its port: {line.strip()!r}")
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@contextmanager
def serve(model: Model, target: str, workdir: str | Path) -> Iterator[tuple[str, dict]]:
    """Build and start ``model`` on ``target``; yields (pty path, export_c's report)."""
    binary, info = build(model, target, workdir)
    with start(binary, target) as port:
        yield port, info

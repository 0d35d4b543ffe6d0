"""The ``c`` backend: the generated C of a quantized model, compiled on the host and
called through ctypes. Bit-exact with ``numpy-int`` (it is the code an MCU runs).

Builds are cached by a hash of the generated sources and the compiler command, under
``$EDGESNN_CACHE`` (default: the user cache directory), so a model compiles once.
The compiler is ``$CC`` or ``cc``. State stays the explicit dict of the Program API:
each call packs it into the C ``model_state_t`` (one per batch row), runs, and unpacks
it, so the step functions stay pure.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from edgesnn.backends.external import ExternalProgram
from edgesnn.compile import State
from edgesnn.errors import BackendError
from edgesnn.export.c import (
    RUNTIME_HEADERS,
    fixed_program,
    generate,
    runtime_dir,
    write_c,
)
from edgesnn.modelfile import Model

CFLAGS = ("-std=c99", "-O2", "-shared", "-fPIC")


def cache_dir() -> Path:
    root = os.environ.get("EDGESNN_CACHE") or os.environ.get("XDG_CACHE_HOME") \
        or str(Path.home() / ".cache")
    return Path(root) / "edgesnn" / "c"


def compiler() -> list[str]:
    cc = shlex.split(os.environ.get("CC", "cc"))
    if not cc or shutil.which(cc[0]) is None:
        raise BackendError(f"the c backend needs a C compiler; {' '.join(cc) or 'CC'!r} was not "
                           "found (install gcc or clang, or set CC)")
    return cc


def build(model: Model) -> Path:
    """The shared library of ``model``'s generated C (built once per content)."""
    code = generate(model)
    cc = compiler()
    runtime = "".join((runtime_dir() / h).read_text() for h in RUNTIME_HEADERS)
    key = hashlib.sha256("\0".join([code.header, code.source, runtime, *cc, *CFLAGS])
                         .encode()).hexdigest()[:24]
    lib = cache_dir() / key / "model.so"
    if lib.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent.parent) as tmp:
        write_c(code, tmp)
        out = Path(tmp) / "model.so"
        done = subprocess.run([*cc, *CFLAGS, "model.c", "-o", str(out)], cwd=tmp,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BackendError(f"compiling the generated C failed ({' '.join(cc)}):\n"
                               f"{done.stderr.strip()[:2000]}")
        os.replace(out, lib)  # atomic: a concurrent build of the same key is harmless
    return lib


class CProgram(ExternalProgram):
    """A fixed-point Program whose steps run in the compiled C."""

    backend = "c"

    def attach(self, lib_path: Path) -> CProgram:
        lib = ctypes.CDLL(str(lib_path))
        layout = self.state_layout()
        offsets = (ctypes.c_uint32 * max(1, len(layout))).in_dll(lib, "model_state_offsets")
        end = max([o + w * np.dtype(d).itemsize for (_, w, d), o in zip(layout, offsets)] + [4])
        self._dtype = np.dtype({"names": [n for n, _, _ in layout],
                                "formats": [(d, (w,)) for _, w, d in layout],
                                "offsets": [offsets[k] for k in range(len(layout))],
                                "itemsize": -(-end // 8) * 8})
        self._run = lib.model_run
        self._run.restype = None
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
        self._lib = lib  # keeps the library loaded
        self._lock = threading.Lock()  # the generated code's scratch buffers are static
        self._last: tuple[np.ndarray, State] | None = None
        return self

    def _pack(self, state: State) -> np.ndarray:
        """The state as an array of model_state_t. A state this backend returned last
        is still its packed buffer (its arrays are views of it): copied in one piece."""
        last = self._last
        if last is not None and len(state) == len(last[1]) and \
                all(state.get(k) is v for k, v in last[1].items()):
            return last[0].copy()
        packed = np.zeros(len(next(iter(state.values()))) if state else 1, self._dtype)
        for name in self._dtype.names or ():
            packed[name] = state[name]
        return packed

    def _c_run(self, state: State, xq: np.ndarray) -> tuple[np.ndarray, State]:
        """xq int16 (batch, T, inputs) → int32 (batch, T, outputs), the new state."""
        batch, steps = xq.shape[:2]
        packed = self._pack(state) if state else np.zeros(batch, self._dtype)
        xq = np.ascontiguousarray(xq, np.int16)
        out = np.empty((batch, steps, self.output_size), np.int32)
        with self._lock:
            for b in range(batch):
                self._run(packed[b:b + 1].ctypes.data, xq[b].ctypes.data, out[b].ctypes.data, steps)
            new = {name: packed[name] for name in self._dtype.names or ()}
            self._last = (packed, new)
        return out, new

    def external_step(self, state: State, x: np.ndarray):
        y, state = self._c_run(state, np.asarray(x)[:, None])
        return y[:, 0], state

    def run(self, state: State, xs) -> tuple[np.ndarray, State]:
        xs = self.check_input(xs, time_axis=True)
        xb = xs[None] if xs.ndim == 2 else xs
        self._check_state(state, xb.shape[0])
        y, state = self._c_run(state, self.quantize_input(xb))
        out = self.dequantize_output(y)
        return (out[0] if xs.ndim == 2 else out), state


def prepare(model: Model) -> CProgram:
    return CProgram.from_program(fixed_program(model)).attach(build(model))

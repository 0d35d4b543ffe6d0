"""An edgesnn model as a TFLite flatbuffer: one step, the state as explicit tensors.

    inputs:  x (1, features), then every buffer of Program.state_layout() (1, width)
    outputs: y (1, outputs),  then "<buffer>:next" for every buffer, same order

Batch 1: the caller loops over batch rows and feeds each step's ``:next`` tensors back
as the next step's state (``edgesnn.backends.tflite_rt`` does). The file is written
with ``flatbuffers`` and the schema bindings of the ``tflite`` package, builtin ops
only, so LiteRT and TFLite Micro both load it.

Two forms (docs/tflite.md says why):

- **float32**: the float kernels of ``edgesnn/compile/kernels.py`` op for op
  (FULLY_CONNECTED, MUL, ADD, SUB, GREATER, SELECT_V2, CAST, RESHAPE).
- **exact integer** (quantized models): the fixed-point path, bit-exact with numpy-int,
  from int32 ops alone, because TFLite Micro has no int64 arithmetic (ADD, MUL, CAST,
  FLOOR_DIV on int64 all fail) nor SELECT on int32. Wide values — int64 sums,
  accumulators, the 62-bit products of a rescale — are carried as 14-bit limbs in int32
  tensors (ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, comparisons), with floor division by
  powers of two and saturation written out exactly. Matrix products run as float32
  FULLY_CONNECTED on integer digits of the input small enough that every partial sum
  stays below 2**24, where float arithmetic is exact in any order.
"""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.compile import FIXED, Program, compile_graph, fixed
from edgesnn.compile.program import Op
from edgesnn.errors import BackendError, ModelFileError, require
from edgesnn.modelfile import Model

FLOAT_FORM, EXACT_FORM = "float32", "exact integer (int32 ops)"
_TYPE_NAMES = {np.dtype(np.float32): "FLOAT32", np.dtype(np.int32): "INT32",
               np.dtype(np.int16): "INT16", np.dtype(np.int8): "INT8", np.dtype(np.bool_): "BOOL"}
# builtin op → its options table (written empty unless _options fills fields)
_OPTIONS = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "DIV": "DivOptions",
            "FULLY_CONNECTED": "FullyConnectedOptions", "RESHAPE": "ReshapeOptions",
            "CAST": "CastOptions", "GREATER": "GreaterOptions",
            "GREATER_EQUAL": "GreaterEqualOptions", "MAXIMUM": "MaximumMinimumOptions",
            "MINIMUM": "MaximumMinimumOptions", "SELECT_V2": "SelectV2Options"}


def state_output(name: str) -> str:
    return f"{name}:next"


def _schema(table: str):
    """A module of the ``tflite`` schema bindings (the package re-exports each table's
    class under the module's own name, so import the module explicitly)."""
    require("tflite", "tflite")
    return importlib.import_module(f"tflite.{table}")


# ----------------------------------------------------------------- flatbuffer writer


class _Flatbuffer:
    """Tensors, constant buffers and operators of one subgraph, serialized on demand."""

    def __init__(self):
        self.fb = require("flatbuffers", "tflite")
        self.ops_enum = _schema("BuiltinOperator").BuiltinOperator
        self.types = _schema("TensorType").TensorType
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty buffer of every non-constant
        self.tensors: list[dict] = []
        self.operators: list[tuple[int, list[int], list[int], dict]] = []
        self.opcodes: list[str] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.consts: dict[tuple, int] = {}
        self.scope = "model"

    def tensor(self, shape, dtype, name: str | None = None, buffer: int = 0) -> int:
        self.tensors.append({"shape": tuple(int(d) for d in shape), "dtype": np.dtype(dtype),
                             "name": name or f"{self.scope}/t{len(self.tensors)}",
                             "buffer": buffer})
        return len(self.tensors) - 1

    def const(self, value, dtype) -> int:
        """A constant tensor (deduplicated: the limb arithmetic reuses a few scalars)."""
        arr = np.asarray(value)
        if np.dtype(dtype).kind == "i":
            info = np.iinfo(dtype)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise BackendError(f"constant out of {np.dtype(dtype).name} range in {self.scope}")
        arr = np.ascontiguousarray(arr.astype(dtype))
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self.consts:
            self.buffers.append(arr.tobytes())
            self.consts[key] = self.tensor(arr.shape, arr.dtype,
                                           f"{self.scope}/c{len(self.tensors)}",
                                           len(self.buffers) - 1)
        return self.consts[key]

    def op(self, code: str, inputs: list[int], shape, dtype, **options) -> int:
        """Append a builtin op with one output; returns the output tensor."""
        out = self.tensor(shape, dtype)
        if code not in self.opcodes:
            self.opcodes.append(code)
        self.operators.append((self.opcodes.index(code), inputs, [out], options))
        return out

    def shape(self, t: int) -> tuple[int, ...]:
        return self.tensors[t]["shape"]

    def dtype(self, t: int) -> np.dtype:
        return self.tensors[t]["dtype"]

    def add_input(self, name: str, shape, dtype) -> int:
        t = self.tensor(shape, dtype, name)
        self.inputs.append(t)
        return t

    def add_output(self, t: int, name: str) -> None:
        """Name ``t`` as a graph output; a copy when it is an input, a constant or an
        output already (a tensor has one name, and runtimes expect distinct outputs)."""
        if t in self.inputs or t in self.outputs or self.tensors[t]["buffer"]:
            t = self.op("RESHAPE", [t, self.const(self.shape(t), np.int32)], self.shape(t),
                        self.dtype(t), new_shape=self.shape(t))
        self.tensors[t]["name"] = name
        self.outputs.append(t)

    # -- serialization (schema: tensorflow/lite/schema/schema.fbs) ------------------------
    def serialize(self, description: str) -> bytes:
        b = self.fb.Builder(1024)
        buffers = [self._buffer(b, data) for data in self.buffers]
        tensors = [self._tensor(b, t) for t in self.tensors]
        operators = [self._operator(b, *op) for op in self.operators]
        S = _schema("SubGraph")
        vectors = (self._offsets(b, S.SubGraphStartTensorsVector, tensors),
                   self._ints(b, S.SubGraphStartInputsVector, self.inputs),
                   self._ints(b, S.SubGraphStartOutputsVector, self.outputs),
                   self._offsets(b, S.SubGraphStartOperatorsVector, operators),
                   b.CreateString("step"))
        S.SubGraphStart(b)
        for add, v in zip((S.SubGraphAddTensors, S.SubGraphAddInputs, S.SubGraphAddOutputs,
                           S.SubGraphAddOperators, S.SubGraphAddName), vectors):
            add(b, v)
        subgraph = S.SubGraphEnd(b)
        C = _schema("OperatorCode")
        codes = []
        for name in self.opcodes:
            code = getattr(self.ops_enum, name)
            C.OperatorCodeStart(b)
            # codes above 127 live only in builtin_code; the deprecated byte says so
            C.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            C.OperatorCodeAddBuiltinCode(b, code)
            C.OperatorCodeAddVersion(b, 1)
            codes.append(C.OperatorCodeEnd(b))
        M = _schema("Model")
        vectors = (self._offsets(b, M.ModelStartOperatorCodesVector, codes),
                   self._offsets(b, M.ModelStartSubgraphsVector, [subgraph]),
                   self._offsets(b, M.ModelStartBuffersVector, buffers),
                   b.CreateString(description))
        M.ModelStart(b)
        M.ModelAddVersion(b, 3)
        for add, v in zip((M.ModelAddOperatorCodes, M.ModelAddSubgraphs, M.ModelAddBuffers,
                           M.ModelAddDescription), vectors):
            add(b, v)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _ints(b, start, items) -> int:
        start(b, len(items))
        for i in reversed(items):
            b.PrependInt32(int(i))
        return b.EndVector()

    @staticmethod
    def _offsets(b, start, items) -> int:
        start(b, len(items))
        for i in reversed(items):
            b.PrependUOffsetTRelative(i)
        return b.EndVector()

    @staticmethod
    def _buffer(b, data: bytes) -> int:
        B = _schema("Buffer")
        vec = None
        if data:
            # 16-byte aligned, as the TFLite converter writes it: kernels read int32/float
            # constants in place
            b.StartVector(1, len(data), 16)
            b.head -= len(data)
            b.Bytes[b.head:b.head + len(data)] = data
            vec = b.EndVector()
        B.BufferStart(b)
        if vec is not None:
            B.BufferAddData(b, vec)
        return B.BufferEnd(b)

    def _tensor(self, b, t: dict) -> int:
        T = _schema("Tensor")
        name = b.CreateString(t["name"])
        shape = self._ints(b, T.TensorStartShapeVector, list(t["shape"]))
        T.TensorStart(b)
        T.TensorAddShape(b, shape)
        T.TensorAddType(b, getattr(self.types, _TYPE_NAMES[t["dtype"]]))
        T.TensorAddBuffer(b, t["buffer"])
        T.TensorAddName(b, name)
        return T.TensorEnd(b)

    def _operator(self, b, opcode: int, inputs, outputs, options: dict) -> int:
        O = _schema("Operator")
        ins = self._ints(b, O.OperatorStartInputsVector, inputs)
        outs = self._ints(b, O.OperatorStartOutputsVector, outputs)
        table = _OPTIONS.get(self.opcodes[opcode])
        opts = self._options(b, table, options) if table else None
        O.OperatorStart(b)
        O.OperatorAddOpcodeIndex(b, opcode)
        O.OperatorAddInputs(b, ins)
        O.OperatorAddOutputs(b, outs)
        if opts is not None:
            O.OperatorAddBuiltinOptionsType(b, getattr(_schema("BuiltinOptions").BuiltinOptions,
                                                       table))
            O.OperatorAddBuiltinOptions(b, opts)
        return O.OperatorEnd(b)

    def _options(self, b, table: str, options: dict) -> int:
        mod = _schema(table)
        new_shape = None
        if "new_shape" in options:
            new_shape = self._ints(b, mod.ReshapeOptionsStartNewShapeVector,
                                   list(options["new_shape"]))
        getattr(mod, f"{table}Start")(b)
        if new_shape is not None:
            mod.ReshapeOptionsAddNewShape(b, new_shape)
        if "cast" in options:
            src, dst = options["cast"]
            mod.CastOptionsAddInDataType(b, getattr(self.types, _TYPE_NAMES[src]))
            mod.CastOptionsAddOutDataType(b, getattr(self.types, _TYPE_NAMES[dst]))
        return getattr(mod, f"{table}End")(b)


# ------------------------------------------------------------------ shared lowering


class _Lowering:
    """Walks the Program's ops in order; a subclass emits each kind's kernel."""

    input_dtype: type

    def __init__(self, program: Program):
        self.p = program
        self.fb = _Flatbuffer()
        self.sizes = {op.name: op.size for op in program.ops}
        self.state: dict[str, int] = {}      # state buffer → its input tensor
        self.new_state: dict[str, Any] = {}  # state buffer → its value after the step

    def build(self) -> _Flatbuffer:
        fb, p = self.fb, self.p
        x = fb.add_input("x", (1, p.input_size), self.input_dtype)
        for name, width, dtype in p.state_layout():
            self.state[name] = fb.add_input(name, (1, width), dtype)
        kernels = self.kernels()
        values = {}
        for op in p.ops:
            fb.scope = op.name
            if op.kind == "input":
                values[op.name] = self.from_input(x)
                continue
            if op.kind not in kernels:
                raise BackendError(f"no TFLite form for op kind {op.kind!r} ({op.name}); "
                                   f"supported: {', '.join(sorted(kernels))}")
            values[op.name] = kernels[op.kind](op, self.gather(op, values))
        fb.scope = "output"
        fb.add_output(self.output_tensor(values[p.ops[-1].name], p.output_size), "y")
        for name in p.recurrent_sources:
            self.new_state[f"{name}.prev"] = self.prev_value(values[name])
        for name, width, _ in p.state_layout():
            fb.add_output(self.output_tensor(self.new_state[name], width), state_output(name))
        return fb

    def kernels(self) -> dict:
        return {"affine": self.affine, "grouped": self.grouped, "lif": self.lif,
                "cuba_lif": self.cuba_lif, "adaptive_lif": self.adaptive_lif, "li": self.li,
                "threshold": self.threshold, "encoder": self.encoder, "output": self.output}

    def source_value(self, src, values):
        return self.from_state(src.name + ".prev") if src.recurrent else values[src.name]

    def reshape(self, t: int, shape) -> int:
        return self.fb.op("RESHAPE", [t, self.fb.const(shape, np.int32)], shape,
                          self.fb.dtype(t), new_shape=shape)


# ------------------------------------------------------------------------ float32


class _Float(_Lowering):
    """FLOAT_KERNELS with builtin float ops; values are float32 tensors (1, n)."""

    input_dtype = np.float32

    def from_input(self, x):
        return x

    def from_state(self, name):
        return self.state[name]

    def output_tensor(self, value, width):
        return value

    def prev_value(self, value):
        return value

    def gather(self, op: Op, values):
        total = None
        for src in op.sources:  # summed in edge order, as Program._gather does
            v = self.source_value(src, values)
            total = v if total is None else self.binary("ADD", total, v)
        return total

    def binary(self, code, a, b, dtype=np.float32):
        shape = np.broadcast_shapes(self.fb.shape(a), self.fb.shape(b))
        return self.fb.op(code, [a, b], shape, dtype)

    def c(self, value):
        return self.fb.const(value, np.float32)

    def fc(self, x, weight, bias=None):
        fb = self.fb
        inputs = [x, self.c(weight), -1 if bias is None else self.c(bias)]
        return fb.op("FULLY_CONNECTED", inputs, fb.shape(x)[:-1] + (weight.shape[0],), np.float32)

    def spikes(self, v, threshold):
        above = self.binary("GREATER", v, threshold, np.bool_)
        return self.fb.op("CAST", [above], self.fb.shape(v), np.float32,
                          cast=(np.dtype(np.bool_), np.dtype(np.float32)))

    def lif_update(self, op: Op, beta, threshold, v, current, last=None):
        """kernels.lif_float: fired from the stored membrane, β·v + I, the reset."""
        last = threshold if last is None else last
        fired = self.binary("GREATER", v, last, np.bool_)
        v = self.binary("ADD", self.binary("MUL", v, self.c(beta)), current)
        kept = self.binary("SUB", v, last) if op.attrs["reset"] == "subtract" else \
            self.c(np.zeros(op.size))
        v = self.fb.op("SELECT_V2", [fired, kept, v], self.fb.shape(v), np.float32)
        return self.spikes(v, threshold), v

    # -- kernels ----------------------------------------------------------------------
    def affine(self, op, x):
        return self.fc(x, op.params["weight"], op.params.get("bias"))

    def grouped(self, op, x):
        w = op.params["weight"]
        groups = op.size // w.shape[0]
        y = self.fc(self.reshape(x, (groups, w.shape[1])), w)
        return self.reshape(y, (1, op.size))

    def lif(self, op, x):
        p = op.params
        s, self.new_state[op.name + ".v"] = self.lif_update(
            op, p["beta"], self.c(p["threshold"]), self.state[op.name + ".v"], x)
        return s

    def cuba_lif(self, op, x):
        p, n = op.params, op.name
        i = self.binary("ADD", self.binary("MUL", self.c(p["alpha"]), self.state[n + ".i"]), x)
        s, self.new_state[n + ".v"] = self.lif_update(op, p["beta"], self.c(p["threshold"]),
                                                      self.state[n + ".v"], i)
        self.new_state[n + ".i"] = i
        return s

    def adaptive_lif(self, op, x):
        p, n = op.params, op.name
        i = self.binary("ADD", self.binary("MUL", self.c(p["alpha"]), self.state[n + ".i"]), x)
        thr = self.binary("ADD", self.c(p["threshold"]),
                          self.fc(self.state[n + ".trace"], p["threshold_weight"]))
        s, v = self.lif_update(op, p["beta"], thr, self.state[n + ".v"], i, self.state[n + ".thr"])
        trace = self.binary("ADD", self.binary("MUL", self.c(p["trace_decay"]),
                                               self.state[n + ".trace"]), s)
        self.new_state.update({n + ".v": v, n + ".i": i, n + ".trace": trace, n + ".thr": thr})
        return s

    def li(self, op, x):
        v = self.binary("ADD", self.binary("MUL", self.c(op.params["beta"]),
                                           self.state[op.name + ".v"]), x)
        self.new_state[op.name + ".v"] = v
        return v

    def threshold(self, op, x):
        return self.spikes(x, self.c(op.params["threshold"]))

    def encoder(self, op, x):
        p, pop = op.params, op.attrs["population"]
        channels = op.size // pop
        # repeat(x, population) · w as a broadcast product (1, C, 1) × (1, C, P)
        current = self.binary("MUL", self.reshape(x, (1, channels, 1)),
                              self.c(p["weight"].reshape(1, channels, pop)))
        current = self.binary("ADD", self.reshape(current, (1, op.size)), self.c(p["bias"]))
        s, self.new_state[op.name + ".v"] = self.lif_update(
            op, p["beta"], self.c(p["threshold"]), self.state[op.name + ".v"], current)
        return s

    def output(self, op, x):
        return x


# ------------------------------------------------- exact integers from int32 operations

LIMB = 14                     # bits per limb: a limb × limb product is below 2**28
LIMB_ONE = 1 << LIMB
# entries of a column are bounded by this; with one compressed remainder (< 2**14) and
# the carry from below (<= 2**16 + 1) a column's sum stays under 2**30 (floor_shift)
_COLUMN_LIMIT = (1 << 30) - (1 << 17)
_FLOAT_EXACT = 1 << 24        # float32 holds every integer below this exactly


@dataclass(frozen=True)
class _V:
    """An exact integer vector: an int32 tensor, or a folded constant, with |v| <= bound."""

    tensor: int | None
    bound: int
    const: np.ndarray | None = None  # int64, broadcastable to the op's width

    @property
    def is_const(self) -> bool:
        return self.tensor is None


@dataclass(frozen=True)
class _Spikes:
    """0/1 spikes: a bool tensor (this step's) or an int8 one (a ``.prev`` buffer)."""

    tensor: int


# A term of a wide sum: sign · value · 2**exp
_Term = tuple[_V, int, int]


class _Fixed(_Lowering):
    """FIXED_KERNELS with int32 ops only (see the module docstring): every tensor is
    int32 (1, n) with a tracked bound, and an op that could leave int32 is refused at
    export time, never emitted."""

    input_dtype = np.int16

    # -- values ----------------------------------------------------------------------
    def from_input(self, x):
        return self.cast(x, fixed.INT16_MAX + 1)

    def from_state(self, name):
        t = self.state[name]
        if self.fb.dtype(t) == np.int8:
            return _Spikes(t)  # the previous step's spikes: 0/1 by construction
        return _V(t, 1 << 31)

    def as_int(self, value: _V | _Spikes) -> _V:
        return value if isinstance(value, _V) else self.cast(value.tensor, 1)

    def output_tensor(self, value: _V | int, width: int) -> int:
        """The tensor of a value (an int8 spike tensor passes through; a constant is
        written)."""
        if not isinstance(value, _V):
            return value
        if value.is_const:
            return self.fb.const(np.broadcast_to(value.const, (1, width)), np.int32)
        return value.tensor

    def prev_value(self, value: _V | _Spikes) -> _V | int:
        """A value as its ``.prev`` buffer stores it: int32, or spikes as int8."""
        if isinstance(value, _V):
            return value
        t = value.tensor
        return self.fb.op("CAST", [t], self.fb.shape(t), np.int8,
                          cast=(self.fb.dtype(t), np.dtype(np.int8)))

    def gather(self, op: Op, values) -> list[_Term]:
        """The summed input as terms (the int64 sum of Program._gather, kept unsummed:
        each consumer adds it into a wide sum or applies a linear map term by term)."""
        terms = []
        for src in op.sources:
            v = self.as_int(self.source_value(src, values))
            if src.conversion == "spike":
                v = self.mul(v, src.k)
            elif src.conversion == "rescale":
                v = self.mul_q(v, src.multiplier, src.shift, self.sizes[src.name])
            terms.append((v, 0, 1))
        return terms

    # -- int32 building blocks (each checks that no int32 can overflow) ---------------
    def _check(self, bound: int) -> int:
        if bound > fixed.INT32_MAX + 1:
            raise BackendError(f"{self.fb.scope}: an intermediate would exceed int32 "
                               f"(bound {bound}); this model has no exact int32 TFLite form")
        return bound

    def c(self, value) -> _V:
        arr = np.asarray(value, dtype=np.int64)
        return _V(None, int(np.abs(arr).max()) if arr.size else 0, arr)

    def _t(self, v: _V) -> int:
        return v.tensor if not v.is_const else self.fb.const(v.const, np.int32)

    def _shape(self, *vs: _V) -> tuple[int, ...]:
        return np.broadcast_shapes(*[self.fb.shape(v.tensor) if not v.is_const else v.const.shape
                                     for v in vs])

    def _op(self, code: str, a: _V, b: _V, bound: int) -> _V:
        return _V(self.fb.op(code, [self._t(a), self._t(b)], self._shape(a, b), np.int32),
                  self._check(bound))

    def cast(self, t: int, bound: int) -> _V:
        return _V(self.fb.op("CAST", [t], self.fb.shape(t), np.int32,
                             cast=(self.fb.dtype(t), np.dtype(np.int32))), bound)

    def add(self, a: _V, b: _V, sign: int = 1, bound: int | None = None) -> _V:
        if a.is_const and b.is_const:
            return self.c(a.const + sign * b.const)
        if b.is_const and not b.const.any():
            return a
        if a.is_const and not a.const.any() and sign > 0:
            return b
        return self._op("ADD" if sign > 0 else "SUB", a, b,
                        a.bound + b.bound if bound is None else bound)

    def mul(self, a: _V, k, bound: int | None = None) -> _V:
        """a × a constant; ``bound``: a known bound on the product tighter than the
        bounds' product."""
        k = np.asarray(k, dtype=np.int64)
        if a.is_const:
            return self.c(a.const * k)
        if k.size == 1 and int(k.reshape(-1)[0]) == 1:
            return a
        return self._op("MUL", a, self.c(k),
                        a.bound * int(np.abs(k).max()) if bound is None else bound)

    def mul_masked(self, mask: _V, a: _V) -> _V:
        """mask (0/1) × a."""
        return self._op("MUL", mask, a, a.bound)

    def div(self, a: _V, divisor: int) -> _V:
        """Truncating division (TFLite's int32 DIV)."""
        if a.is_const:
            return self.c(np.sign(a.const) * (np.abs(a.const) // divisor))
        return self._op("DIV", a, self.c(divisor), a.bound // divisor)

    def floor_shift(self, a: _V, bits: int) -> _V:
        """floor(a / 2**bits) for |a| < 2**30: DIV truncates, so shift a into the
        positive range first (2**30 is a multiple of 2**bits)."""
        if a.is_const:
            return self.c(a.const >> bits)
        if a.bound >= 1 << 30:
            raise BackendError(f"{self.fb.scope}: floor division of a value beyond 2**30")
        q = self.div(self.add(a, self.c(1 << 30)), 1 << bits)
        return self.add(q, self.c(1 << (30 - bits)), -1, bound=(a.bound >> bits) + 1)

    def clamp(self, a: _V, lo, hi) -> _V:
        bound = max(abs(int(np.min(lo))), abs(int(np.max(hi))))
        if a.is_const:
            return self.c(np.clip(a.const, lo, hi))
        a = self._op("MAXIMUM", a, self.c(lo), a.bound)
        return self._op("MINIMUM", a, self.c(hi), min(a.bound, bound))

    def compare(self, code: str, a: _V, b: _V) -> int:
        """A bool tensor (GREATER / GREATER_EQUAL)."""
        return self.fb.op(code, [self._t(a), self._t(b)], self._shape(a, b), np.bool_)

    def mask(self, code: str, a: _V, b: _V) -> _V:
        return self.cast(self.compare(code, a, b), 1)

    def split(self, a: _V, bits: int) -> list[_V]:
        """Signed limbs, a = Σ limb_i · 2**(bits·i) with |limb_i| < 2**bits."""
        limbs = []
        while a.bound >= 1 << bits:
            q = self.div(a, 1 << bits)
            limbs.append(self.add(a, self.mul(q, 1 << bits), -1, bound=(1 << bits) - 1))
            a = q
        return limbs + [a]

    # -- wide sums: Σ sign · value · 2**exp, exact, in 14-bit columns -------------------
    def columns(self, terms: list[_Term]) -> list[list[tuple[_V, int]]]:
        """Columns of signed entries: value = Σ_k 2**(14k) · Σ column_k. A column that
        would pass the limit is summed and its carry moved one column up."""
        cols: list[list[tuple[_V, int]]] = []

        def place(k: int, v: _V, sign: int) -> None:
            while len(cols) <= k:
                cols.append([])
            if sum(e.bound for e, _ in cols[k]) + v.bound > _COLUMN_LIMIT:
                total = self.column_sum(cols[k])
                carry = self.div(total, LIMB_ONE)
                cols[k] = [(self.add(total, self.mul(carry, LIMB_ONE), -1, bound=LIMB_ONE - 1), 1)]
                place(k + 1, carry, 1)
            cols[k].append((v, sign))

        for v, exp, sign in terms:
            k, r = divmod(exp, LIMB)
            if r == 0 and v.bound <= _COLUMN_LIMIT:
                place(k, v, sign)
                continue
            for i, limb in enumerate(self.split(v, LIMB)):
                place(k + i, self.mul(limb, 1 << r), sign)
        return cols or [[(self.c(0), 1)]]

    def column_sum(self, col: list[tuple[_V, int]]) -> _V:
        consts = [(v, s) for v, s in col if v.is_const]
        total = None if col else self.c(0)
        for v, s in [(v, s) for v, s in col if not v.is_const] + consts:
            if total is None:
                total = v if s > 0 else self.add(self.c(0), v, -1)
            else:
                total = self.add(total, v, s)
        return total

    def carry_through(self, cols, upto: int) -> _V:
        """The carry out of columns 0..upto-1: floor(Σ_{k<upto} col_k 2**(14k) / 2**(14·upto))."""
        carry = self.c(0)
        for k in range(upto):
            s = self.add(self.column_sum(cols[k]), carry) if k < len(cols) else carry
            carry = self.floor_shift(s, LIMB)
        return carry

    def shifted(self, terms: list[_Term], limbs: int) -> list[_Term]:
        """floor(Σ terms / 2**(14·limbs)) as terms (nested floors are exact)."""
        cols = self.columns(terms)
        out = [(self.carry_through(cols, limbs), 0, 1)]
        for k in range(limbs, len(cols)):
            out += [(v, LIMB * (k - limbs), s) for v, s in cols[k]]
        return out

    def sat32(self, terms: list[_Term], bound: int | None = None) -> _V:
        """saturate32(Σ terms) as an int32 value. ``bound``: a known bound on |Σ terms|
        tighter than the sum of the terms' bounds."""
        total_bound = sum(v.bound << exp for v, exp, _ in terms)
        bound = total_bound if bound is None else min(bound, total_bound)
        if all(exp == 0 for _, exp, _ in terms) and total_bound <= fixed.INT32_MAX:
            return self.column_sum([(v, s) for v, _, s in terms])  # fits: a plain sum
        cols = self.columns(terms)
        digits, carry = [], self.c(0)  # normalized: digits in [0, 2**14) below the top one
        for k, col in enumerate(cols):
            s = self.add(self.column_sum(col), carry)
            if k == len(cols) - 1:
                digits.append(s)
                break
            carry = self.floor_shift(s, LIMB)
            digits.append(self.add(s, self.mul(carry, LIMB_ONE), -1, bound=LIMB_ONE - 1))
        if len(digits) == 1:  # one column always fits
            return digits[0]
        if bound <= fixed.INT32_MAX:
            # no saturation: Horner from the top; the partial value over digits k.. is
            # floor(value / 2**(14k)), so |partial| <= ceil(bound / 2**(14k))
            value = digits[-1]
            for k in range(len(digits) - 2, -1, -1):
                above = -(-bound >> (LIMB * (k + 1)))
                value = self.add(self.mul(value, LIMB_ONE, bound=above << LIMB), digits[k],
                                 bound=-(-bound >> (LIMB * k)))
            return value
        # value = high · 2**(14·low_n) + low, 0 <= low < 2**(14·low_n)
        low_n = min(2, len(digits) - 1)
        low = digits[0]
        if low_n == 2:
            low = self.add(low, self.mul(digits[1], LIMB_ONE), bound=(1 << 28) - 1)
        high = digits[-1]
        for k in range(len(digits) - 2, low_n - 1, -1):
            # beyond [-2, 1] the result saturates whatever the lower digits are
            high = self.add(self.mul(self.clamp(high, -2, 1), LIMB_ONE), digits[k])
        scale = 1 << (LIMB * low_n)
        top = 1 << (31 - LIMB * low_n)  # high >= top saturates up, high < -top down
        over = self.mask("GREATER_EQUAL", high, self.c(top))
        not_under = self.mask("GREATER_EQUAL", high, self.c(-top))
        low = self._op("MAXIMUM", low, self.mul(over, scale - 1), scale - 1)
        low = self._op("MINIMUM", low, self.mul(not_under, scale - 1), scale - 1)
        high = self.clamp(high, -top, top - 1)
        return self.add(self.mul(high, scale), low, bound=fixed.INT32_MAX + 1)

    def mul_q(self, x: _V, multiplier, shift, width: int) -> _V:
        """fixed.mul_q: saturate32(round_shift(x · m, s)) per channel, exactly.

        With S the largest shift rounded up to whole limbs, x·m·2**-s = x·m'·2**-S for
        m' = m·2**(S-s), and the rounding constant is 2**(S-1) on every channel; the
        products of x's limbs and m''s limbs land in columns, and dropping S/14 columns
        (with their carry) is the floor division."""
        m = [int(v) for v in np.broadcast_to(np.asarray(multiplier, np.int64), (width,))]
        s = [int(v) for v in np.broadcast_to(np.asarray(shift, np.int64), (width,))]
        if x.is_const:
            return self.c(fixed.mul_q(np.broadcast_to(x.const, (width,)), m, s))
        live = [k for k in range(width) if m[k]]
        if not live:
            return self.c(np.zeros(width))
        top = -(-max(s[k] for k in live) // LIMB) * LIMB
        scaled = [m[k] << (top - s[k]) if m[k] else 0 for k in range(width)]
        terms: list[_Term] = [(self.c(1), top - 1, 1)]
        x_limbs = self.split(x, LIMB)
        for j in range(-(-max(scaled).bit_length() // LIMB)):
            m_limb = np.array([(v >> (LIMB * j)) & (LIMB_ONE - 1) for v in scaled], np.int64)
            if m_limb.any():
                terms += [(self.mul(xl, m_limb), LIMB * (i + j), 1) for i, xl in enumerate(x_limbs)]
        bound = -(-(x.bound * max(scaled) + (1 << (top - 1))) >> top) + 1
        return self.sat32(self.shifted(terms, top // LIMB), bound)

    def matmul(self, terms: list[_Term], weight: np.ndarray, groups: int = 1) -> list[_Term]:
        """Σ_terms W · term, exactly, as terms: float32 FULLY_CONNECTED on digits of each
        term small enough that |Σ w·digit| < 2**24 for every output and partial sum."""
        w_bound = max(1, int(np.abs(weight.astype(np.int64)).sum(axis=1).max()))
        if w_bound >= _FLOAT_EXACT:
            raise BackendError(f"{self.fb.scope}: a weight row's |sum| ({w_bound}) reaches 2**24; "
                               "float32 products would not be exact")
        digit_bits = ((_FLOAT_EXACT - 1) // w_bound + 1).bit_length() - 1
        wf = self.fb.const(weight.astype(np.float32), np.float32)
        out_width = groups * weight.shape[0]
        out = []
        for v, exp, sign in terms:
            digits = [v] if v.bound * w_bound < _FLOAT_EXACT else self.split(v, digit_bits)
            for i, d in enumerate(digits):
                if d.is_const:
                    const = np.broadcast_to(d.const, (groups * weight.shape[1],))
                    prod = (const.reshape(groups, -1) @ weight.T.astype(np.int64)).reshape(-1)
                    out.append((self.c(prod), exp + digit_bits * i, sign))
                    continue
                f = self.fb.op("CAST", [d.tensor], self.fb.shape(d.tensor), np.float32,
                               cast=(np.dtype(np.int32), np.dtype(np.float32)))
                if groups > 1:
                    f = self.reshape(f, (groups, weight.shape[1]))
                y = self.fb.op("FULLY_CONNECTED", [f, wf, -1], (groups, weight.shape[0]),
                               np.float32)
                if groups > 1:
                    y = self.reshape(y, (1, out_width))
                y = self.fb.op("CAST", [y], (1, out_width), np.int32,
                               cast=(np.dtype(np.float32), np.dtype(np.int32)))
                out.append((_V(y, w_bound * d.bound), exp + digit_bits * i, sign))
        return out

    # -- neurons ------------------------------------------------------------------------
    def decay(self, v: _V, q, width: int) -> _V:
        return self.mul_q(v, q, fixed.DECAY_SHIFT, width)

    def lif_update(self, op: Op, beta, threshold: _V, v: _V, current: list[_Term],
                   last: _V | None = None):
        """kernels._lif_fixed: (spikes as a bool tensor, new membrane)."""
        last = threshold if last is None else last
        fired = self.mask("GREATER", v, last)
        terms = [(self.decay(v, beta, op.size), 0, 1)] + current
        if op.attrs["reset"] == "subtract":
            cut = self.mul(fired, last.const) if last.is_const else self.mul_masked(fired, last)
            v = self.sat32(terms + [(cut, 0, -1)])
        else:
            kept = self.add(self.c(1), fired, -1)
            v = self.mul_masked(kept, self.sat32(terms))
        return _Spikes(self.compare("GREATER", v, threshold)), v

    def state_value(self, name: str) -> _V:
        return _V(self.state[name], 1 << 31)

    def requantize(self, op: Op, terms: list[_Term]) -> _V:
        acc = self.sat32(terms)
        return self.mul_q(acc, op.params["multiplier"], op.params["shift"], op.size)

    # -- kernels ----------------------------------------------------------------------
    def affine(self, op, x):
        terms = self.matmul(x, op.params["weight"])
        if "bias" in op.params:
            terms.append((self.c(op.params["bias"]), 0, 1))
        return self.requantize(op, terms)

    def grouped(self, op, x):
        w = op.params["weight"]
        groups = op.size // w.shape[0]
        return self.mul_q(self.sat32(self.matmul(x, w, groups)),
                          np.tile(op.params["multiplier"], groups),
                          np.tile(op.params["shift"], groups), op.size)

    def lif(self, op, x):
        p = op.params
        s, self.new_state[op.name + ".v"] = self.lif_update(
            op, p["beta"], self.c(p["threshold"]), self.state_value(op.name + ".v"), x)
        return s

    def cuba_lif(self, op, x):
        p, n = op.params, op.name
        i = self.sat32([(self.decay(self.state_value(n + ".i"), p["alpha"], op.size), 0, 1)] + x)
        s, self.new_state[n + ".v"] = self.lif_update(op, p["beta"], self.c(p["threshold"]),
                                                      self.state_value(n + ".v"), [(i, 0, 1)])
        self.new_state[n + ".i"] = i
        return s

    def adaptive_lif(self, op, x):
        p, n = op.params, op.name
        i = self.sat32([(self.decay(self.state_value(n + ".i"), p["alpha"], op.size), 0, 1)] + x)
        trace = self.state_value(n + ".trace")
        adapt = self.mul_q(self.sat32(self.matmul([(trace, 0, 1)], p["threshold_weight"])),
                           p["threshold_multiplier"], p["threshold_shift"], op.size)
        thr = self.sat32([(self.c(p["threshold"]), 0, 1), (adapt, 0, 1)])
        s, v = self.lif_update(op, p["beta"], thr, self.state_value(n + ".v"), [(i, 0, 1)],
                               self.state_value(n + ".thr"))
        fired = self.as_int(s)
        new_trace = self.sat32([(self.decay(trace, p["trace_decay"], op.size), 0, 1),
                                (self.mul(fired, fixed.TRACE_ONE), 0, 1)])
        self.new_state.update({n + ".v": v, n + ".i": i, n + ".trace": new_trace, n + ".thr": thr})
        return s

    def li(self, op, x):
        v = self.sat32([(self.decay(self.state_value(op.name + ".v"), op.params["beta"],
                                    op.size), 0, 1)] + x)
        self.new_state[op.name + ".v"] = v
        return v

    def threshold(self, op, x):
        # Σ x > ϑ exactly: the sign of saturate32(Σ x − ϑ)
        margin = self.sat32(x + [(self.c(op.params["threshold"]), 0, -1)])
        return _Spikes(self.compare("GREATER", margin, self.c(0)))

    def encoder(self, op, x):
        p, pop = op.params, op.attrs["population"]
        channels = op.size // pop
        w = p["weight"].astype(np.int64).reshape(1, channels, pop)
        w_max = max(1, int(np.abs(w).max()))
        terms = []
        for v, exp, sign in x:  # repeat(x, population) · w, term by term
            for i, limb in enumerate([v] if v.bound * w_max <= fixed.INT32_MAX else
                                     self.split(v, LIMB)):
                if limb.is_const:
                    prod = self.c((np.broadcast_to(limb.const, (channels,))[:, None] * w[0])
                                  .reshape(-1))
                else:
                    t = self.reshape(limb.tensor, (1, channels, 1))
                    t = self.fb.op("MUL", [t, self.fb.const(w, np.int32)], (1, channels, pop),
                                   np.int32)
                    prod = _V(self.reshape(t, (1, op.size)), limb.bound * w_max)
                terms.append((prod, exp + LIMB * i, sign))
        current = self.requantize(op, terms + [(self.c(p["bias"]), 0, 1)])
        s, self.new_state[op.name + ".v"] = self.lif_update(
            op, p["beta"], self.c(p["threshold"]), self.state_value(op.name + ".v"),
            [(current, 0, 1)])
        return s

    def output(self, op, x):
        return self.sat32(x)


# --------------------------------------------------------------------------- public


def program_to_tflite(program: Program, description: str = "edgesnn step") -> bytes:
    """The .tflite flatbuffer of one step of a compiled Program (float32 or fixed)."""
    return _lower(program).serialize(description)


def _lower(program: Program) -> _Flatbuffer:
    return (_Fixed if program.numerics == FIXED else _Float)(program).build()


def _program(model: Model, quantized: bool) -> Program:
    if quantized and model.quantization is None:
        raise BackendError("the quantized TFLite form needs a quantized model; quantize it "
                           "first: edgesnn quantize MODEL --calib DATA --out MODEL_INT")
    return compile_graph(model.graph, model.quantization if quantized else None)


def to_tflite(model: Model, quantized: bool) -> bytes:
    """One step of ``model`` as a .tflite flatbuffer: the float32 form, or with
    ``quantized`` the exact integer form (needs a quantized model)."""
    name = str(model.metadata.get("name", "model"))
    form = EXACT_FORM if quantized else FLOAT_FORM
    return program_to_tflite(_program(model, quantized), f"edgesnn {name}: one step, {form}")


def export_tflite(model: Model, path: str | Path, quantized: bool) -> dict:
    """Write the .tflite file; returns what was written (form, ops, bytes, I/O and state
    tensors)."""
    path = Path(path)
    path.write_bytes(to_tflite(model, quantized))
    return {"form": EXACT_FORM if quantized else FLOAT_FORM} | describe_tflite(path)


def describe_tflite(source: str | Path | bytes, name: str | None = None) -> dict:
    """What a .tflite file (or its bytes) holds — I/O tensors, the state tensors, ops,
    bytes — or ModelFileError when it is not a loadable TFLite model. ``name``: how the
    report and errors call it (default: the path, or "<bytes>")."""
    data, where = _read(source)
    where = name or where
    interpreter = _verified_interpreter(data, where)
    M = _schema("Model").Model.GetRootAs(data, 0)
    op_names = {v: k for k, v in vars(_schema("BuiltinOperator").BuiltinOperator).items()
                if not k.startswith("_")}
    codes = [M.OperatorCodes(i) for i in range(M.OperatorCodesLength())]
    graph = M.Subgraphs(0)
    ops = Counter(op_names.get(max(codes[graph.Operators(i).OpcodeIndex()].BuiltinCode(),
                                   codes[graph.Operators(i).OpcodeIndex()].DeprecatedBuiltinCode()),
                               "CUSTOM")
                  for i in range(graph.OperatorsLength()))

    def tensors(details) -> list[dict]:
        return [{"name": d["name"], "type": np.dtype(d["dtype"]).name,
                 "shape": [int(s) for s in d["shape"]]} for d in details]

    inputs = tensors(interpreter.get_input_details())
    outputs = tensors(interpreter.get_output_details())
    description = M.Description()
    return {"path": where, "bytes": len(data),
            "description": description.decode() if description else "",
            "inputs": inputs, "outputs": outputs,
            "state": [t for t in inputs if state_output(t["name"]) in
                      {o["name"] for o in outputs}],
            "ops": dict(sorted(ops.items()))}


def _read(source: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "<bytes>"
    path = Path(source)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    return path.read_bytes(), str(path)


def _verified_interpreter(data: bytes, where: str):
    """A LiteRT interpreter of ``data``, after LiteRT's flatbuffer verifier: the check
    that makes a truncated or foreign file an error instead of a crash (TFLite Micro
    does not verify what it loads, so tflite-micro runs only verified bytes)."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"{where}: not a TFLite model (no 'TFL3' identifier)")
    litert = require("ai_edge_litert.interpreter", "tflite")
    try:
        interpreter = litert.Interpreter(
            model_content=data,
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{where}: not a valid TFLite model ({detail})") from None
    return interpreter

"""An edgesnn model as ONNX: one step, with the state as explicit inputs and outputs.

    inputs:  x (batch, features), then every buffer of Program.state_layout()
    outputs: y (batch, outputs),  then "<buffer>:next" for every buffer, same order

The way ONNX recommends for stateful models: the caller feeds each step's ``:next``
tensors back as the next step's state (``edgesnn.backends.onnx_rt`` does).

Two forms:

- **float32**: the float kernels of ``edgesnn/compile/kernels.py`` op for op (MatMul,
  Mul, Add, Greater, Where, Cast); matches numpy-float within float rounding of the
  matrix products.
- **integer** (quantized models): the fixed-point path, bit-exact with numpy-int.
  Weights are stored int8; every sum and product runs in int64 (MatMul, Mul, Add on
  int64), the round-half-up shift of the rescale is floor division written with Mod
  and Div, saturation is Min/Max. Why not QLinearMatMul or QDQ: they rescale in float
  and round half to even, so they cannot reproduce the integer rescale of the C
  runtime; MatMulInteger takes only 8-bit operands, and edgesnn's inputs are int16 and
  its state int32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesnn.compile import Program, compile_graph
from edgesnn.compile.fixed import DECAY_SHIFT, INT32_MAX, INT32_MIN, TRACE_ONE
from edgesnn.compile.program import Op
from edgesnn.errors import BackendError, ModelFileError, require
from edgesnn.modelfile import Model

OPSET = 17
BATCH = "batch"


def state_output(name: str) -> str:
    return f"{name}:next"


def to_onnx(model: Model, quantized: bool = False, sequence: bool = False):
    """The ONNX ModelProto of one step (float32, or integer for a quantized model); with
    ``sequence`` a whole sequence: a Scan over the step, xs (T, batch, features) and the
    initial state in, ys (T, batch, outputs) and the final state out."""
    onnx = require("onnx", "onnx")
    if quantized and model.quantization is None:
        raise BackendError("the integer ONNX form needs a quantized model; "
                           "quantize it first: edgesnn quantize MODEL --calib DATA --out MODEL_INT")
    program = compile_graph(model.graph, model.quantization if quantized else None)
    builder = (_Integer if quantized else _Float)(program)
    graph = builder.build(str(model.metadata.get("name", "edgesnn-model")))
    if sequence:
        graph = _scan(onnx, graph)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="edgesnn")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Model, path: str | Path, quantized: bool = False,
                sequence: bool = False) -> dict:
    """Write the ONNX file; returns what was written (ops, bytes, I/O and state tensors)."""
    Path(path).write_bytes(to_onnx(model, quantized, sequence).SerializeToString())
    form = ("integer" if quantized else "float32") + (" sequence (Scan)" if sequence else " step")
    return {"form": form} | describe_onnx(path)


def _scan(onnx, step):
    """The step graph as the body of a Scan over time: the state buffers are the loop
    state, x the scanned input, y the scanned output."""
    x, states = step.input[0], list(step.input[1:])
    y, next_states = step.output[0], list(step.output[1:])
    body = onnx.helper.make_graph(step.node, "step", states + [x], next_states + [y],
                                  step.initializer)

    def seq(value, name):
        t = value.type.tensor_type
        return onnx.helper.make_tensor_value_info(name, t.elem_type,
                                                  ["time"] + [d.dim_param or d.dim_value
                                                              for d in t.shape.dim])

    scan = onnx.helper.make_node("Scan", [s.name for s in states] + ["xs"],
                                 [f"{s.name}:final" for s in states] + ["ys"],
                                 num_scan_inputs=1, body=body)
    finals = [onnx.helper.make_tensor_value_info(f"{s.name}:final", s.type.tensor_type.elem_type,
                                                 [d.dim_param or d.dim_value
                                                  for d in s.type.tensor_type.shape.dim])
              for s in states]
    return onnx.helper.make_graph([scan], step.name, [seq(x, "xs")] + states,
                                  [seq(y, "ys")] + finals)


def describe_onnx(path: str | Path) -> dict:
    """What an ONNX file holds (I/O tensors, ops, bytes), or ModelFileError."""
    onnx = require("onnx", "onnx")
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ... — all mean unusable
        raise ModelFileError(f"{path}: not a valid ONNX model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None

    def tensors(items) -> list[dict]:
        return [{"name": t.name, "type": onnx.helper.tensor_dtype_to_np_dtype(
                    t.type.tensor_type.elem_type).name,
                 "shape": [d.dim_param or d.dim_value for d in t.type.tensor_type.shape.dim]}
                for t in items]

    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"path": str(path), "bytes": path.stat().st_size, "producer": proto.producer_name,
            "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                         default=None),
            "inputs": tensors(proto.graph.input), "outputs": tensors(proto.graph.output),
            "ops": dict(sorted(ops.items()))}


class _Builder:
    """Shared: naming, initializers, the gather of an op's sources, the graph I/O."""

    dtype: np.dtype  # element type of values and state in this form

    def __init__(self, program: Program):
        self.onnx = require("onnx", "onnx")
        self.p = program
        self.nodes: list = []
        self.inits: list = []
        self.count = 0
        self.values: dict[str, str] = {}  # op name → tensor holding its output this step
        self.consts: dict[tuple, str] = {}

    # -- building blocks ---------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: np.ndarray, hint: str = "c") -> str:
        array = np.asarray(array)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.consts:  # one initializer per distinct constant
            name = self.fresh(hint)
            self.inits.append(self.onnx.numpy_helper.from_array(array, name))
            self.consts[key] = name
        return self.consts[key]

    def op(self, op_type: str, *inputs: str, hint: str | None = None, **attrs) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def add_all(self, terms: list[str]) -> str:
        total = terms[0]
        for t in terms[1:]:
            total = self.op("Add", total, t)
        return total

    def source(self, op: Op, src) -> str:
        return src.name + ".prev" if src.recurrent else self.values[src.name]

    def io(self, name: str, width: int, dtype) -> object:
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.onnx.helper.make_tensor_value_info(name, elem, [BATCH, width])

    # -- the step ------------------------------------------------------------------------
    def build(self, name: str):
        layout = self.p.state_layout()
        inputs = [self.io("x", self.p.input_size, self.input_dtype)]
        inputs += [self.io(n, w, d) for n, w, d in layout]
        state_out: dict[str, str] = {}
        for op in self.p.ops:
            if op.kind == "input":
                self.values[op.name] = self.prepare_input("x")
                continue
            kernel = getattr(self, f"k_{op.kind}", None)
            if kernel is None:  # a kind added to the IR without an ONNX form: refuse
                raise BackendError(f"no ONNX form for op kind {op.kind!r} ({op.name})")
            self.values[op.name], updates = kernel(op, self.gather(op))
            state_out.update(updates)
        for src in self.p.recurrent_sources:
            state_out[src + ".prev"] = self.values[src]
        outputs = [self.io("y", self.p.output_size, self.output_dtype)]
        self.finish(self.values[self.p.ops[-1].name], "y", self.output_dtype)
        for n, w, d in layout:
            outputs.append(self.io(state_output(n), w, d))
            self.finish(state_out[n], state_output(n), d)
        return self.onnx.helper.make_graph(self.nodes, name, inputs, outputs, self.inits)

    def finish(self, tensor: str, name: str, dtype) -> None:
        """Name a graph output, in its declared element type."""
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.nodes.append(self.onnx.helper.make_node("Cast", [tensor], [name], to=elem))

    # implemented per form
    input_dtype: type
    output_dtype: type

    def prepare_input(self, x: str) -> str:
        return x

    def gather(self, op: Op) -> str:
        raise NotImplementedError


class _Float(_Builder):
    input_dtype = output_dtype = np.float32

    def f(self, a) -> str:
        return self.const(np.asarray(a, np.float32))

    def gather(self, op: Op) -> str:
        return self.add_all([self.source(op, s) for s in op.sources]) if op.sources else ""

    def lif(self, beta, threshold, reset, v, current, last=None) -> tuple[str, str]:
        last = threshold if last is None else last
        fired = self.op("Greater", v, last)
        v = self.op("Add", self.op("Mul", beta, v), current)
        v = self.op("Where", fired, self.op("Sub", v, last) if reset == "subtract" else self.f(0), v)
        return self.op("Cast", self.op("Greater", v, threshold), to=1), v

    def k_affine(self, op: Op, x: str):
        y = self.op("MatMul", x, self.f(op.params["weight"].T))
        if "bias" in op.params:
            y = self.op("Add", y, self.f(op.params["bias"]))
        return y, {}

    def k_grouped(self, op: Op, x: str):
        w = op.params["weight"]
        groups = op.size // w.shape[0]
        blocks = self.op("Reshape", x, self.const(np.array([0, groups, w.shape[1]], np.int64)))
        y = self.op("MatMul", blocks, self.f(w.T))
        return self.op("Reshape", y, self.const(np.array([0, op.size], np.int64))), {}

    def k_lif(self, op: Op, x: str):
        p = op.params
        s, v = self.lif(self.f(p["beta"]), self.f(p["threshold"]), op.attrs["reset"], op.name + ".v", x)
        return s, {op.name + ".v": v}

    def k_cuba_lif(self, op: Op, x: str):
        p = op.params
        i = self.op("Add", self.op("Mul", self.f(p["alpha"]), op.name + ".i"), x)
        s, v = self.lif(self.f(p["beta"]), self.f(p["threshold"]), op.attrs["reset"], op.name + ".v", i)
        return s, {op.name + ".v": v, op.name + ".i": i}

    def k_adaptive_lif(self, op: Op, x: str):
        p, n = op.params, op.name
        i = self.op("Add", self.op("Mul", self.f(p["alpha"]), n + ".i"), x)
        thr = self.op("Add", self.f(p["threshold"]),
                      self.op("MatMul", n + ".trace", self.f(p["threshold_weight"].T)))
        s, v = self.lif(self.f(p["beta"]), thr, op.attrs["reset"], n + ".v", i, n + ".thr")
        trace = self.op("Add", self.op("Mul", self.f(p["trace_decay"]), n + ".trace"), s)
        return s, {n + ".v": v, n + ".i": i, n + ".trace": trace, n + ".thr": thr}

    def k_li(self, op: Op, x: str):
        v = self.op("Add", self.op("Mul", self.f(op.params["beta"]), op.name + ".v"), x)
        return v, {op.name + ".v": v}

    def k_threshold(self, op: Op, x: str):
        return self.op("Cast", self.op("Greater", x, self.f(op.params["threshold"])), to=1), {}

    def k_encoder(self, op: Op, x: str):
        p, pop = op.params, op.attrs["population"]
        current = self.op("Add", self.op("Mul", self.op("MatMul", x, self.f(_repeat(op.size // pop, pop))),
                                         self.f(p["weight"])), self.f(p["bias"]))
        s, v = self.lif(self.f(p["beta"]), self.f(p["threshold"]), op.attrs["reset"], op.name + ".v",
                        current)
        return s, {op.name + ".v": v}

    def k_output(self, op: Op, x: str):
        return x, {}


class _Integer(_Builder):
    """Every value is int64 inside the step; inputs and state are cast at the edges."""

    input_dtype = np.int16
    output_dtype = np.int32

    def i(self, a) -> str:
        return self.const(np.asarray(a, np.int64))

    def prepare_input(self, x: str) -> str:
        return self.op("Cast", x, to=7)  # int64

    def state(self, name: str) -> str:
        return self.op("Cast", name, to=7)

    def sat32(self, v: str) -> str:
        return self.op("Max", self.op("Min", v, self.i(INT32_MAX)), self.i(INT32_MIN))

    def floor_div(self, v: str, divisor: str) -> str:
        # ONNX integer Div truncates; Mod (fmod=0) takes the divisor's sign, so v − mod
        # is an exact multiple of the (positive) divisor and the division is exact
        return self.op("Div", self.op("Sub", v, self.op("Mod", v, divisor)), divisor)

    def round_shift(self, v: str, shift) -> str:
        """(v >> s) + ((v >> (s−1)) & 1) — round half up, for int64 v."""
        shift = np.asarray(shift, np.int64)
        high = self.floor_div(v, self.i(np.left_shift(1, shift)))
        half = self.floor_div(v, self.i(np.left_shift(1, shift - 1)))
        return self.op("Add", high, self.op("Mod", half, self.i(2)))

    def mul_q(self, v: str, multiplier, shift) -> str:
        return self.sat32(self.round_shift(self.op("Mul", v, self.i(multiplier)), shift))

    def decay(self, v: str, q) -> str:
        return self.mul_q(v, q, DECAY_SHIFT)

    def gather(self, op: Op) -> str:
        terms = []
        for src in op.sources:
            v = self.source(op, src)
            if src.recurrent:
                v = self.state(v)
            if src.conversion == "spike":
                v = self.op("Mul", v, self.i(src.k))
            elif src.conversion == "rescale":
                v = self.mul_q(self.sat32(v), src.multiplier, src.shift)
            terms.append(v)
        return self.add_all(terms) if terms else ""

    def lif(self, beta, threshold, reset, v, current, last=None) -> tuple[str, str]:
        last = threshold if last is None else last
        fired = self.op("Greater", v, last)
        summed = self.op("Add", self.decay(v, beta), current)
        if reset == "subtract":
            v = self.sat32(self.op("Sub", summed, self.op("Where", fired, last, self.i(0))))
        else:
            v = self.op("Where", fired, self.i(0), self.sat32(summed))
        return self.op("Cast", self.op("Greater", v, threshold), to=7), v

    def requantize(self, acc: str, op: Op) -> str:
        return self.mul_q(self.sat32(acc), op.params["multiplier"], op.params["shift"])

    def weight(self, w: np.ndarray) -> str:
        return self.op("Cast", self.const(np.ascontiguousarray(w), "w"), to=7)  # stored int8

    def k_affine(self, op: Op, x: str):
        acc = self.op("MatMul", x, self.weight(op.params["weight"].T))
        if "bias" in op.params:
            acc = self.op("Add", acc, self.i(op.params["bias"]))
        return self.requantize(acc, op), {}

    def k_grouped(self, op: Op, x: str):
        w = op.params["weight"]
        groups = op.size // w.shape[0]
        blocks = self.op("Reshape", x, self.const(np.array([0, groups, w.shape[1]], np.int64)))
        acc = self.op("MatMul", blocks, self.weight(w.T))
        return self.op("Reshape", self.requantize(acc, op),
                       self.const(np.array([0, op.size], np.int64))), {}

    def k_lif(self, op: Op, x: str):
        p = op.params
        s, v = self.lif(p["beta"], self.i(p["threshold"]), op.attrs["reset"],
                        self.state(op.name + ".v"), x)
        return s, {op.name + ".v": v}

    def k_cuba_lif(self, op: Op, x: str):
        p = op.params
        i = self.sat32(self.op("Add", self.decay(self.state(op.name + ".i"), p["alpha"]), x))
        s, v = self.lif(p["beta"], self.i(p["threshold"]), op.attrs["reset"],
                        self.state(op.name + ".v"), i)
        return s, {op.name + ".v": v, op.name + ".i": i}

    def k_adaptive_lif(self, op: Op, x: str):
        p, n = op.params, op.name
        trace = self.state(n + ".trace")
        i = self.sat32(self.op("Add", self.decay(self.state(n + ".i"), p["alpha"]), x))
        adapt = self.mul_q(self.sat32(self.op("MatMul", trace, self.weight(p["threshold_weight"].T))),
                           p["threshold_multiplier"], p["threshold_shift"])
        thr = self.sat32(self.op("Add", self.i(p["threshold"]), adapt))
        s, v = self.lif(p["beta"], thr, op.attrs["reset"], self.state(n + ".v"), i,
                        self.state(n + ".thr"))
        trace = self.sat32(self.op("Add", self.decay(trace, p["trace_decay"]),
                                   self.op("Mul", s, self.i(TRACE_ONE))))
        return s, {n + ".v": v, n + ".i": i, n + ".trace": trace, n + ".thr": thr}

    def k_li(self, op: Op, x: str):
        v = self.sat32(self.op("Add", self.decay(self.state(op.name + ".v"), op.params["beta"]), x))
        return v, {op.name + ".v": v}

    def k_threshold(self, op: Op, x: str):
        return self.op("Cast", self.op("Greater", x, self.i(op.params["threshold"])), to=7), {}

    def k_encoder(self, op: Op, x: str):
        p, pop = op.params, op.attrs["population"]
        spread = self.op("MatMul", x, self.i(_repeat(op.size // pop, pop)))
        acc = self.op("Add", self.op("Mul", spread, self.i(p["weight"])), self.i(p["bias"]))
        s, v = self.lif(p["beta"], self.i(p["threshold"]), op.attrs["reset"],
                        self.state(op.name + ".v"), self.requantize(acc, op))
        return s, {op.name + ".v": v}

    def k_output(self, op: Op, x: str):
        return self.sat32(x), {}


def _repeat(channels: int, population: int) -> np.ndarray:
    """(channels, channels·population) 0/1: x @ R repeats each channel ``population``
    times, exactly (one non-zero term per output)."""
    return np.kron(np.eye(channels), np.ones((1, population)))

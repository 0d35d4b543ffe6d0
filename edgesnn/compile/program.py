"""Graph → Program: a fixed kernel order with every buffer sized before the first step."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np

from edgesnn.compile import fixed
from edgesnn.compile.kernels import FIXED_KERNELS, FLOAT_KERNELS
from edgesnn.errors import GraphError, InputError, QuantizationError
from edgesnn.ir import (CONNECTIONS, LI, LIF, NEURONS, AdaptiveLIF, Affine, CubaLIF, Graph,
                        GroupedLinear, Input, Linear, Output, SpikeEncoder, Threshold)

State = dict[str, np.ndarray]
Observer = Callable[[str, np.ndarray, np.ndarray, State], None]

KIND = {Affine: "affine", Linear: "affine", GroupedLinear: "grouped", LIF: "lif",
        CubaLIF: "cuba_lif", AdaptiveLIF: "adaptive_lif", LI: "li", Threshold: "threshold", SpikeEncoder: "encoder",
        Output: "output", Input: "input"}
FLOAT32, FIXED = "float32", "fixed"


@dataclass
class Source:
    """An incoming edge, with the fixed-point conversion into the consumer's input scale."""

    name: str
    recurrent: bool
    conversion: str = "none"  # "none" | "spike" (× k) | "rescale" (× multiplier >> shift)
    k: int = 0
    multiplier: int = 0
    shift: int = 0

    @property
    def flash_bytes(self) -> int:
        return {"none": 0, "spike": 4, "rescale": 5}[self.conversion]


@dataclass
class Op:
    name: str
    kind: str
    size: int  # output width
    spiking: bool
    sources: list[Source]
    params: dict[str, np.ndarray] = field(default_factory=dict)  # what goes to flash
    attrs: dict[str, Any] = field(default_factory=dict)
    state: tuple[str, ...] = ()  # per-op state buffers, each of width ``size``
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # host-only views


@dataclass(frozen=True)
class Memory:
    flash: int    # weights and parameters
    state: int    # persistent state per sample
    scratch: int  # one output buffer per op per sample

    @property
    def ram(self) -> int:
        return self.state + self.scratch


@dataclass
class Program:
    numerics: str
    ops: list[Op]
    input_size: int
    output_size: int
    input_scale: float | None = None   # fixed: real value of one input step
    output_scale: float | None = None  # fixed: real value of one output step; None = spikes
    recurrent_sources: tuple[str, ...] = ()

    # -- buffers -------------------------------------------------------------------
    def _value_dtype(self, spiking: bool) -> type:
        if self.numerics == FLOAT32:
            return np.float32
        return np.int8 if spiking else np.int32

    @cached_property
    def _layout(self) -> tuple[tuple[str, int, type], ...]:
        by_name = {op.name: op for op in self.ops}
        layout = [(f"{op.name}.{b}", op.size, self._value_dtype(False))
                  for op in self.ops for b in op.state]
        layout += [(f"{n}.prev", by_name[n].size, self._value_dtype(by_name[n].spiking))
                   for n in self.recurrent_sources]
        return tuple(layout)

    @cached_property
    def _prev_dtype(self) -> dict[str, type]:
        return {name[:-len(".prev")]: d for name, _, d in self._layout if name.endswith(".prev")}

    def state_layout(self) -> list[tuple[str, int, type]]:
        """(buffer name, width, dtype) of every state buffer, in a fixed order."""
        return list(self._layout)

    def init_state(self, batch: int = 1) -> State:
        return {name: np.zeros((batch, width), dtype) for name, width, dtype in self.state_layout()}

    def memory(self) -> Memory:
        flash = sum(a.nbytes for op in self.ops for a in op.params.values())
        flash += sum(s.flash_bytes for op in self.ops for s in op.sources)
        state = sum(w * np.dtype(d).itemsize for _, w, d in self.state_layout())
        scratch = sum(op.size * np.dtype(self._value_dtype(op.spiking)).itemsize
                      for op in self.ops if op.kind != "output")
        return Memory(flash=flash, state=state, scratch=scratch)

    # -- execution -----------------------------------------------------------------
    def _gather(self, op: Op, values: dict[str, np.ndarray], state: State) -> np.ndarray:
        total = None
        for src in op.sources:
            v = state[src.name + ".prev"] if src.recurrent else values[src.name]
            if self.numerics == FIXED:
                v = v.astype(np.int64)
                if src.conversion == "spike":
                    v = v * src.k
                elif src.conversion == "rescale":
                    v = fixed.mul_q(fixed.saturate32(v), src.multiplier, src.shift)
            total = v if total is None else total + v
        return total

    def core_step(self, state: State, x: np.ndarray, observe: Observer | None = None):
        """One step on prepared input (float32, or int16 for fixed point) shaped (batch,
        features), without validation; ``observe(name, input, output, state_updates)`` is
        called after each op (calibration, operation counts)."""
        kernels = FLOAT_KERNELS if self.numerics == FLOAT32 else FIXED_KERNELS
        values: dict[str, np.ndarray] = {}
        new_state: State = {}
        for op in self.ops:
            if op.kind == "input":
                values[op.name] = x
                continue
            inp = self._gather(op, values, state)
            values[op.name], updates = kernels[op.kind](op, inp, state)
            new_state.update(updates)
            if observe is not None:
                observe(op.name, inp, values[op.name], updates)
        for name in self.recurrent_sources:
            # a copy in the layout's dtype: an Input's value is the caller's array
            new_state[name + ".prev"] = np.array(values[name], dtype=self._prev_dtype[name])
        return values[self.ops[-1].name], new_state

    def _check_state(self, state: State, batch: int) -> None:
        for name, width, _ in self._layout:
            buf = state.get(name)
            if buf is None or buf.shape != (batch, width):
                got = "missing" if buf is None else f"shape {buf.shape}"
                raise InputError(f"state buffer {name!r} is {got}; expected ({batch}, {width}) "
                                 "— use init_state(batch) or reset()")

    def check_input(self, x, time_axis: bool) -> np.ndarray:
        """Validate a float input: (n,) or (batch, n) per step, (T, n) or (batch, T, n) per run."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise InputError(f"input must be real numbers; got dtype {x.dtype}")
        ranks = (2, 3) if time_axis else (1, 2)
        what = "(T, features) or (batch, T, features)" if time_axis else \
            "(features,) or (batch, features)"
        if x.ndim not in ranks:
            raise InputError(f"input has shape {x.shape}; expected {what}")
        if x.shape[-1] != self.input_size:
            raise InputError(f"input has {x.shape[-1]} features; the model expects "
                             f"{self.input_size}")
        if 0 in x.shape:
            raise InputError(f"input has shape {x.shape}: nothing to run")
        x = x.astype(np.float32, copy=False)
        finite = np.isfinite(x)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            raise InputError(f"input contains NaN or Inf (first at index {tuple(bad.tolist())})")
        return x

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input → int16 (round half to even, saturated): what a device receives."""
        if self.numerics == FLOAT32:
            return x
        q = np.rint(x.astype(np.float64) / self.input_scale)
        return np.clip(q, fixed.INT16_MIN, fixed.INT16_MAX).astype(np.int16)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        if self.numerics == FLOAT32:
            return y
        scale = 1.0 if self.output_scale is None else self.output_scale
        return (y.astype(np.float64) * scale).astype(np.float32)

    def step(self, state: State, x) -> tuple[np.ndarray, State]:
        """One step on float input: ``y, state = program.step(state, x)``.

        ``x`` is (features,) or (batch, features); ``state`` comes from ``init_state``.
        A fixed-point program quantizes the input, runs the integer kernels and
        dequantizes the output; ``step_int`` is the integer core alone.
        """
        x = self.check_input(x, time_axis=False)
        xb = x[None] if x.ndim == 1 else x
        y, state = self.step_int(state, self.quantize_input(xb)) if self.numerics == FIXED \
            else self._step_checked(state, xb)
        y = self.dequantize_output(y)
        return (y[0] if x.ndim == 1 else y), state

    def _step_checked(self, state: State, xb: np.ndarray):
        self._check_state(state, xb.shape[0])
        return self.core_step(state, xb)

    def step_int(self, state: State, xq: np.ndarray) -> tuple[np.ndarray, State]:
        """The integer core of a fixed-point program: int inputs (batch, features) → ints."""
        if self.numerics != FIXED:
            raise QuantizationError("step_int needs a fixed-point program")
        xq = np.asarray(xq)
        if xq.dtype.kind not in "iu" or xq.ndim != 2 or xq.shape[1] != self.input_size:
            raise InputError(f"step_int takes integers shaped (batch, {self.input_size}); got "
                             f"{xq.dtype} {xq.shape}")
        return self._step_checked(state, xq)

    def run(self, state: State, xs) -> tuple[np.ndarray, State]:
        """A whole sequence: (T, features) or (batch, T, features), vectorised over batch."""
        xs = self.check_input(xs, time_axis=True)
        xb = xs[None] if xs.ndim == 2 else xs
        self._check_state(state, xb.shape[0])
        xq = self.quantize_input(xb)
        ys = []
        for t in range(xb.shape[1]):
            y, state = self.core_step(state, xq[:, t])
            ys.append(y)
        out = self.dequantize_output(np.stack(ys, axis=1))
        return (out[0] if xs.ndim == 2 else out), state


# ------------------------------------------------------------------------- compile


def compile_graph(graph: Graph, quantization=None) -> Program:
    """Lower a graph to a float32 Program, or to a fixed-point one given a Quantization."""
    return _Lowering(graph, quantization).program()


class _Lowering:
    def __init__(self, graph: Graph, quantization):
        if len(graph.inputs()) != 1 or len(graph.outputs()) != 1:
            raise GraphError(f"a Program needs exactly one Input and one Output node; got "
                             f"inputs {graph.inputs()} and outputs {graph.outputs()}")
        self.graph = graph
        self.q = quantization
        if quantization is not None:
            missing = [n for n in graph.nodes if n not in quantization.scales
                       and _needs_scale(graph.nodes[n])]
            if missing:
                raise QuantizationError(f"quantization has no scale for {', '.join(missing)}; "
                                        "re-run quantize on this graph")

    # scales: see docs/fixed-point.md
    def out_scale(self, name: str) -> float | None:
        node = self.graph.nodes[name]
        if node.spiking:
            return None
        if isinstance(node, Output):
            return self.in_scale(name)
        return self.q.scales[name]

    def in_scale(self, name: str) -> float | None:
        node = self.graph.nodes[name]
        if isinstance(node, NEURONS):
            return self.q.scales[name]
        for src, _ in self.graph.predecessors(name):
            s = self.out_scale(src)
            if s is not None:
                return s
        return None

    def source(self, src: str, recurrent: bool, dst: str) -> Source:
        if self.q is None:
            return Source(src, recurrent)
        target, have = self.in_scale(dst), self.out_scale(src)
        if target is None or have == target:
            return Source(src, recurrent)
        if have is None:
            k = int(min(round(1.0 / target), fixed.INT32_MAX))
            return Source(src, recurrent, "spike", k=k)
        m, sh = fixed.quantize_multiplier(have / target)
        return Source(src, recurrent, "rescale", multiplier=int(m[0]), shift=int(sh[0]))

    def program(self) -> Program:
        g = self.graph
        ops = []
        for name in g.order:
            node = g.nodes[name]
            op = Op(name=name, kind=KIND[type(node)], size=node.out_size, spiking=node.spiking,
                    sources=[self.source(s, r, name) for s, r in g.predecessors(name)])
            if hasattr(node, "reset"):
                op.attrs["reset"] = node.reset
            if isinstance(node, SpikeEncoder):
                op.attrs["population"] = node.population
            op.state = {"lif": ("v",), "encoder": ("v",), "li": ("v",), "cuba_lif": ("v", "i"),
                        "adaptive_lif": ("v", "i", "trace", "thr")}.get(op.kind, ())
            if self.q is None:
                op.params = _float_params(node)
            else:
                op.params = self._fixed_params(name, node)
                if isinstance(node, CONNECTIONS):
                    op.cache.update(_matmul_cache(op.params["weight"]))
                if isinstance(node, AdaptiveLIF):
                    op.cache["threshold_weight_t64"] = op.params["threshold_weight"].T.astype(np.int64)
            ops.append(op)
        recurrent = tuple(dict.fromkeys(s for s, _ in g.recurrent))
        # Output last: the step's result is the last op's output
        out_name = g.outputs()[0]
        ops.sort(key=lambda op: op.name == out_name)
        numerics = FLOAT32 if self.q is None else FIXED
        return Program(numerics=numerics, ops=ops, input_size=g.nodes[g.inputs()[0]].size,
                       output_size=g.nodes[out_name].size,
                       input_scale=None if self.q is None else self.q.scales[g.inputs()[0]],
                       output_scale=None if self.q is None else self.out_scale(out_name),
                       recurrent_sources=recurrent)

    def _fixed_params(self, name: str, node) -> dict[str, np.ndarray]:
        if isinstance(node, CONNECTIONS):
            bias = node.bias if isinstance(node, Affine) else None
            return _quantize_weights(node.weight, bias, self.in_scale(name) or 1.0,
                                     self.out_scale(name))
        if isinstance(node, SpikeEncoder):
            params = _quantize_weights(node.weight[:, None], node.bias,
                                       self.in_scale(name) or 1.0, self.q.scales[name])
            params["weight"] = params["weight"][:, 0].copy()
            params.update(_neuron_params(node, self.q.scales[name]))
            return params
        if isinstance(node, AdaptiveLIF):
            # traces count spikes in a fixed Q15.16 format; W_θ maps them into the
            # neuron's scale like any connection (docs/fixed-point.md)
            params = _neuron_params(node, self.q.scales[name])
            params["trace_decay"] = fixed.quantize_decay(node.trace_decay)
            adapt = _quantize_weights(node.threshold_weight, None, 1.0 / fixed.TRACE_ONE,
                                      self.q.scales[name])
            params["threshold_weight"] = adapt["weight"]
            params["threshold_multiplier"], params["threshold_shift"] = (
                adapt["multiplier"], adapt["shift"])
            return params
        if isinstance(node, (LIF, CubaLIF, LI)):
            return _neuron_params(node, self.q.scales[name])
        if isinstance(node, Threshold):
            thr = np.round(node.threshold.astype(np.float64) / self.q.scales[name])
            return {"threshold": np.clip(thr, fixed.INT32_MIN, fixed.INT32_MAX).astype(np.int32)}
        return {}


def _matmul_cache(weight: np.ndarray) -> dict[str, np.ndarray | float]:
    """Host-side views of an int8 weight (…, out, in) for the integer matmul kernels."""
    wt = np.swapaxes(weight, -1, -2)
    return {"weight_t64": wt.astype(np.int64), "weight_t_f64": wt.astype(np.float64),
            "weight_bound": float(np.abs(wt.astype(np.int64)).sum(axis=-2).max())}


def _needs_scale(node) -> bool:
    return isinstance(node, (Input, SpikeEncoder) + NEURONS + CONNECTIONS)


def _float_params(node) -> dict[str, np.ndarray]:
    return dict(node.arrays())


def _quantize_weights(weight: np.ndarray, bias: np.ndarray | None, in_scale: float,
                      out_scale: float) -> dict[str, np.ndarray]:
    """int8 symmetric per-output-channel weights, int32 bias in the accumulator's scale,
    and the per-channel multiplier from accumulator scale to output scale."""
    w = weight.astype(np.float64)
    w_scale = np.abs(w).max(axis=1) / 127.0
    w_scale[w_scale == 0] = 1.0  # an all-zero row: any scale represents it exactly
    params = {"weight": np.clip(np.round(w / w_scale[:, None]), -127, 127).astype(np.int8)}
    acc_scale = w_scale * in_scale
    if bias is not None:
        b = np.round(bias.astype(np.float64) / acc_scale)
        params["bias"] = np.clip(b, fixed.INT32_MIN, fixed.INT32_MAX).astype(np.int32)
    params["multiplier"], params["shift"] = fixed.quantize_multiplier(acc_scale / out_scale)
    return params


def _neuron_params(node, scale: float) -> dict[str, np.ndarray]:
    params = {}
    if hasattr(node, "alpha"):
        params["alpha"] = fixed.quantize_decay(node.alpha)
    params["beta"] = fixed.quantize_decay(node.beta)
    if hasattr(node, "threshold"):
        thr = np.round(node.threshold.astype(np.float64) / scale)
        params["threshold"] = np.clip(thr, 1, fixed.INT32_MAX).astype(np.int32)
    return params

"""Fixed-point Program → C99: ``model.h`` / ``model.c`` beside the runtime headers.

The generated ``model_step`` calls one kernel of ``firmware/runtime`` per op, in the
Program's order, with the weights as ``const`` arrays (flash) and every persistent
buffer in ``model_state_t`` (RAM), in ``Program.state_layout()`` order. It reproduces
the numpy-int backend bit for bit (docs/fixed-point.md).

    model.h:  MODEL_INPUTS, MODEL_OUTPUTS, MODEL_NAME, MODEL_ID, model_state_t,
              model_reset(s), model_step(s, in, out), model_run(s, in, out, steps)

Choices. Op outputs live in static scratch buffers (one per op, ``Memory.scratch``):
the code is not reentrant, which an MCU loop does not need and the host backend
serialises. Inputs of a spiking source are accumulated event-driven (only the weight
columns of inputs that fired), so those weights are stored transposed. Every other
op reads its summed input as int64, exactly as the reference sums it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from edgesnn.compile import Program, compile_graph
from edgesnn.compile.program import Op, Source
from edgesnn.errors import BackendError
from edgesnn.modelfile import Model

RUNTIME_HEADERS = ("esnn_fixed.h", "esnn_affine.h", "esnn_lif.h", "esnn_cuba_lif.h", "esnn_li.h",
                   "esnn_encoder.h")
_C_TYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
           np.dtype(np.int32): "int32_t"}
_RESET = {"subtract": "ESNN_RESET_SUBTRACT", "zero": "ESNN_RESET_ZERO"}


def runtime_dir() -> Path:
    """The C runtime headers shipped with the package (firmware/runtime in the repo)."""
    return Path(str(files("edgesnn.firmware") / "runtime"))


@dataclass(frozen=True)
class CSource:
    header: str
    source: str
    model_id: int
    flash: int   # bytes of const data (weights, parameters, edge conversions)
    state: int   # bytes of model_state_t's buffers
    scratch: int  # bytes of op outputs and accumulators


def fixed_program(model: Model) -> Program:
    if model.quantization is None:
        raise BackendError("C export runs the integer path; this model is float-only — "
                           "quantize it first: edgesnn quantize MODEL --calib DATA --out MODEL_INT")
    return compile_graph(model.graph, model.quantization)


def generate(model: Model) -> CSource:
    """The C sources of a quantized model."""
    return _Generator(fixed_program(model), str(model.metadata.get("name", "model"))).emit()


def export_c(model: Model, out_dir: str | Path) -> dict:
    """Write model.h, model.c and the runtime headers to ``out_dir``; returns what was
    written (files, bytes of flash/state/scratch, the model id)."""
    return write_c(generate(model), out_dir)


def write_c(code: CSource, out_dir: str | Path) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.h").write_text(code.header)
    (out / "model.c").write_text(code.source)
    for name in RUNTIME_HEADERS:
        shutil.copyfile(runtime_dir() / name, out / name)
    return {"dir": str(out), "files": ["model.h", "model.c", *RUNTIME_HEADERS],
            "model_id": f"0x{code.model_id:08x}", "flash_bytes": code.flash,
            "state_bytes": code.state, "scratch_bytes": code.scratch}


def c_name(name: str, taken: set[str]) -> str:
    """A unique C identifier for an op or buffer name."""
    base = re.sub(r"\W", "_", name)
    base = base if re.match(r"[A-Za-z_]", base) else "n_" + base
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _array(name: str, values: np.ndarray, per_line: int = 16) -> str:
    flat = np.ascontiguousarray(values).ravel()
    ctype = _C_TYPE[flat.dtype]
    items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body}\n}};\n"


class _Generator:
    def __init__(self, program: Program, model_name: str):
        self.p = program
        self.model_name = model_name
        self.taken: set[str] = set()
        self.ops = {op.name: op for op in program.ops}
        self.var = {op.name: c_name(op.name, self.taken) for op in program.ops}
        self.data: list[str] = []      # const arrays
        self.buffers: list[str] = []   # static scratch
        self.body: list[str] = []      # model_step statements
        self.flash = 0
        self.scratch = 0
        field_names: set[str] = set()
        self.fields = {name: c_name(name, field_names) for name, _, _ in program.state_layout()}
        self.field_type = {name: _C_TYPE[np.dtype(d)] for name, _, d in program.state_layout()}
        self.max_in = max([1] + [self._input_width(op) for op in program.ops])
        self.max_acc = 1

    # -- helpers -------------------------------------------------------------------
    def const(self, op: Op, key: str, values: np.ndarray) -> str:
        name = f"{self.var[op.name]}_{key}"
        self.data.append(_array(name, values))
        self.flash += values.nbytes
        return name

    def value(self, name: str) -> tuple[str, str]:
        """(C expression, element type) of an op's output this step."""
        op = self.ops[name]
        if op.kind == "input":
            return "in", "int16_t"
        if op.kind == "output":
            return "out", "int32_t"
        return f"out_{self.var[name]}", "int8_t" if op.spiking else "int32_t"

    def source_value(self, src: Source) -> tuple[str, str]:
        if src.recurrent:
            field = src.name + ".prev"
            return f"s->{self.fields[field]}", self.field_type[field]
        return self.value(src.name)

    def _input_width(self, op: Op) -> int:
        if not op.sources:
            return 0
        return self.ops[op.sources[0].name].size

    def gather(self, op: Op) -> str:
        """Sum the op's sources into the int64 scratch ``in64`` (with each edge's
        conversion into the op's input scale)."""
        width = self._input_width(op)
        terms = []
        for src in op.sources:
            expr, _ = self.source_value(src)
            if src.conversion == "spike":
                terms.append(f"(int64_t){expr}[k] * {src.k}")
                self.flash += 4
            elif src.conversion == "rescale":
                terms.append(f"(int64_t)esnn_mul_q({expr}[k], {src.multiplier}, {src.shift})")
                self.flash += 5
            else:
                terms.append(f"(int64_t){expr}[k]")
        self.body.append(f"    for (uint32_t k = 0; k < {width}u; ++k)\n"
                         f"        in64[k] = {' + '.join(terms)};")
        return "in64"

    def direct(self, op: Op) -> tuple[str, str] | None:
        """The single unconverted source an op can read in place, if it has one."""
        if len(op.sources) == 1 and op.sources[0].conversion == "none":
            return self.source_value(op.sources[0])
        return None

    def out_buffer(self, op: Op) -> str:
        name, ctype = self.value(op.name)
        self.buffers.append(f"static {ctype} {name}[{op.size}];")
        self.scratch += op.size * (1 if op.spiking else 4)
        return name

    def state(self, op: Op, buf: str) -> str:
        return f"s->{self.fields[f'{op.name}.{buf}']}"

    # -- ops -------------------------------------------------------------------------
    def emit_op(self, op: Op) -> None:
        p = op.params
        self.body.append(f"    /* {op.name}: {op.kind} */")
        if op.kind in ("affine", "grouped"):
            self.affine(op)
            return
        if op.kind == "output":
            x = self.gather(op)
            self.body.append(f"    for (uint32_t k = 0; k < {op.size}u; ++k)\n"
                             f"        out[k] = esnn_sat32({x}[k]);")
            return
        x = self.gather(op)
        y = self.out_buffer(op)
        n = f"{op.size}u"
        reset = _RESET[op.attrs.get("reset", "subtract")]
        if op.kind == "lif":
            beta, thr = self.const(op, "beta", p["beta"]), self.const(op, "threshold", p["threshold"])
            self.body.append(f"    esnn_lif({beta}, {thr}, {reset}, {self.state(op, 'v')}, {x}, {y}, {n});")
        elif op.kind == "cuba_lif":
            alpha, beta = self.const(op, "alpha", p["alpha"]), self.const(op, "beta", p["beta"])
            thr = self.const(op, "threshold", p["threshold"])
            self.body.append(f"    esnn_cuba_lif({alpha}, {beta}, {thr}, {reset}, {self.state(op, 'v')}, "
                             f"{self.state(op, 'i')}, {x}, {y}, {n});")
        elif op.kind == "adaptive_lif":
            args = [self.const(op, k, p[k]) for k in ("alpha", "beta", "threshold", "trace_decay",
                                                       "threshold_weight", "threshold_multiplier",
                                                       "threshold_shift")]
            st = [self.state(op, b) for b in ("v", "i", "trace", "thr")]
            self.body.append(f"    esnn_adaptive_lif({', '.join(args)}, {reset}, {', '.join(st)}, "
                             f"{x}, {y}, {n});")
        elif op.kind == "li":
            beta = self.const(op, "beta", p["beta"])
            self.body.append(f"    esnn_li({beta}, {self.state(op, 'v')}, {x}, {y}, {n});")
        elif op.kind == "threshold":
            thr = self.const(op, "threshold", p["threshold"])
            self.body.append(f"    esnn_threshold({thr}, {x}, {y}, {n});")
        elif op.kind == "encoder":
            args = [self.const(op, k, p[k]) for k in ("weight", "bias", "multiplier", "shift",
                                                       "beta", "threshold")]
            pop = op.attrs["population"]
            self.body.append(f"    esnn_encoder({', '.join(args)}, {reset}, {self.state(op, 'v')}, "
                             f"{x}, {y}, {op.size // pop}u, {pop}u);")
        else:  # a kind the IR gained without a C kernel: refuse rather than emit garbage
            raise BackendError(f"no C kernel for op kind {op.kind!r} ({op.name})")

    def affine(self, op: Op) -> None:
        p = op.params
        w = p["weight"]
        out_w, in_w = w.shape
        groups = op.size // out_w
        y = self.out_buffer(op)
        bias = self.const(op, "bias", p["bias"]) if "bias" in p else "NULL"
        m, sh = self.const(op, "multiplier", p["multiplier"]), self.const(op, "shift", p["shift"])
        source = self.direct(op)
        # a grouped op runs the same block on each slice g of its input and output
        at = (lambda buf, width: f"{buf} + g * {width}u") if groups > 1 else (lambda buf, width: buf)
        if source is not None and source[1] == "int8_t":
            wt = self.const(op, "weight_t", w.T)  # event-driven: columns per input
            self.max_acc = max(self.max_acc, out_w)
            call = (f"esnn_affine_spikes({wt}, {bias}, {m}, {sh}, {at(source[0], in_w)}, acc64, "
                    f"{at(y, out_w)}, {in_w}u, {out_w}u);")
        else:
            x, ctype = source if source is not None else (self.gather(op), "int64_t")
            suffix = {"int16_t": "i16", "int32_t": "i32", "int64_t": "i64"}[ctype]
            wn = self.const(op, "weight", w)
            call = (f"esnn_affine_{suffix}({wn}, {bias}, {m}, {sh}, {at(x, in_w)}, {at(y, out_w)}, "
                    f"{in_w}u, {out_w}u);")
        if groups > 1:
            self.body.append(f"    for (uint32_t g = 0; g < {groups}u; ++g)\n        {call}")
        else:
            self.body.append(f"    {call}")

    # -- files -----------------------------------------------------------------------
    def emit(self) -> CSource:
        for op in self.p.ops:
            if op.kind != "input":
                self.emit_op(op)
        for name in self.p.recurrent_sources:
            expr, _ = self.value(name)
            field = name + ".prev"
            self.body.append(f"    for (uint32_t k = 0; k < {self.ops[name].size}u; ++k)\n"
                             f"        s->{self.fields[field]}[k] = ({self.field_type[field]}){expr}[k];")
        self.scratch += 8 * (self.max_in + self.max_acc)
        source = self._source()
        model_id = int.from_bytes(hashlib.sha256(source.encode()).digest()[:4], "little")
        state = sum(w * np.dtype(d).itemsize for _, w, d in self.p.state_layout())
        return CSource(self._header(model_id), source, model_id, self.flash, state, self.scratch)

    def _header(self, model_id: int) -> str:
        fields = [f"    {_C_TYPE[np.dtype(d)]} {self.fields[n]}[{w}];  /* {n} */"
                  for n, w, d in self.p.state_layout()] or ["    int32_t unused;  /* stateless model */"]
        name = self.model_name.replace("\\", "\\\\").replace('"', '\\"')
        return f"""/* Generated by edgesnn: do not edit. */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_INPUTS {self.p.input_size}u
#define MODEL_OUTPUTS {self.p.output_size}u
#define MODEL_NAME "{name}"
#define MODEL_ID 0x{model_id:08x}u
#define MODEL_STATE_BUFFERS {len(self.p.state_layout())}u

/* Persistent state, one per stream: the buffers of Program.state_layout(), in order. */
typedef struct {{
{chr(10).join(fields)}
}} model_state_t;

/* Byte offset of each state buffer in model_state_t (hosts read the state with it). */
extern const uint32_t model_state_offsets[];

void model_reset(model_state_t *s);
/* One step: MODEL_INPUTS int16 inputs (in the input scale) -> MODEL_OUTPUTS int32 outputs. */
void model_step(model_state_t *s, const int16_t *in, int32_t *out);
/* steps consecutive steps; in and out hold steps rows of inputs and outputs. */
void model_run(model_state_t *s, const int16_t *in, int32_t *out, uint32_t steps);

#endif
"""

    def _source(self) -> str:
        offsets = ", ".join(f"offsetof(model_state_t, {self.fields[n]})"
                            for n, _, _ in self.p.state_layout()) or "0"
        includes = "\n".join(f'#include "{h}"' for h in RUNTIME_HEADERS)
        return f"""/* Generated by edgesnn from "{self.model_name}": do not edit.
 * Flash (const data): {self.flash} bytes; state: model_state_t; scratch: {self.scratch} bytes. */
#include <stddef.h>
#include <string.h>

#include "model.h"
{includes}

{''.join(self.data)}
/* op outputs of the current step and the summed-input / accumulator scratch */
{chr(10).join(self.buffers)}
static int64_t in64[{self.max_in}];
static int64_t acc64[{self.max_acc}];

const uint32_t model_state_offsets[] = {{{offsets}}};

void model_reset(model_state_t *s)
{{
    memset(s, 0, sizeof *s);
}}

void model_step(model_state_t *s, const int16_t *in, int32_t *out)
{{
    (void)in64;
    (void)acc64;
    (void)s;
    (void)in;
{chr(10).join(self.body)}
}}

void model_run(model_state_t *s, const int16_t *in, int32_t *out, uint32_t steps)
{{
    for (uint32_t t = 0; t < steps; ++t)
        model_step(s, in + (size_t)t * MODEL_INPUTS, out + (size_t)t * MODEL_OUTPUTS);
}}
"""

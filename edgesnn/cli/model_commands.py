"""info, run, quantize, bench: commands that work on any edgesnn model file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgesnn.backends import BACKENDS
from edgesnn.compile import compile_graph
from edgesnn.io import check_writable, load_sequences, save_sequences
from edgesnn.modelfile import FORMAT_VERSION, Model, load_model, save
from edgesnn.models.reference import REFERENCE_MODEL


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a model's nodes, I/O, memory and quantization error",
                       description="Print what a model file holds: metadata, I/O sizes, nodes in "
                                   "execution order, flash/RAM bytes per number system, and the "
                                   "measured float-vs-fixed output error.")
    p.add_argument("model", type=Path, help="model file (.esnn), or an exported .onnx / .tflite")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run a model over input sequences",
                       description="Run each input sequence from a fresh state and write the "
                                   "output sequences. Input: .npz with array 'x' shaped "
                                   "(T, features) or (N, T, features), or a .csv with one row "
                                   "per step. Output: .npz (array 'y') or .csv.")
    p.add_argument("model", type=Path)
    p.add_argument("--input", "-i", type=Path, required=True, help="input .npz or .csv")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .npz or .csv")
    p.add_argument("--backend", "-b", default="numpy-float", help=_backend_help())
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("quantize", help="post-training quantization with calibration data",
                       description="Choose fixed-point scales from the float model's value "
                                   "ranges on a few calibration sequences, measure the output "
                                   "error of the fixed-point model on them, and write a model "
                                   "that runs on the integer backends.")
    p.add_argument("model", type=Path)
    p.add_argument("--calib", "-c", type=Path, required=True,
                   help="calibration sequences: .npz ('x': (N, T, features)) or .csv")
    p.add_argument("--out", "-o", type=Path, required=True, help="quantized model file to write")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("bench", help="per-step latency on each backend, beside snnTorch",
                       description="Time single steps (batch 1) on each backend and, when "
                                   "snnTorch is installed (extra 'bench'), the same network "
                                   "built from nn.Linear + snn.Leaky. Prints median and p99 "
                                   "latency, throughput and the speed-up over snnTorch.")
    p.add_argument("model", type=Path, nargs="?", default=None,
                   help="model file (default: the shipped 64-128-10 LIF reference network)")
    p.add_argument("--backend", "-b", action="append", dest="backends",
                   help="backend to time (repeatable; default: every numpy backend the model "
                        "supports)")
    p.add_argument("--steps", "-n", type=_positive, default=5000, help="timed steps (5000)")
    p.add_argument("--warmup", type=_positive, default=200, help="untimed steps first (200)")
    p.add_argument("--no-snntorch", dest="snntorch", action="store_false",
                   help="skip the snnTorch comparison")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(func=cmd_bench)



def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _backend_help() -> str:
    return "; ".join(f"{name}: {desc}" for name, (_, _, desc) in BACKENDS.items())


# ------------------------------------------------------------------------------ info

def describe(model: Model, path: Path | None = None) -> dict:
    g = model.graph
    memory = {"float32": compile_graph(g).memory()}
    if model.quantization is not None:
        memory["fixed"] = compile_graph(g, model.quantization).memory()
    q = model.quantization
    return {
        "file": None if path is None else {"path": str(path), "bytes": path.stat().st_size,
                                           "format_version": FORMAT_VERSION},
        "metadata": model.metadata,
        "dt": g.dt,
        "input": g.nodes[g.inputs()[0]].size,
        "output": g.nodes[g.outputs()[0]].size,
        "output_spiking": any(g.nodes[s].spiking for s, _ in g.predecessors(g.outputs()[0])),
        "nodes": g.describe(),
        "edges": [list(e) for e in g.edges],
        "recurrent": [list(e) for e in g.recurrent],
        "memory": {k: {"flash": m.flash, "ram": m.ram, "state": m.state, "scratch": m.scratch}
                   for k, m in memory.items()},
        "quantization": None if q is None else {"calibration": q.calibration, "error": q.error},
    }


def format_info(info: dict) -> str:
    meta = info["metadata"]
    lines = []
    title = meta.get("name", "(unnamed model)")
    if meta.get("task"):
        title += f" — {meta['task']}"
    lines.append(f"model    {title}")
    if info["file"]:
        f = info["file"]
        lines.append(f"file     {f['path']} ({f['bytes']:,} bytes, format v{f['format_version']}, "
                     "checksum ok)")
    lines.append(f"dt       {info['dt'] * 1e3:g} ms per step" if info["dt"] else "dt       not set")
    chans = f"  [{', '.join(map(str, meta['channels']))}]" if meta.get("channels") else ""
    lines.append(f"input    {info['input']} features{chans}")
    kind = "spikes" if info["output_spiking"] else "values"
    classes = f"  [{', '.join(map(str, meta['classes']))}]" if meta.get("classes") else ""
    lines.append(f"output   {info['output']} {kind}{classes}")
    lines.append("")
    lines.append(f"  {'node':<16}{'type':<14}{'in':>6}{'out':>6}{'params':>9}")
    for row in info["nodes"]:
        lines.append(f"  {row['name']:<16}{row['type']:<14}{row['in']:>6}{row['out']:>6}"
                     f"{row['params']:>9,}")
    for src, dst in info["recurrent"]:
        lines.append(f"  recurrent edge {src} -> {dst} (reads the previous step)")
    lines.append("")
    for kind, m in info["memory"].items():
        lines.append(f"memory   {kind:<8} flash {m['flash']:>9,} B   RAM {m['ram']:>8,} B "
                     f"(state {m['state']:,} + scratch {m['scratch']:,}) per sample")
    q = info["quantization"]
    if q is None:
        lines.append("quant    none (float only; run 'edgesnn quantize' for the integer backends)")
    else:
        e, c = q["error"], q["calibration"]
        lines.append(f"quant    int8 weights, int32 state; calibrated on {c['sequences']} "
                     f"sequences ({c['steps']} steps)")
        lines.append(f"         fixed vs float output error per step: mean |Δ| "
                     f"{e['output_mean_abs_error']:.4g} (per sequence "
                     f"{e['sequence_mean_abs_error_min']:.4g}–{e['sequence_mean_abs_error_max']:.4g})"
                     f", max |Δ| {e['output_max_abs_error']:.4g}, float output peak "
                     f"{e['output_peak']:.4g}")
        lines.append("         (measured on the calibration data; expect about ±25 % on other "
                     "data of the same kind)")
    return "\n".join(lines)


def cmd_info(args) -> int:
    if args.model.suffix.lower() in (".onnx", ".tflite"):
        from edgesnn.cli.export_commands import format_graph_file
        if args.model.suffix.lower() == ".onnx":
            from edgesnn.export.onnx import describe_onnx as describe_file
        else:
            from edgesnn.export.tflite import describe_tflite as describe_file

        info = describe_file(args.model)
        print(json.dumps(info, indent=2, default=str) if args.json else format_graph_file(info))
        return 0
    model = load_model(args.model)
    info = describe(model, args.model)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


# ------------------------------------------------------------------------------- run

def run_sequences(model: Model, backend: str, xs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """All sequences at once (batched), from a fresh state, with a progress bar over time."""
    from tqdm.auto import tqdm

    from edgesnn.runtime import Runtime

    rt = Runtime(model, backend)
    batched = rt.executor.check_input(xs if xs.ndim == 3 else xs[None], time_axis=True)
    steps = batched.shape[1]
    parts = []
    with tqdm(total=steps, desc=f"running ({backend})", unit="step", disable=steps < 4 * chunk,
              leave=False) as bar:
        for t in range(0, steps, chunk):
            parts.append(rt.run(batched[:, t:t + chunk]))
            bar.update(min(chunk, steps - t))
    ys = np.concatenate(parts, axis=1)
    return ys if xs.ndim == 3 else ys[0]


def cmd_run(args) -> int:
    model = load_model(args.model)
    xs = load_sequences(args.input)
    check_writable(args.output)
    ys = run_sequences(model, args.backend, xs)
    save_sequences(args.output, ys)
    n = 1 if xs.ndim == 2 else xs.shape[0]
    print(f"ran {n} sequence(s) of {xs.shape[-2]} steps on {args.backend}: "
          f"{xs.shape} -> {ys.shape}, wrote {args.output}")
    return 0


# -------------------------------------------------------------------------- quantize

def cmd_quantize(args) -> int:
    import edgesnn

    model = load_model(args.model)
    calib = load_sequences(args.calib)
    check_writable(args.out)
    quantized = edgesnn.quantize(model, calib, progress=True)
    size = save(quantized, args.out)
    info = describe(quantized)
    mem_f, mem_q = info["memory"]["float32"], info["memory"]["fixed"]
    e = quantized.quantization.error
    print(f"wrote {args.out} ({size:,} bytes)")
    print(f"flash {mem_f['flash']:,} B -> {mem_q['flash']:,} B; RAM {mem_f['ram']:,} B -> "
          f"{mem_q['ram']:,} B per sample")
    print(f"fixed vs float on the calibration data: mean |Δ| {e['output_mean_abs_error']:.4g}, "
          f"max |Δ| {e['output_max_abs_error']:.4g} (float output peak {e['output_peak']:.4g})")
    return 0


# ----------------------------------------------------------------------------- bench

def cmd_bench(args) -> int:
    from edgesnn.bench import bench_model, format_table, rows_as_dicts

    path = args.model or REFERENCE_MODEL
    model = load_model(path)
    backends = args.backends or [b for b in ("numpy-float", "numpy-int")
                                 if b == "numpy-float" or model.quantization is not None]
    for b in backends:  # fail fast on a typo, before minutes of timing
        if b not in BACKENDS:
            from edgesnn.backends import get_backend
            get_backend(b)
    rows = bench_model(model, backends, steps=args.steps, warmup=args.warmup,
                       compare_snntorch=args.snntorch, progress=not args.json)
    if args.json:
        print(json.dumps({"model": str(path), "steps": args.steps, "rows": rows_as_dicts(rows)},
                         indent=2))
    else:
        print(f"{model.metadata.get('name', path)}: {args.steps} steps, batch 1, per-step latency")
        print(format_table(rows))
    return 0

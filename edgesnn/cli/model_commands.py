"""info, run, quantize, bench, demo: commands that work on any edgesnn model file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgesnn.backends import BACKENDS
from edgesnn.compile import compile_graph
from edgesnn.io import check_writable, load_sequences, save_sequences
from edgesnn.modelfile import FORMAT_VERSION, Model, load_model, save
from edgesnn.models.reference import (
    L2MU_DEMO_MODEL,
    REFERENCE_INPUT,
    REFERENCE_MODEL,
    VPR_DEMO_MODEL,
    VPR_DEMO_ROUTE,
)


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

    p = sub.add_parser("demo", help="run the shipped models end to end",
                       description="1) The shipped reference network (64 inputs, 128 LIF, 10 "
                                   "LIF outputs, random weights, int8): run the shipped input "
                                   "on the float and fixed-point backends, compare, benchmark "
                                   "beside snnTorch. 2) The shipped L2MU (trained on synthetic "
                                   "IMU data): classify a new synthetic sensor stream sample by "
                                   "sample on the integer backend. 3) The shipped place-"
                                   "recognition ensemble: recognise its synthetic route under "
                                   "dusk, snow and night, beside SAD.")
    p.add_argument("--steps", "-n", type=_positive, default=2000, help="benchmark steps (2000)")
    p.set_defaults(func=cmd_demo)


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


# ------------------------------------------------------------------------------ demo

def cmd_demo(args) -> int:
    from edgesnn.bench import bench_model, format_table

    model = load_model(REFERENCE_MODEL)
    print(format_info(describe(model, REFERENCE_MODEL)))
    xs = load_sequences(REFERENCE_INPUT)
    print(f"\nrunning the shipped input: {xs.shape[0]} sequences × {xs.shape[1]} steps")
    yf = run_sequences(model, "numpy-float", xs)
    yq = run_sequences(model, "numpy-int", xs)
    print(f"  output spikes  numpy-float {int(yf.sum()):,}   numpy-int {int(yq.sum()):,}   "
          f"steps where they differ: {np.mean(np.any(yf != yq, axis=-1)) * 100:.1f} %")
    rates = yf.mean(axis=(0, 1))
    print("  firing rate per output (float): " + " ".join(f"{r:.2f}" for r in rates))
    print(f"\nper-step latency, batch 1, {args.steps} steps:")
    print(format_table(bench_model(model, ["numpy-float", "numpy-int"], steps=args.steps,
                                   progress=True)))
    demo_activity_stream()
    demo_place_recognition()
    return 0


def demo_activity_stream(subjects: int = 3, seed: int = 2024) -> None:
    """Stream unseen synthetic subjects through the shipped L2MU, one sample at a time."""
    from edgesnn.classify import StreamingClassifier
    from edgesnn.data import har
    from edgesnn.runtime import Runtime

    model = load_model(L2MU_DEMO_MODEL)
    print(f"\n{model.metadata['name']}: L2MU trained on synthetic IMU data "
          f"({', '.join(model.metadata['classes'])})")
    ds = har.synthetic(n_subjects=subjects, windows_per_class=2 * subjects, seed=seed)
    steps = ds.x.shape[1]
    stream = StreamingClassifier(Runtime(model, "numpy-int"), hop=steps,
                                 reset_each_decision=True)
    correct = 0
    for i, window in enumerate(ds.x):
        for sample in window:
            decision = stream.push(sample)
        correct += decision.label == ds.y[i]
        if i % max(1, len(ds.x) // 6) == 0:
            print(f"  window {i:>3}: true {ds.classes[ds.y[i]]:<9} → {decision.name:<9} "
                  f"(confidence {decision.confidence:.2f})")
    print(f"  streamed {len(ds.x) * steps} samples on numpy-int, a decision every {steps}: "
          f"{correct}/{len(ds.x)} windows correct ({correct / len(ds.x):.1%})")


def demo_place_recognition() -> None:
    """Recognise every place of the shipped ensemble's synthetic route under each query
    condition, beside the SAD baseline."""
    from edgesnn.backends import get_backend
    from edgesnn.models.vpr import metrics, synthetic
    from edgesnn.models.vpr.ensemble import place_metadata, similarity

    model = load_model(VPR_DEMO_MODEL)
    layout, pre = place_metadata(model)
    meta = model.metadata
    places, seed = VPR_DEMO_ROUTE["places"], VPR_DEMO_ROUTE["seed"]
    print(f"\n{meta['name']}: {layout.systems} systems x {meta['modules_per_system']} modules x "
          f"{layout.views} views of {layout.places} places, synthetic route (seed {seed})")
    world = synthetic.make_world(places, seed)
    reference = synthetic.reference_traverses(world, seed, pre)
    program = get_backend("numpy-int")(model)
    gt = metrics.ground_truth(places, places)
    print(f"  {'queries':<9}{'R@1 ensemble (numpy-int)':>26}{'R@1 SAD':>10}")
    for k, condition in enumerate(synthetic.QUERY_CONDITIONS):
        queries = pre(synthetic.render(world, condition,
                                       seed=synthetic.traverse_seed(seed, "query", k)))
        ours = metrics.recall_at_n(similarity(program, queries, layout), gt, (1,))[1]
        sad = metrics.recall_at_n(metrics.sad_similarity(queries, reference), gt, (1,))[1]
        print(f"  {condition:<9}{ours:>26.3f}{sad:>10.3f}")

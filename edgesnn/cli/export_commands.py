"""``edgesnn export``: a model file to the formats other runtimes load."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

TARGETS = ("c", "onnx", "tflite", "nir")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model for another runtime (C for MCUs, ONNX)",
                       description="c: a directory with model.h/model.c (weights as const "
                                   "arrays in flash, state in a model_state_t in RAM, "
                                   "model_step(state, in, out)) and the C99 fixed-point runtime "
                                   "headers it includes; needs a quantized model. onnx: one step "
                                   "as an ONNX graph whose state tensors are explicit inputs and "
                                   "outputs (<buffer> in, <buffer>:next out); float32, or with "
                                   "--quantized the integer form, bit-exact with numpy-int. tflite: "
                                   "the same step as a .tflite flatbuffer (builtin ops, batch 1) "
                                   "for LiteRT and TFLite Micro; --quantized gives the exact "
                                   "integer form built from int32 ops, bit-exact with numpy-int "
                                   "on both. nir: "
                                   "the float graph in the Neuromorphic Intermediate "
                                   "Representation (continuous-time parameters from the model's "
                                   "dt, forward Euler; see docs/nir.md).")
    p.add_argument("model", type=Path, help="model file (.esnn)")
    p.add_argument("--target", "-t", choices=TARGETS, default="c", help="output format (c)")
    p.add_argument("--out", "-o", type=Path, required=True,
                   help="directory (c) or file (onnx, tflite, nir) to write")
    p.add_argument("--quantized", "-q", action="store_true",
                   help="onnx, tflite: the integer form (needs a quantized model)")
    p.add_argument("--sequence", action="store_true",
                   help="onnx: a whole sequence (a Scan over the step: xs (T, batch, features) "
                        "and the initial state in, ys and the final state out)")
    p.add_argument("--dt", type=float,
                   help="nir: seconds per step, for a model that does not state its dt")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="read a NIR graph into an edgesnn model file",
                       description="Convert a NIR file (e.g. from snnTorch, Norse, Rockpool, "
                                   "Sinabs) to an edgesnn model: continuous-time parameters to "
                                   "per-step decays with dt (forward Euler, as snnTorch's NIR "
                                   "import), recurrent edges with a one-step delay. Then "
                                   "quantize it for the integer backends and export.")
    p.add_argument("source", type=Path, help="NIR file (.nir, HDF5)")
    p.add_argument("--out", "-o", type=Path, required=True, help="model file to write (.esnn)")
    p.add_argument("--dt", type=float,
                   help="seconds per step (default: the file's dt; snnTorch files need 1e-4)")
    p.add_argument("--reset", choices=("subtract",),
                   help="read NIR LIF/IF/CubaLIF as resetting by subtraction (snnTorch's default); "
                        "without it such nodes are refused, NIR's reset having no exact edgesnn form")
    p.set_defaults(func=cmd_import)


def cmd_export(args) -> int:
    from edgesnn.modelfile import load_model

    model = load_model(args.model)
    if args.target == "c":
        from edgesnn.export.c import export_c

        info = export_c(model, args.out)
        print(f"wrote {', '.join(info['files'])} to {info['dir']} (model id {info['model_id']})")
        print(f"flash {info['flash_bytes']:,} B (weights and parameters), RAM "
              f"{info['state_bytes']:,} B state + {info['scratch_bytes']:,} B scratch")
        return 0
    if args.target == "nir":
        from edgesnn.export.nir import export_nir

        if args.dt is not None:  # replace, so the graph checks the value
            model = dataclasses.replace(model, graph=dataclasses.replace(model.graph, dt=args.dt))
        info = export_nir(model, args.out)
        print(f"wrote {info['path']} ({info['bytes']:,} bytes): {info['nodes']} NIR nodes "
              f"({', '.join(f'{k} x{v}' for k, v in info['node_types'].items())}), dt "
              f"{info['dt']:g} s, {info['discretization']}")
        if info["quantization_dropped"]:
            print("note: NIR holds the float model; the quantization was not written")
        if info["delays_from_metadata"]:
            print("note: recurrent edges whose one-step delay other NIR readers may place "
                  f"elsewhere (kept in edgesnn's metadata): {info['delays_from_metadata']}")
        return 0
    if args.target == "tflite":
        from edgesnn.export.tflite import export_tflite

        print(format_graph_file(export_tflite(model, args.out, quantized=args.quantized)))
        return 0
    from edgesnn.export.onnx import export_onnx

    print(format_graph_file(export_onnx(model, args.out, quantized=args.quantized,
                                        sequence=args.sequence)))
    return 0


def cmd_import(args) -> int:
    from edgesnn.export.nir import import_nir
    from edgesnn.modelfile import save

    model = import_nir(args.source, dt=args.dt, reset=args.reset)
    size = save(model, args.out)
    nodes = ", ".join(f"{n}: {type(v).__name__}" for n, v in model.graph.nodes.items())
    print(f"wrote {args.out} ({size:,} bytes), dt {model.graph.dt:g} s: {nodes}")
    return 0


def format_graph_file(info: dict) -> str:
    """A short description of an exported graph file: form, bytes, ops, I/O tensors."""
    lines = [f"{info['path']}: {info['bytes']:,} bytes" + (f", {info['form']} form" if "form" in info
                                                           else "")
             + (f", opset {info['opset']}" if info.get("opset") else "")]
    lines.append("ops: " + ", ".join(f"{k} x{v}" for k, v in info["ops"].items()))
    for kind in ("inputs", "outputs"):
        lines.append(f"{kind}:")
        lines += [f"  {t['name']:<24} {t['type']:<8} {t['shape']}" for t in info[kind]]
    return "\n".join(lines)

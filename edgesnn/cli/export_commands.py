"""``edgesnn export``: a model file to the formats other runtimes load."""

from __future__ import annotations

import argparse
from pathlib import Path

TARGETS = ("c", "onnx")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model for another runtime (C for MCUs, ONNX)",
                       description="c: a directory with model.h/model.c (weights as const "
                                   "arrays in flash, state in a model_state_t in RAM, "
                                   "model_step(state, in, out)) and the C99 fixed-point runtime "
                                   "headers it includes; needs a quantized model. onnx: one step "
                                   "as an ONNX graph whose state tensors are explicit inputs and "
                                   "outputs (<buffer> in, <buffer>:next out); float32, or with "
                                   "--quantized the integer form, bit-exact with numpy-int.")
    p.add_argument("model", type=Path, help="model file (.esnn)")
    p.add_argument("--target", "-t", choices=TARGETS, default="c", help="output format (c)")
    p.add_argument("--out", "-o", type=Path, required=True,
                   help="directory (c) or file (onnx) to write")
    p.add_argument("--quantized", "-q", action="store_true",
                   help="onnx: the integer form (needs a quantized model)")
    p.add_argument("--sequence", action="store_true",
                   help="onnx: a whole sequence (a Scan over the step: xs (T, batch, features) "
                        "and the initial state in, ys and the final state out)")
    p.set_defaults(func=cmd_export)


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
    from edgesnn.export.onnx import export_onnx

    print(format_graph_file(export_onnx(model, args.out, quantized=args.quantized,
                                        sequence=args.sequence)))
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

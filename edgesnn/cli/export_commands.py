"""``edgesnn export``: a model file to the formats other runtimes load."""

from __future__ import annotations

import argparse
from pathlib import Path

TARGETS = ("c",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model for another runtime (C for MCUs)",
                       description="c: a directory with model.h/model.c (weights as const "
                                   "arrays in flash, state in a model_state_t in RAM, "
                                   "model_step(state, in, out)) and the C99 fixed-point runtime "
                                   "headers it includes. Needs a quantized model. Build it into "
                                   "firmware or with: cc -std=c99 -O2 -c DIR/model.c")
    p.add_argument("model", type=Path, help="model file (.esnn), quantized")
    p.add_argument("--target", "-t", choices=TARGETS, default="c", help="output format (c)")
    p.add_argument("--out", "-o", type=Path, required=True, help="directory to write")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from edgesnn.export.c import export_c
    from edgesnn.modelfile import load_model

    info = export_c(load_model(args.model), args.out)
    print(f"wrote {', '.join(info['files'])} to {info['dir']} (model id {info['model_id']})")
    print(f"flash {info['flash_bytes']:,} B (weights and parameters), RAM {info['state_bytes']:,} B "
          f"state + {info['scratch_bytes']:,} B scratch")
    return 0

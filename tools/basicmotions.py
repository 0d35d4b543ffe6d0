"""Train and evaluate L2MU on the real BasicMotions smartwatch data over several seeds.

    python tools/basicmotions.py --data ../shared/data/har_basicmotions [--seeds 0 1 2]

Trains on train.npz (20 % of it held out for early stopping), reports test.npz for the
float and int8 backends per seed, then the mean and spread, and the per-window latency
of numpy-float, numpy-int and PyTorch (one sample at a time) for the first model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgesnn.cli import main as edgesnn_main
from edgesnn.cli.har_commands import evaluate, format_rows
from edgesnn.data import har
from edgesnn.modelfile import load_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/test.npz")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", type=Path, help="folder to keep the trained models in")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if not (args.data / "train.npz").is_file():
        print(f"no BasicMotions data at {args.data} (train.npz missing)", file=sys.stderr)
        return 1
    test = har.load_npz(args.data / "test.npz")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="basicmotions-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        out = folder / f"l2mu-basicmotions-seed{seed}.esnn"
        code = edgesnn_main(["train", "l2mu", "--data", str(args.data / "train.npz"),
                             "--test-fraction", "0", "--seed", str(seed), "--out", str(out)])
        if code:
            return code
        rows = evaluate(load_model(out), test, ["numpy-float", "numpy-int"],
                        latency=seed == args.seeds[0])
        if seed == args.seeds[0]:
            print(format_rows(rows, test.classes))
        acc = {r["backend"]: r for r in rows if "accuracy" in r}
        results.append({"seed": seed, **{f"{b}_{k}": acc[b][k] for b in acc
                                         for k in ("accuracy", "macro_f1")},
                        "latency_ms": {r["backend"]: r["window_ms"] for r in rows
                                       if "window_ms" in r} or None})
    print(f"\n{'seed':>5}{'float acc':>11}{'int8 acc':>10}{'float F1':>10}{'int8 F1':>9}")
    for r in results:
        print(f"{r['seed']:>5}{r['numpy-float_accuracy']:>11.3f}{r['numpy-int_accuracy']:>10.3f}"
              f"{r['numpy-float_macro_f1']:>10.3f}{r['numpy-int_macro_f1']:>9.3f}")
    fa = np.array([r["numpy-float_accuracy"] for r in results])
    ia = np.array([r["numpy-int_accuracy"] for r in results])
    print(f"float: mean {fa.mean() * 100:.1f} %, spread {(fa.max() - fa.min()) * 100:.1f} points;"
          f" int8: mean {ia.mean() * 100:.1f} % ({(ia.mean() - fa.mean()) * 100:+.1f} points)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"models in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""train l2mu, eval: activity recognition from IMU windows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgesnn.cli.model_commands import _positive
from edgesnn.errors import DataError, EdgesnnError
from edgesnn.io import check_writable
from edgesnn.modelfile import Model, load_model, save


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model family on data",
                       description="Train a model and write an edgesnn model file.")
    families = p.add_subparsers(dest="family", metavar="FAMILY", required=True)
    t = families.add_parser(
        "l2mu", help="L2MU activity recognition from IMU windows (extra 'train')",
        description="Train an L2MU (a Legendre Memory Unit built from spiking populations) on "
                    "windowed sensor data with BPTT and an arctan surrogate gradient, pick the "
                    "epoch with the lowest validation loss, quantize it to int8 with calibration "
                    "windows from the training split, and write the model. DATA is 'synthetic', "
                    "an .npz/.csv in the documented layout, or a folder of raw WISDM files.")
    t.add_argument("--data", "-d", required=True, help="training data (see above)")
    t.add_argument("--val-data", help="separate validation data (default: split --data)")
    t.add_argument("--val-fraction", type=float, default=0.2, help="validation share (0.2)")
    t.add_argument("--test-fraction", type=float, default=None,
                   help="test share held out of --data (default 0.2, or 0 with --val-data)")
    t.add_argument("--split-by", choices=("auto", "subject", "random"), default="auto",
                   help="auto: whole subjects per split when subjects are known (no leakage)")
    t.add_argument("--out", "-o", type=Path, required=True, help="model file to write")
    g = t.add_argument_group("network")
    g.add_argument("--variant", choices=("leaky", "synaptic"), default="leaky",
                   help="LIF (leaky) or CuBa-LIF (synaptic) populations")
    g.add_argument("--readout", choices=("li", "lif"), default="li",
                   help="li: mean leaky-integrator membrane (robust); lif: mean spike rate")
    g.add_argument("--order", type=_positive, default=4, help="Legendre order d (4)")
    g.add_argument("--theta", type=float, default=16.0, help="memory window in steps (16)")
    g.add_argument("--memory", type=_positive, default=16, help="memory size (16)")
    g.add_argument("--hidden", type=_positive, default=64, help="hidden neurons (64)")
    g.add_argument("--population", type=_positive, default=8, help="encoder neurons/channel (8)")
    g.add_argument("--beta", type=float, default=0.8, help="membrane decay β (0.8)")
    g.add_argument("--threshold", type=float, default=0.5, help="threshold ϑ (0.5)")
    o = t.add_argument_group("optimisation")
    o.add_argument("--epochs", type=_positive, default=150, help="maximum epochs (150)")
    o.add_argument("--lr", type=float, default=3e-4,
                   help="Adam learning rate of the spiking layers (3e-4)")
    o.add_argument("--readout-lr", type=float, default=1e-2,
                   help="Adam learning rate of the readout (1e-2)")
    o.add_argument("--batch-size", type=_positive, default=32, help="(32)")
    o.add_argument("--patience", type=_positive, default=40,
                   help="stop after this many epochs without a better validation loss (40)")
    o.add_argument("--learn-beta", action="store_true", help="train the decays too")
    o.add_argument("--learn-threshold", action="store_true", help="train the thresholds too")
    o.add_argument("--full-bptt", action="store_true",
                   help="also backpropagate through the recurrent spike edges (can explode)")
    o.add_argument("--seed", type=int, default=0, help="seed for splits, init and batches (0)")
    t.add_argument("--calib-windows", type=int, default=16,
                   help="training windows used to calibrate int8 quantization (16; 0 = none)")
    t.set_defaults(func=cmd_train_l2mu)

    p = sub.add_parser(
        "eval", help="accuracy, macro-F1, confusion matrix, memory and ops per window",
        description="Classify every window of DATA on each backend (float and fixed point side "
                    "by side) and print accuracy, macro-F1, the confusion matrix, flash/RAM "
                    "bytes and synaptic operations per window. --latency adds per-window "
                    "latency, stepping one sample at a time, beside PyTorch for L2MU models.")
    p.add_argument("model", type=Path)
    p.add_argument("--data", "-d", required=True, help="'synthetic', .npz, .csv or WISDM folder")
    p.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                   help="part of DATA to evaluate, split as at training time (all)")
    p.add_argument("--backend", "-b", action="append", dest="backends",
                   help="repeatable (default: numpy-float and, if quantized, numpy-int)")
    p.add_argument("--plot", type=Path, help="write the confusion matrices as a PNG")
    p.add_argument("--latency", action="store_true", help="also time windows per backend")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------------------- train

def _split_spec(args) -> dict:
    """Keyword arguments of HarDataset.split, stored in the model so eval can redo it."""
    test = args.test_fraction if args.test_fraction is not None else (0.0 if args.val_data else 0.2)
    return {"val": 0.0 if args.val_data else args.val_fraction, "test": test,
            "by": args.split_by, "seed": args.seed}


def calibration_windows(x: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.permutation(len(x))[:count])]


def cmd_train_l2mu(args) -> int:
    from edgesnn.data import har
    from edgesnn.models import l2mu
    from edgesnn.models.l2mu_train import train_l2mu

    check_writable(args.out)
    ds = har.load(args.data)
    spec = _split_spec(args)
    if args.val_data:
        val = har.load(args.val_data)
        if val.channels != ds.channels or val.classes != ds.classes:
            raise DataError("--val-data must have the same channels and classes as --data")
        train, _, test = ds.split(**spec) if spec["test"] > 0 else (ds, None, None)
    else:
        if not 0 < spec["val"] < 1:
            raise DataError("--val-fraction must be between 0 and 1 (or give --val-data)")
        train, val, test = ds.split(**spec)
    try:
        cfg = l2mu.L2MUConfig(channels=len(ds.channels), classes=len(ds.classes),
                              order=args.order, theta=args.theta, memory=args.memory,
                              hidden=args.hidden, population=args.population,
                              variant=args.variant, readout=args.readout, beta=args.beta,
                              threshold=args.threshold)
    except ValueError as exc:
        raise EdgesnnError(str(exc)) from None
    print(f"training L2MU on {len(train.y)} windows ({train.x.shape[1]} steps × "
          f"{train.x.shape[2]} channels), validating on {len(val.y)}"
          + (f", {len(test.y)} held out for test" if test is not None and len(test.y) else ""))
    result = train_l2mu(cfg, train.x, train.y, val.x, val.y, epochs=args.epochs, lr=args.lr,
                        batch_size=args.batch_size, patience=args.patience, seed=args.seed,
                        learn_beta=args.learn_beta, learn_threshold=args.learn_threshold,
                        full_bptt=args.full_bptt, readout_lr=args.readout_lr)
    graph = l2mu.build_graph(cfg, result.params, dt=1.0 / ds.rate_hz if ds.rate_hz else None)
    best = result.history[result.best_epoch]
    model = Model(graph, metadata={
        "name": f"l2mu-{cfg.variant}-{Path(str(args.data)).stem}",
        "task": "activity recognition", "classes": list(ds.classes),
        "channels": list(ds.channels), "decision": l2mu.decision_metadata(cfg),
        "l2mu": l2mu.config_metadata(cfg),
        "training": {"data": str(args.data), "split": spec, "best_epoch": result.best_epoch,
                     "epochs_run": len(result.history), "val_loss": best["val_loss"],
                     "val_accuracy": best["val_accuracy"]}})
    if args.calib_windows > 0:
        import edgesnn
        model = edgesnn.quantize(model, calibration_windows(train.x, args.calib_windows,
                                                            args.seed), progress=True)
    size = save(model, args.out)
    print(f"best epoch {result.best_epoch}: validation loss {best['val_loss']:.3f}, accuracy "
          f"{best['val_accuracy']:.3f}; wrote {args.out} ({size:,} bytes)")
    if test is not None and len(test.y):
        rows = evaluate(model, test, _default_backends(model))
        print(format_rows(rows, test.classes))
    return 0


# ----------------------------------------------------------------------------- eval

def _default_backends(model: Model) -> list[str]:
    return ["numpy-float"] + (["numpy-int"] if model.quantization is not None else [])


def align_dataset(model: Model, ds):
    """Check the data fits the model; reorder labels when class names match in another order."""
    graph = model.graph
    n_in = graph.nodes[graph.inputs()[0]].size
    if ds.x.shape[2] != n_in:
        raise DataError(f"data has {ds.x.shape[2]} channels; the model expects {n_in}")
    classes = model.metadata.get("classes")
    if classes is None or list(classes) == list(ds.classes):
        return ds
    if sorted(map(str, classes)) != sorted(ds.classes):
        raise DataError(f"data classes {list(ds.classes)} differ from the model's {classes}")
    index = {name: i for i, name in enumerate(map(str, classes))}
    remap = np.array([index[c] for c in ds.classes])
    from edgesnn.data.har import HarDataset
    return HarDataset(ds.x, remap[ds.y], [str(c) for c in classes], ds.channels, ds.subjects,
                      ds.rate_hz, partial=ds.partial)


def evaluate(model: Model, ds, backends: list[str], latency: bool = False) -> list[dict]:
    from edgesnn.classify import window_logits
    from edgesnn.metrics import accuracy, confusion_matrix, macro_f1
    from edgesnn.opcount import synaptic_ops_per_sequence
    from edgesnn.runtime import Runtime

    ds = align_dataset(model, ds)
    n_classes = len(ds.classes)
    rows = []
    for backend in backends:
        rt = Runtime(model, backend)
        pred = window_logits(rt, ds.x).argmax(axis=1)
        cm = confusion_matrix(ds.y, pred, n_classes)
        mem = rt.executor.memory()
        row = {"backend": backend, "accuracy": accuracy(cm), "macro_f1": macro_f1(cm),
               "confusion": cm.tolist(), "flash": mem.flash, "ram": mem.ram,
               "synaptic_ops": synaptic_ops_per_sequence(rt.executor, ds.x)}
        if latency:
            row["window_ms"] = _window_latency(rt.step, rt.reset, ds.x)
        rows.append(row)
    if latency:
        torch_row = _torch_latency(model, ds.x)
        if torch_row is not None:
            rows.append(torch_row)
    return rows


def _window_latency(step, reset, xs: np.ndarray, windows: int = 5) -> float:
    """Median milliseconds to step through one window sample by sample (batch 1)."""
    import time

    times = []
    for x in xs[:windows]:
        reset()
        t0 = time.perf_counter()
        for sample in x:
            step(sample)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def _torch_latency(model: Model, xs: np.ndarray) -> dict | None:
    """The same trained L2MU stepped in PyTorch one sample at a time, when torch is there."""
    if model.metadata.get("l2mu") is None:
        return None
    try:
        import torch

        from edgesnn.models.l2mu_train import torch_stepper
    except (ImportError, EdgesnnError):
        return None
    reset, step = torch_stepper(model)
    return {"backend": f"pytorch {torch.__version__.split('+')[0]}",
            "window_ms": _window_latency(step, reset, xs.astype(np.float32))}


def format_rows(rows: list[dict], classes: list[str]) -> str:
    from edgesnn.metrics import format_confusion

    latency = any("window_ms" in r for r in rows)
    base = next((r["window_ms"] for r in rows if r["backend"].startswith("pytorch")), None)
    head = (f"{'backend':<16}{'accuracy':>9}{'macro-F1':>10}{'flash B':>10}{'RAM B':>9}"
            f"{'SOPs/window':>13}" + (f"{'ms/window':>11}{'vs torch':>10}" if latency else ""))
    lines = [head, "-" * len(head)]
    for r in rows:
        if "accuracy" in r:
            line = (f"{r['backend']:<16}{r['accuracy']:>9.3f}{r['macro_f1']:>10.3f}"
                    f"{r['flash']:>10,}{r['ram']:>9,}{r['synaptic_ops']:>13,.0f}")
        else:
            line = f"{r['backend']:<16}{'':>9}{'':>10}{'':>10}{'':>9}{'':>13}"
        if latency:
            ratio = f"{base / r['window_ms']:.1f}×" if base else "—"
            line += f"{r['window_ms']:>11.2f}{ratio:>10}"
        lines.append(line)
    for r in rows:
        if "confusion" in r:
            lines += ["", f"confusion matrix ({r['backend']}):",
                      format_confusion(np.array(r["confusion"]), classes)]
    return "\n".join(lines)


def cmd_eval(args) -> int:
    from edgesnn.data import har

    model = load_model(args.model)
    ds = har.load(args.data)
    if args.split != "all":
        spec = model.metadata.get("training", {}).get("split")
        if spec is None:
            raise DataError("this model records no training split; use --split all")
        parts = dict(zip(("train", "val", "test"), ds.split(**spec)))
        ds = parts[args.split]
        if ds is None or len(ds.y) == 0:
            raise DataError(f"the {args.split} split of {args.data} is empty")
    backends = args.backends or _default_backends(model)
    if args.plot:
        check_writable(args.plot)
    rows = evaluate(model, ds, backends, latency=args.latency)
    classes = [str(c) for c in model.metadata.get("classes", ds.classes)]
    if args.json:
        print(json.dumps({"model": str(args.model), "data": str(args.data), "split": args.split,
                          "windows": int(len(ds.y)), "rows": rows}, indent=2))
    else:
        print(f"{model.metadata.get('name', args.model)} on {args.data} ({args.split}: "
              f"{len(ds.y)} windows)")
        print(format_rows(rows, classes))
    if args.plot:
        from edgesnn.metrics import plot_confusion
        plot_confusion({r["backend"]: np.array(r["confusion"]) for r in rows if "confusion" in r},
                       classes, args.plot, title=str(model.metadata.get("name", "")))
        if not args.json:
            print(f"wrote {args.plot}")
    return 0

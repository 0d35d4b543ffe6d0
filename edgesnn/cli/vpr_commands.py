"""``edgesnn vpr``: visual place recognition — synthetic routes, training, evaluation, queries."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vpr", help="visual place recognition with ensembles of SNN modules",
                       description="Train, evaluate and query place-recognition ensembles. "
                                   "Dataset folders: DIR/reference/ (images, or one subfolder "
                                   "per reference traverse) and DIR/query/.")
    vpr = p.add_subparsers(dest="vpr_command", metavar="VPR_COMMAND", required=True)

    s = vpr.add_parser("synth", help="write a seeded synthetic route as a dataset folder")
    s.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    s.add_argument("--places", type=int, default=500, help="places on the route (default 500)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_synth)

    t = vpr.add_parser("train", help="train an ensemble of region-specific modules",
                       description="Train SYSTEMS modular systems (one module per region of "
                                   "PLACES_PER_MODULE places; each remembers every reference view "
                                   "of its places under SHIFTS small viewpoint shifts), choose the "
                                   "hyperactive-neuron threshold on --calibration queries, and "
                                   "write one model file (float and int8).")
    t.add_argument("--reference", required=True, type=Path,
                   help="reference images, or one subfolder per traverse (same place order)")
    t.add_argument("--out", required=True, type=Path, help="model file to write (.esnn)")
    t.add_argument("--calibration", type=Path,
                   help="query images of the first places, in place order, to choose the "
                        "removal threshold (without it nothing is removed)")
    t.add_argument("--systems", type=int, default=3, help="ensemble size (default 3)")
    t.add_argument("--places-per-module", type=int, default=275, help="region size (default 275)")
    t.add_argument("--shifts", type=int, default=3,
                   help="viewpoint shifts (of ±1 px) remembered per reference view (default 3)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=None, help="training processes (default: cores)")
    t.set_defaults(func=cmd_train)

    e = vpr.add_parser("eval", help="Recall@N, PR curve and query rate on a query folder")
    e.add_argument("--model", required=True, type=Path)
    e.add_argument("--query", required=True, type=Path, help="query images")
    e.add_argument("--ground-truth", type=Path,
                   help="CSV with columns query,reference (default: query i is place i)")
    e.add_argument("--tolerance", type=int, default=0, help="accept matches within ±k places")
    e.add_argument("--reference", type=Path, help="reference folder: adds the SAD baseline row")
    e.add_argument("--backend", default="numpy-float", choices=["numpy-float", "numpy-int"])
    e.add_argument("--plot", type=Path, help="folder for pr-curve.png and similarity.png")
    e.set_defaults(func=cmd_eval)

    q = vpr.add_parser("query", help="recognise the place in one image")
    q.add_argument("model", type=Path)
    q.add_argument("image", type=Path)
    q.add_argument("--top", type=int, default=5, help="best matches to print (default 5)")
    q.add_argument("--backend", default="numpy-float", choices=["numpy-float", "numpy-int"])
    q.set_defaults(func=cmd_query)


def cmd_synth(args) -> int:
    from edgesnn.models.vpr.synthetic import (
        QUERY_CONDITIONS,
        REFERENCE_CONDITIONS,
        write_dataset,
    )
    out = write_dataset(args.out, args.places, args.seed)
    print(f"wrote {args.places} places to {out}: reference/{{{','.join(REFERENCE_CONDITIONS)}}}, "
          f"query/{{{','.join(QUERY_CONDITIONS)}}}")
    return 0


def cmd_train(args) -> int:
    import edgesnn
    from edgesnn.errors import DataError
    from edgesnn.models.vpr import ensemble, images, metrics
    from edgesnn.models.vpr.preprocess import Preprocessing
    from edgesnn.models.vpr.views import ViewConfig

    pre = Preprocessing()
    reference = images.load_reference(args.reference, pre)
    calibration = None
    if args.calibration:
        queries, _ = images.load_query(args.calibration, pre)
        if len(queries) > reference.shape[1]:
            raise DataError(f"{args.calibration}: {len(queries)} calibration images "
                            f"but only {reference.shape[1]} places")
        gt = metrics.ground_truth(len(queries), reference.shape[1], np.arange(len(queries)))
        calibration = (queries, gt)
    start = time.perf_counter()
    trained = ensemble.train_place_model(reference, pre, systems=args.systems,
                                         places_per_module=args.places_per_module,
                                         config=ViewConfig(shifts=args.shifts), seed=args.seed,
                                         calibration=calibration, workers=args.workers,
                                         progress=True)
    seconds = time.perf_counter() - start
    model = trained.to_model(removal=True)
    model.metadata["training_seconds"] = round(seconds, 1)
    model = ensemble.quantize_place_model(model, reference)
    size = edgesnn.save(model, args.out)
    print(f"trained {args.systems} systems x {len(trained.systems[0].modules)} modules x "
          f"{trained.systems[0].modules[0].weight.shape[0]} views on "
          f"{trained.places} places in {seconds:.1f} s; removal threshold "
          f"{trained.threshold if trained.threshold is not None else 'none'}; removed per module "
          f"{trained.removed_per_module().tolist()}")
    print(f"wrote {args.out} ({size} bytes)")
    return 0


def _load(path: Path, backend: str):
    import edgesnn
    from edgesnn.backends import get_backend
    from edgesnn.models.vpr.ensemble import place_metadata

    model = edgesnn.load_model(path)
    layout, pre = place_metadata(model)
    return get_backend(backend)(model), layout, pre


def cmd_eval(args) -> int:
    from edgesnn.models.vpr import images, metrics
    from edgesnn.models.vpr.ensemble import similarity

    program, layout, pre = _load(args.model, args.backend)
    places = layout.places
    queries, names = images.load_query(args.query, pre)
    matches = None
    if args.ground_truth:
        matches = images.read_ground_truth(args.ground_truth, names, places)
    gt = metrics.ground_truth(len(queries), places, matches, args.tolerance)
    ours = f"ensemble ({args.backend})"
    start = time.perf_counter()
    sims = {ours: similarity(program, queries, layout)}
    rate = {ours: len(queries) / (time.perf_counter() - start)}
    if args.reference:
        reference = images.load_reference(args.reference, pre)
        start = time.perf_counter()
        sims["SAD baseline"] = metrics.sad_similarity(queries, reference)
        rate["SAD baseline"] = len(queries) / (time.perf_counter() - start)
    print(f"{len(queries)} queries, {places} places, tolerance ±{args.tolerance}")
    print(f"{'system':<26}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'AUC-PR':>8}{'R@100%P':>9}{'queries/s':>11}")
    curves = {}
    for name, sim in sims.items():
        r = metrics.recall_at_n(sim, gt)
        curves[name] = pr = metrics.precision_recall(sim, gt)
        print(f"{name:<26}{r[1]:>7.3f}{r[5]:>7.3f}{r[10]:>7.3f}{pr.auc:>8.3f}"
              f"{pr.recall_at_100_precision:>9.3f}{rate[name]:>11.0f}")
    if args.plot:
        args.plot.mkdir(parents=True, exist_ok=True)
        metrics.plot_pr_curves(curves, args.plot / "pr-curve.png")
        metrics.plot_similarity(sims[ours], gt, args.plot / "similarity.png", title=ours)
        print(f"wrote {args.plot / 'pr-curve.png'} and {args.plot / 'similarity.png'}")
    return 0


def cmd_query(args) -> int:
    from edgesnn.models.vpr import images
    from edgesnn.models.vpr.ensemble import similarity

    program, layout, pre = _load(args.model, args.backend)
    x = images.load_images([args.image], pre)
    scores = similarity(program, x, layout)[0]
    print(f"{args.image}: best matches of {layout.places} places")
    for rank, p in enumerate(np.argsort(-scores, kind="stable")[:max(1, args.top)], 1):
        print(f"  {rank}. place {p}  score {scores[p]:.3f}")
    return 0

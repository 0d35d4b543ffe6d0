"""Benchmark place recognition on the synthetic route: ensemble with and without
hyperactive-neuron removal, one modular system, and the SAD baseline, in one table.

    python tools/bench_vpr.py [--places 3300] [--condition night] [--systems 3]

References: the day and overcast traverses. Queries: one traverse of ``--condition``
(default: the hardest, night); the removal threshold is chosen on a second, separate
traverse of the same condition (its first ``--calibration`` places). Every method
sees the same patch-normalised 28×28 images. Queries/s are end to end from
preprocessed images (float: numpy-float backend, int8: numpy-int), batches of 256.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgesnn.backends import get_backend
from edgesnn.modelfile import Model
from edgesnn.models.vpr import metrics, synthetic
from edgesnn.models.vpr.ensemble import (
    System,
    build_graph,
    layout_of,
    place_metadata,
    quantize_place_model,
    similarity,
    train_place_model,
)
from edgesnn.models.vpr.preprocess import Preprocessing, preprocess
from edgesnn.models.vpr.views import ViewConfig


def _route(places: int, condition: str, seed: int, calibration: int):
    world = synthetic.make_world(places, seed)
    reference = synthetic.reference_traverses(world, seed, Preprocessing())
    k = synthetic.QUERY_CONDITIONS.index(condition)
    query = preprocess(synthetic.render(world, condition, synthetic.traverse_seed(seed, "query", k)))
    # a traverse no query set uses: numbered after all query conditions
    other = synthetic.traverse_seed(seed, "query", len(synthetic.QUERY_CONDITIONS) + k)
    calib = preprocess(synthetic.render(world, condition, other, places=slice(0, calibration)))
    return reference, query, calib


def _rate(program, x: np.ndarray, layout) -> tuple[np.ndarray, float]:
    similarity(program, x[:256], layout)  # warm-up (caches, first allocation)
    start = time.perf_counter()
    sim = similarity(program, x, layout)
    return sim, len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=3300, help="route length (Nordland: 3,300)")
    parser.add_argument("--condition", default=synthetic.HARDEST, choices=synthetic.QUERY_CONDITIONS)
    parser.add_argument("--systems", type=int, default=3)
    parser.add_argument("--places-per-module", type=int, default=275)
    parser.add_argument("--shifts", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=1000, help="calibration places")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    t0 = time.perf_counter()
    reference, query, calib = _route(args.places, args.condition, args.seed,
                                     min(args.calibration, args.places))
    print(f"route: {args.places} places, references {'+'.join(synthetic.REFERENCE_CONDITIONS)}, "
          f"queries {args.condition} ({time.perf_counter() - t0:.0f} s to render)")
    gt = metrics.ground_truth(len(query), args.places)
    calib_gt = metrics.ground_truth(len(calib), args.places, np.arange(len(calib)))
    start = time.perf_counter()
    trained = train_place_model(reference, Preprocessing(), systems=args.systems,
                                places_per_module=args.places_per_module,
                                config=ViewConfig(shifts=args.shifts), seed=args.seed,
                                calibration=(calib, calib_gt), workers=args.workers, progress=True)
    training = time.perf_counter() - start

    rows = []
    for name, model in (("ensemble + removal", trained.to_model(removal=True)),
                        ("ensemble, no removal", trained.to_model(removal=False)),
                        ("one modular system", trained.to_model(removal=False, systems=1))):
        layout, _ = place_metadata(model)
        sim, rate_f = _rate(get_backend("numpy-float")(model), query, layout)
        qmodel = quantize_place_model(model, reference)
        sim_i, rate_i = _rate(get_backend("numpy-int")(qmodel), query, layout)
        rows.append((name, sim, sim_i, rate_f, rate_i))
    start = time.perf_counter()
    sad = metrics.sad_similarity(query, reference)
    rows.append(("SAD baseline", sad, None, len(query) / (time.perf_counter() - start), None))

    print(f"\nRecall@1 on {args.condition}, {args.places} places; training {training:.1f} s "
          f"({args.systems} systems x {len(trained.systems[0].modules)} modules); removal threshold "
          f"T={trained.threshold if trained.threshold is not None else 'none'}, removed neurons "
          f"per system {trained.removed_per_module().sum(axis=1).tolist()}")
    print(f"{'system':<24}{'R@1':>7}{'R@5':>7}{'AUC-PR':>8}{'R@1 int8':>10}{'q/s float':>11}{'q/s int8':>10}")
    for name, sim, sim_i, rate_f, rate_i in rows:
        r = metrics.recall_at_n(sim, gt, (1, 5))
        auc = metrics.precision_recall(sim, gt).auc
        r_i = f"{metrics.recall_at_n(sim_i, gt, (1,))[1]:>10.3f}" if sim_i is not None else f"{'-':>10}"
        q_i = f"{rate_i:>10.0f}" if rate_i is not None else f"{'-':>10}"
        print(f"{name:<24}{r[1]:>7.3f}{r[5]:>7.3f}{auc:>8.3f}{r_i}{rate_f:>11.0f}{q_i}")

    # Are there hubs for removal to fix? A place's count: its busiest view per system,
    # summed over systems, as the place score is built.
    false = metrics.false_match_counts(rows[1][1], gt)
    counts = trained.counts[:, :, :args.places].max(axis=1).sum(axis=0)
    print(f"\nhubness (ensemble, no removal): {false.sum()} false best matches; the place taking "
          f"most takes {false.max()}; correlation of a place's reference-route response count "
          f"with its false matches {np.corrcoef(counts, false)[0, 1]:.2f}")

    # query cost is linear in the number of places: the first k modules of every system
    print("\nquery rate vs route length (ensemble, numpy-float)")
    modules = len(trained.systems[0].modules)
    for k in sorted({max(1, modules // 4), max(1, modules // 2), modules}):
        part = [System(s.modules[:k], s.places_per_module) for s in trained.systems]
        places = min(args.places, k * args.places_per_module)
        model = Model(build_graph(part))
        _, rate = _rate(get_backend("numpy-float")(model), query, layout_of(part, places))
        print(f"  {places:>6} places  {rate:>8.0f} queries/s  {rate * places:>12.3g} place-scores/s")


if __name__ == "__main__":
    main()

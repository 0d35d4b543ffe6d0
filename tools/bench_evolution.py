"""Benchmark controller evolution: engines side by side, and vectorised vs naive scoring.

    python tools/bench_evolution.py [--generations 10] [--workers 2]

One CMA-ES run configuration (population 50, one 250 s sequence at 10 Hz per
generation, the PD LIF controller with 40+40 neurons) is timed with each engine;
then the same population is scored by a plain per-individual loop that builds each
controller's graph and steps the numpy-float runtime once per sample, as a
straightforward implementation would.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: see evolve's note

import numpy as np

from edgesnn.compile import compile_graph
from edgesnn.controllers.evolution import EvolutionConfig, evolve, make_engine, population_loss
from edgesnn.controllers.mimic_data import MimicSet
from edgesnn.controllers.network import ControllerSpec, build_graph, mimic_loss


def _data(seconds: float = 250.0) -> MimicSet:
    rng = np.random.default_rng(0)
    steps = int(seconds * 10)
    error = np.round(np.cumsum(rng.normal(0, 0.01, steps)), 2)  # 1 cm quantised random walk
    data = MimicSet()
    data.add("bench", error, 9 * error)
    return data


def _naive_per_second(spec: ControllerSpec, vectors: np.ndarray, data: MimicSet) -> float:
    error, target = data.errors[0], data.targets[0]
    start = time.perf_counter()
    for v in vectors:
        program = compile_graph(build_graph(spec, v))
        state = program.init_state(1)
        out = np.empty(len(error))
        for t, e in enumerate(error):
            y, state = program.step(state, np.array([[e]], np.float32))
            out[t] = y[0, 0]
        mimic_loss(out, target)
    return len(vectors) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-individuals", type=int, default=5,
                        help="individuals scored by the naive loop (it is slow)")
    args = parser.parse_args()
    spec = ControllerSpec("pd", "lif", 40)
    data = _data()
    config = EvolutionConfig(spec=spec, generations=args.generations, validate_every=10**9)
    rows = []
    for name in ("serial", "local", "dask"):
        try:
            engine = make_engine(name, args.workers)
        except Exception as exc:  # e.g. the 'distributed' extra is missing
            rows.append((name, None, str(exc)))
            continue
        try:
            evolve(EvolutionConfig(spec=spec, generations=1, validate_every=10**9), data, engine,
                   progress=False)  # warm-up: worker start-up is not per-generation cost
            start = time.perf_counter()
            evolve(config, data, engine, progress=False)
            rows.append((name, args.generations / (time.perf_counter() - start), ""))
        finally:
            engine.close()
    print(f"CMA-ES, population {config.population}, one {len(data.errors[0]) / 10:.0f} s sequence "
          f"per generation, {spec.variant} {spec.neurons}+{spec.neurons} neurons, "
          f"{args.workers} workers\n")
    print(f"{'engine':<10}{'generations/s':>15}{'individuals/s':>15}{'vs serial':>11}  note")
    base = rows[0][1]
    for name, rate, note in rows:
        if rate is None:
            print(f"{name:<10}{'—':>15}{'—':>15}{'—':>11}  {note}")
        else:
            print(f"{name:<10}{rate:>15.2f}{rate * config.population:>15.0f}{rate / base:>10.2f}×  {note}")
    vectors = spec.layout.from_unit(np.random.default_rng(1).uniform(
        size=(args.naive_individuals, spec.layout.size)))
    naive = _naive_per_second(spec, vectors, data)
    start = time.perf_counter()
    population_loss(spec, spec.layout.from_unit(np.random.default_rng(2).uniform(
        size=(config.population, spec.layout.size))), data)
    vectorised = config.population / (time.perf_counter() - start)
    print(f"\nscoring individuals on the same sequence (one process):")
    print(f"  naive loop (graph + runtime step per sample): {naive:10.1f} individuals/s")
    print(f"  vectorised population (simulate_population):  {vectorised:10.1f} individuals/s"
          f"   {vectorised / naive:.0f}× faster")


if __name__ == "__main__":
    main()

"""Evolve an SNN controller with CMA-ES (DEAP) to mimic a PID term.

The search runs in the unit cube (each parameter scaled to [0, 1] by its bounds), so
the spec's σ = range/10 is 0.1 for every parameter. Samples leaving the cube are
repaired by reflection at the bounds. Each generation scores the whole population
on a few training sequences in one vectorised call
(:func:`~edgesnn.controllers.network.simulate_population`); an *engine* splits the
population into chunks for worker processes or a Dask cluster. Workers receive only
numpy arrays and call the top-level :func:`evaluate_chunk` (no DEAP ``creator``
classes, which do not unpickle in workers). Randomness comes from one
``np.random.Generator`` whose state is saved in the checkpoint, so a resumed run
continues exactly like an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgesnn.controllers.closed_loop import fly, flight_loss, setpoint_schedule
from edgesnn.controllers.mimic_data import MimicSet
from edgesnn.controllers.network import (ControllerSpec, PopulationController, mimic_loss,
                                         simulate_population)
from edgesnn.controllers.plants import PhysicalBlimp
from edgesnn.errors import DataError, EdgesnnError, require

__all__ = ["EvolutionConfig", "EvolutionResult", "FlightTask", "evaluate_chunk", "make_engine",
           "evolve", "ENGINES", "population_loss", "population_flight_loss"]

ENGINES = ("serial", "local", "dask")


@dataclass(frozen=True)
class FlightTask:
    """The closed-loop part of the fitness: every individual flies the fitted physical
    blimp through ``setpoints`` (``seconds_each`` per level, sensor noise from ``seed``),
    together with an optional ``partner`` controller whose command is added (the PD an
    I controller will fly with: (spec dict, parameter vector)). The fitness gains
    ``weight`` × :func:`~edgesnn.controllers.closed_loop.flight_loss` (per metre)."""

    weight: float
    setpoints: tuple[float, ...] = (0.5, 1.0, 0.5)
    seconds_each: float = 40.0
    seed: int = 0
    partner: tuple[dict, tuple[float, ...]] | None = None

    def as_dict(self) -> dict:
        return {"weight": self.weight, "setpoints": list(self.setpoints),
                "seconds_each": self.seconds_each, "seed": self.seed,
                "partner": None if self.partner is None else
                {"spec": self.partner[0], "parameters": list(self.partner[1])}}


def population_flight_loss(spec: ControllerSpec, vectors: np.ndarray, task: FlightTask) -> np.ndarray:
    """:func:`~edgesnn.controllers.closed_loop.flight_loss` of each vector, all flown at once."""
    vectors = np.atleast_2d(vectors)
    controller = PopulationController(spec, vectors)
    command = controller
    if task.partner is not None:
        partner_spec, partner_vector = task.partner
        partner = PopulationController(ControllerSpec(**partner_spec),
                                       np.tile(np.asarray(partner_vector), (len(vectors), 1)))
        command = lambda error: controller(error) + partner(error)  # noqa: E731
    plant = PhysicalBlimp(batch=len(vectors))
    # every individual meets the same sensor noise: a fair comparison
    noise = [np.random.SeedSequence(task.seed)] * len(vectors)
    flight = fly(plant, command, setpoint_schedule(list(task.setpoints), task.seconds_each, plant.dt),
                 seed=noise)
    return np.array([flight_loss(flight, k) for k in range(len(vectors))])


def evaluate_chunk(spec: dict, vectors: np.ndarray, groups: list[tuple[np.ndarray, np.ndarray]],
                   flight: FlightTask | None = None) -> np.ndarray:
    """Mean mimic loss of each vector over the sequence groups, plus the weighted
    flight loss if ``flight`` is given (top-level: picklable)."""
    controller = ControllerSpec(**spec)
    total = np.zeros(len(vectors))
    count = 0
    for errors, targets in groups:
        total += mimic_loss(simulate_population(controller, vectors, errors), targets) * len(errors)
        count += len(errors)
    loss = total / count
    if flight is not None:
        loss += flight.weight * population_flight_loss(controller, vectors, flight)
    return loss


def population_loss(spec: ControllerSpec, vectors: np.ndarray, data: MimicSet,
                    indices=None) -> np.ndarray:
    """Mean mimic loss of each vector over ``data`` (in this process)."""
    return evaluate_chunk(spec.as_dict(), np.atleast_2d(vectors), data.by_length(indices))


class _Engine:
    """Maps :func:`evaluate_chunk` over chunks of a population."""

    name = "serial"
    workers = 1

    def evaluate(self, spec: dict, vectors: np.ndarray, groups, flight=None) -> np.ndarray:
        return evaluate_chunk(spec, vectors, groups, flight)

    def close(self) -> None:
        pass

    def _chunks(self, vectors: np.ndarray) -> list[np.ndarray]:
        return [c for c in np.array_split(vectors, self.workers) if len(c)]


class _LocalEngine(_Engine):
    name = "local"

    def __init__(self, workers: int):
        import multiprocessing
        self.workers = workers
        # spawn: no fork of a process that runs a progress-bar thread
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def evaluate(self, spec, vectors, groups, flight=None):
        chunks = self._chunks(vectors)
        return np.concatenate(list(self.pool.map(evaluate_chunk, [spec] * len(chunks), chunks,
                                                 [groups] * len(chunks), [flight] * len(chunks))))

    def close(self):
        self.pool.shutdown()


class _DaskEngine(_Engine):
    name = "dask"

    def __init__(self, workers: int, address: str | None):
        distributed = require("dask.distributed", "distributed")
        if address:
            self.client = distributed.Client(address)
            self.cluster = None
            self.workers = max(1, len(self.client.scheduler_info()["workers"]))
        else:
            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                                    processes=True, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
            self.workers = workers

    def evaluate(self, spec, vectors, groups, flight=None):
        chunks = self._chunks(vectors)
        # pure=False: identical chunks in later generations must be recomputed
        futures = self.client.map(evaluate_chunk, [spec] * len(chunks), chunks,
                                  [groups] * len(chunks), [flight] * len(chunks), pure=False)
        return np.concatenate(self.client.gather(futures))

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_engine(name: str = "local", workers: int | None = None, address: str | None = None) -> _Engine:
    """serial: in this process; local: ``workers`` processes (default: all cores);
    dask: a LocalCluster of ``workers`` processes, or the cluster at ``address``
    (``tcp://scheduler:8786``)."""
    workers = workers or os.cpu_count() or 1
    if name == "serial":
        return _Engine()
    if name == "local":
        return _LocalEngine(workers)
    if name == "dask":
        return _DaskEngine(workers, address)
    raise EdgesnnError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class EvolutionConfig:
    spec: ControllerSpec = field(default_factory=ControllerSpec)
    generations: int = 1000
    population: int = 50
    sigma: float = 0.1  # in the unit cube: range / 10, as in the paper
    sequences_per_generation: int = 1
    validate_every: int = 25
    seed: int = 0
    init: str = "uniform"  # the initial mean: "uniform" (the paper), or a label of ``initial``
    flight: FlightTask | None = None  # also fly every individual (None: mimic only, the paper)

    def as_dict(self) -> dict:
        return {"spec": self.spec.as_dict(), "generations": self.generations,
                "population": self.population, "sigma": self.sigma,
                "sequences_per_generation": self.sequences_per_generation,
                "validate_every": self.validate_every, "seed": self.seed, "init": self.init,
                "flight": None if self.flight is None else self.flight.as_dict()}


@dataclass
class EvolutionResult:
    best: np.ndarray  # parameter vector with the lowest validation loss seen
    best_loss: float
    generation: int
    history: dict[str, list[float]]  # per generation: best, median; per validation: loss


class _Loss:
    """DEAP's Strategy ranks individuals by ``ind.fitness``, larger is better."""

    __slots__ = ("value",)

    def __init__(self, value: float):
        self.value = value

    def __lt__(self, other: "_Loss") -> bool:
        return self.value > other.value


class _Individual(np.ndarray):
    fitness: _Loss


def _reflect(z: np.ndarray) -> np.ndarray:
    """Mirror coordinates into [0, 1] (…, −0.1 → 0.1, 1.2 → 0.8, 2.3 → 0.3, …)."""
    z = np.mod(z, 2.0)
    return np.where(z > 1.0, 2.0 - z, z)


# strategy attributes that change during a run (the rest derive from these and the config)
_STRATEGY_STATE = ("centroid", "sigma", "pc", "ps", "C", "diagD", "B", "BD", "cond", "update_count")


def _new_strategy(cma, config: EvolutionConfig, rng: np.random.Generator,
                  initial: np.ndarray | None):
    layout = config.spec.layout
    centroid = (rng.uniform(0.0, 1.0, layout.size) if initial is None
                else layout.to_unit(np.asarray(initial, np.float64)))
    return cma.Strategy(centroid=centroid, sigma=config.sigma, lambda_=config.population)


def _save_checkpoint(path: Path, config: EvolutionConfig, strategy, rng, generation: int,
                     result: EvolutionResult) -> None:
    arrays = {f"strategy_{k}": np.asarray(getattr(strategy, k)) for k in _STRATEGY_STATE}
    meta = {"config": config.as_dict(), "generation": generation, "rng": rng.bit_generator.state,
            "best_loss": result.best_loss, "best_generation": result.generation,
            "history": result.history}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, best=result.best, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    os.replace(tmp, path)  # never leave a half-written checkpoint


def _load_checkpoint(path: Path, config: EvolutionConfig, strategy, rng):
    try:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            arrays = {k: data[f"strategy_{k}"] for k in _STRATEGY_STATE}
            best = data["best"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not an evolution checkpoint ({exc})") from None
    if meta["config"] != config.as_dict() | {"generations": meta["config"]["generations"]}:
        raise DataError(f"{path}: checkpoint was made with different settings "
                        f"({meta['config']}); start a new run or use the same options")
    for k, v in arrays.items():
        setattr(strategy, k, v.item() if v.ndim == 0 else v)
    rng.bit_generator.state = meta["rng"]
    result = EvolutionResult(best, meta["best_loss"], meta["best_generation"], meta["history"])
    return meta["generation"], result


def evolve(config: EvolutionConfig, train: MimicSet, engine: _Engine | None = None,
           checkpoint: str | Path | None = None, resume: bool = False,
           progress: bool = True, on_generation: Callable[[int, EvolutionResult], None] | None = None,
           initial: np.ndarray | None = None) -> EvolutionResult:
    """Run (or resume) CMA-ES; returns the best controller by loss on all of ``train``.
    ``initial`` (a parameter vector) replaces the uniformly drawn initial mean."""
    cma = require("deap.cma", "evolve")
    from tqdm.auto import tqdm

    if len(train) == 0:
        raise DataError("no training sequences")
    spec, layout = config.spec, config.spec.layout
    engine = engine or _Engine()
    rng = np.random.default_rng(config.seed)
    strategy = _new_strategy(cma, config, rng, initial)
    result = EvolutionResult(np.zeros(layout.size), float("inf"), 0,
                             {"best": [], "median": [], "validation": []})
    start = 0
    checkpoint = Path(checkpoint) if checkpoint else None
    if resume:
        if checkpoint is None or not checkpoint.exists():
            raise DataError(f"nothing to resume: {checkpoint} does not exist")
        start, result = _load_checkpoint(checkpoint, config, strategy, rng)
    all_groups = train.by_length()
    spec_dict = spec.as_dict()

    def validate(candidates: np.ndarray, generation: int) -> None:
        losses = engine.evaluate(spec_dict, layout.from_unit(candidates), all_groups, config.flight)
        k = int(np.argmin(losses))
        result.history["validation"].append(float(losses[k]))
        if losses[k] < result.best_loss:
            result.best, result.best_loss = layout.from_unit(candidates[k]), float(losses[k])
            result.generation = generation

    bar = tqdm(range(start, config.generations), initial=start, total=config.generations,
               desc=f"evolving {spec.target} ({spec.variant})", unit="gen", disable=not progress)
    for gen in bar:
        z = strategy.centroid + strategy.sigma * rng.standard_normal((config.population, layout.size)) @ strategy.BD.T
        z = _reflect(z)
        picks = rng.choice(len(train), size=min(config.sequences_per_generation, len(train)),
                           replace=False)
        losses = engine.evaluate(spec_dict, layout.from_unit(z), train.by_length(picks),
                                 config.flight)
        population = []
        for row, loss in zip(z, losses):
            ind = row.view(_Individual)
            ind.fitness = _Loss(float(loss))
            population.append(ind)
        best_row = z[int(np.argmin(losses))].copy()
        strategy.update(population)
        result.history["best"].append(float(np.min(losses)))
        result.history["median"].append(float(np.median(losses)))
        last = gen + 1 == config.generations
        if (gen + 1) % config.validate_every == 0 or last:
            validate(np.stack([_reflect(strategy.centroid), best_row]), gen + 1)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, config, strategy, rng, gen + 1, result)
        bar.set_postfix(best=f"{result.best_loss:.3f}", gen_best=f"{np.min(losses):.3f}",
                        median=f"{np.median(losses):.3f}")
        if on_generation is not None:
            on_generation(gen + 1, result)
    bar.close()
    return result

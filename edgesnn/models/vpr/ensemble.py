"""Modular systems, ensembles and hyperactive-neuron removal, compiled to one edgesnn graph.

A *modular system* splits the reference route into consecutive regions of equal size
and trains one fast module per region (``fast.py``), each only on its own places. An
*ensemble* is several systems trained with different seeds (different receptive
fields, thresholds and presentation order); their place scores are summed.

Hyperactive-neuron removal: a module also sees places of other regions at query
time, and some of its place neurons respond to almost anything. After training every
system is shown the whole reference route; a place neuron's *count* is the number of
reference images it responds to (score above ``FastConfig.response``). Neurons with
count ≥ T are removed (their readout row zeroed). T is chosen on a calibration split
of queries: the value with the best Recall@1 there (ties: the largest, removing least).

The graph, per system s (M modules of F features and P_m places each):

    in (pixels) ─► features_s: Affine (M·F × pixels, bias −θ) ─► spikes_s: Threshold 0
                ─► places_s: BlockLinear (M blocks of P_m × F) ─► out (M·P_m), summed over s

Output j is place j; outputs past the last place (the last region's padding) are
always zero and ignored.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from edgesnn.compile import Program
from edgesnn.errors import InputError, ModelFileError
from edgesnn.ir import Affine, BlockLinear, Graph, Input, Output, Threshold
from edgesnn.modelfile import Model
from edgesnn.models.vpr.fast import FastConfig, FastModule, check_images, train_fast_module
from edgesnn.models.vpr.metrics import recall_at_n
from edgesnn.models.vpr.preprocess import Preprocessing

TASK = "place-recognition"
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class System:
    """One modular system: ``modules[m]`` learned places [m·P_m, (m+1)·P_m)."""

    modules: list[FastModule]
    places_per_module: int


def regions(places: int, places_per_module: int) -> list[range]:
    """Consecutive regions of equal size covering the route (the last may be short)."""
    if places < 1 or places_per_module < 1:
        raise InputError(f"need at least one place and one place per module; got {places}, "
                         f"{places_per_module}")
    size = min(places_per_module, places)
    return [range(a, min(a + size, places)) for a in range(0, places, size)]


def module_seed(seed: int, system: int, module: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, system, module])


def train_systems(reference: np.ndarray, preprocessing: Preprocessing, systems: int = 3,
                  places_per_module: int = 1100, config: FastConfig = FastConfig(), seed: int = 0,
                  workers: int | None = None, progress: bool = False) -> list[System]:
    """Train ``systems`` modular systems on ``reference`` (traverses, places, pixels).
    Modules are independent and train in parallel processes; results depend only on
    the seed, not on the number of workers."""
    # checked here, once, rather than in every worker after the pool has started
    reference = check_images(reference, preprocessing.size)
    for name, value in (("systems", systems), ("workers", 1 if workers is None else workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}")
    parts = regions(reference.shape[1], places_per_module)
    jobs = [(s, m) for s in range(systems) for m in range(len(parts))]
    args = [(reference[:, parts[m].start:parts[m].stop], preprocessing.size, config,
             module_seed(seed, s, m)) for s, m in jobs]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(jobs), desc="training modules", unit="module", disable=not progress)
    # Always in spawned workers with one BLAS thread each: the float sums (and so the
    # thresholds and every learned weight) then do not depend on the worker count or on
    # the caller's BLAS threading — a seed gives the same model everywhere.
    saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
    os.environ.update({k: "1" for k in _BLAS_THREADS})
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_fast_module, *a) for a in args]
            trained = []
            for f in futures:
                trained.append(f.result())
                bar.update()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bar.close()
    size = len(parts[0])
    return [System([trained[i] for i, (s, _) in enumerate(jobs) if s == k], size)
            for k in range(systems)]


def build_graph(systems: list[System], pixels: int, keep: np.ndarray | None = None) -> Graph:
    """The ensemble as one graph; ``keep`` (systems, outputs) bool zeroes removed neurons."""
    nodes: dict = {"in": Input(pixels)}
    edges = []
    size = systems[0].places_per_module
    for s, system in enumerate(systems):
        readout = np.zeros((len(system.modules), size, system.modules[0].readout.shape[1]),
                           np.float32)
        for m, module in enumerate(system.modules):
            readout[m, :len(module.readout)] = module.readout
        if keep is not None:
            readout *= keep[s].reshape(len(system.modules), size, 1)
        weight = np.concatenate([m.weight for m in system.modules])
        bias = -np.concatenate([m.threshold for m in system.modules])
        nodes[f"features{s}"] = Affine(weight, bias)
        nodes[f"spikes{s}"] = Threshold(len(bias), 0.0)
        nodes[f"places{s}"] = BlockLinear(readout)
        edges += [("in", f"features{s}"), (f"features{s}", f"spikes{s}"),
                  (f"spikes{s}", f"places{s}"), (f"places{s}", "out")]
    nodes["out"] = Output(len(systems[0].modules) * size)
    return Graph(nodes, edges)


def system_scores(systems: list[System], x: np.ndarray) -> np.ndarray:
    """(systems, N, outputs) place-neuron outputs of every system, before removal."""
    out = np.zeros((len(systems), len(x), len(systems[0].modules) * systems[0].places_per_module),
                   np.float32)
    for s, system in enumerate(systems):
        for m, module in enumerate(system.modules):
            start = m * system.places_per_module
            out[s, :, start:start + len(module.readout)] = module.scores(x)
    return out


def response_counts(systems: list[System], images: np.ndarray, response: float,
                    chunk: int = 1024) -> np.ndarray:
    """(systems, outputs): on how many of ``images`` (N, pixels) — the whole reference
    route — each place neuron responds (score > ``response``)."""
    counts = 0
    for start in range(0, len(images), chunk):
        counts = counts + (system_scores(systems, images[start:start + chunk]) > response).sum(axis=1)
    return np.asarray(counts)


def choose_threshold(counts: np.ndarray, calibration_scores: np.ndarray, gt: np.ndarray,
                     places: int) -> int | None:
    """The removal threshold T with the best calibration Recall@1 (None: remove nothing).
    ``calibration_scores`` (systems, N, outputs), ``gt`` (N, places)."""
    best_t, best_r = None, recall_at_n(calibration_scores.sum(0)[:, :places], gt, (1,))[1]
    for t in sorted(set(counts.ravel().tolist()), reverse=True):
        if t < 1:
            break
        kept = calibration_scores * (counts < t)[:, None, :]
        r = recall_at_n(kept.sum(0)[:, :places], gt, (1,))[1]
        if r > best_r:
            best_t, best_r = int(t), r
    return best_t


def train_place_model(reference: np.ndarray, preprocessing: Preprocessing, *, systems: int = 3,
                      places_per_module: int = 1100, config: FastConfig = FastConfig(),
                      seed: int = 0, calibration: tuple[np.ndarray, np.ndarray] | None = None,
                      workers: int | None = None, progress: bool = False) -> "PlaceModel":
    """Train an ensemble on ``reference`` (traverses, places, pixels) and choose the
    removal threshold on ``calibration`` = (queries (N, pixels), ground truth (N, places));
    without calibration data nothing is removed."""
    trained = train_systems(reference, preprocessing, systems, places_per_module, config, seed,
                            workers, progress)
    places = reference.shape[1]
    counts = response_counts(trained, reference.reshape(-1, reference.shape[2]), config.response)
    threshold = None
    if calibration is not None:
        queries, gt = calibration
        threshold = choose_threshold(counts, system_scores(trained, queries), gt, places)
    return PlaceModel(trained, preprocessing, places, config, counts, threshold, seed)


@dataclass
class PlaceModel:
    """A trained ensemble ready to save: systems, removal and what a query needs."""

    systems: list[System]
    preprocessing: Preprocessing
    places: int
    config: FastConfig
    counts: np.ndarray            # (systems, outputs) responses on the reference route
    threshold: int | None         # removal threshold T (None: no removal)
    seed: int

    @property
    def keep(self) -> np.ndarray:
        if self.threshold is None:
            return np.ones_like(self.counts, dtype=bool)
        return self.counts < self.threshold

    def removed_per_module(self) -> np.ndarray:
        """(systems, modules) number of removed place neurons."""
        size = self.systems[0].places_per_module
        return (~self.keep).reshape(len(self.systems), -1, size).sum(axis=2)

    def to_model(self, removal: bool = True) -> Model:
        keep = self.keep if removal else None
        graph = build_graph(self.systems, self.preprocessing.features, keep)
        metadata = {
            "name": "place-ensemble", "task": TASK, "places": self.places,
            "preprocessing": self.preprocessing.to_metadata(),
            "module": self.config.to_metadata(), "systems": len(self.systems),
            "modules_per_system": len(self.systems[0].modules),
            "places_per_module": self.systems[0].places_per_module, "seed": self.seed,
            "removal": {"threshold": self.threshold if removal else None,
                        "removed_per_module": self.removed_per_module().tolist() if removal else None},
        }
        return Model(graph, metadata=metadata)


def place_metadata(model: Model) -> tuple[int, Preprocessing]:
    """Check a model is a place-recognition ensemble; its place count and preprocessing."""
    meta = model.metadata
    if meta.get("task") != TASK:
        raise ModelFileError(f"not a place-recognition model (task {meta.get('task')!r}); "
                             "train one with: edgesnn vpr train")
    places = meta.get("places")
    out = model.graph.nodes[model.graph.outputs()[0]].out_size
    if not isinstance(places, int) or not 1 <= places <= out:
        raise ModelFileError(f"place-recognition metadata: places={places!r} does not fit the "
                             f"model's {out} outputs")
    return places, Preprocessing.from_metadata(meta.get("preprocessing"))


def similarity(program: Program, x: np.ndarray, places: int, batch: int = 512) -> np.ndarray:
    """(N, pixels) preprocessed queries → (N, places) ensemble place scores."""
    out = np.empty((len(x), places), np.float32)
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        y, _ = program.step(program.init_state(len(xb)), xb)  # stateless: one step per image
        out[start:start + len(xb)] = y[:, :places]
    return out

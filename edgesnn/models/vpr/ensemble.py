"""Modular systems, ensembles and hyperactive-neuron removal, compiled to one edgesnn graph.

A *modular system* splits the reference route into consecutive regions of equal size
and trains one view module per region (``views.py``), each only on its own places. An
*ensemble* is several systems trained with different seeds (each module draws its own
viewpoint shifts); their place scores are summed.

Hyperactive-neuron removal: a module also sees places of other regions at query time,
and some neurons respond to almost anything (hubs). After training, every system is
shown the whole reference route; a neuron *responds* to an image when it is among the
system's ``response_rank`` most driven neurons for it (k-winner-take-all), and its
*count* is the number of reference images it responds to. Neurons with count ≥ T are
removed (their weights zeroed). T is chosen on calibration queries: the value with the
best Recall@1 there (ties: the largest, removing least); without them nothing is removed.

The graph is one layer of template neurons:

    in (pixels) ─► views: Linear (S·V·P rows) ─► out (S·V·P)

Output ``(s·V + v)·P + p`` is view ``v`` of place ``p`` in system ``s`` (P: places
padded to whole regions; padding neurons have zero weights). ``similarity`` decodes a
place score: the best view per system, summed over systems.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from edgesnn import quantize
from edgesnn.compile import Program
from edgesnn.errors import InputError, ModelFileError
from edgesnn.ir import Graph, Input, Linear, Output
from edgesnn.modelfile import Model
from edgesnn.models.vpr.metrics import recall_at_n
from edgesnn.models.vpr.preprocess import Preprocessing
from edgesnn.models.vpr.views import (
    ViewConfig,
    ViewModule,
    check_images,
    train_view_module,
)

TASK = "place-recognition"
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class System:
    """One modular system: ``modules[m]`` learned places [m·P_m, (m+1)·P_m)."""

    modules: list[ViewModule]
    places_per_module: int

    def weight(self) -> np.ndarray:
        """(views, padded places, pixels): every module's templates side by side."""
        views, _, pixels = self.modules[0].weight.shape
        w = np.zeros((views, len(self.modules) * self.places_per_module, pixels), np.float32)
        for m, module in enumerate(self.modules):
            start = m * self.places_per_module
            w[:, start:start + module.weight.shape[1]] = module.weight
        return w


@dataclass(frozen=True)
class Layout:
    """How the graph's outputs map to (system, view, place)."""

    systems: int
    views: int
    padded_places: int
    places: int

    @property
    def outputs(self) -> int:
        return self.systems * self.views * self.padded_places


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
                  places_per_module: int = 275, config: ViewConfig = ViewConfig(), seed: int = 0,
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
    # Always in spawned workers with one BLAS thread each: the float sums (and so every
    # learned weight) then do not depend on the worker count or on the caller's BLAS
    # threading — a seed gives the same model everywhere.
    saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
    os.environ.update({k: "1" for k in _BLAS_THREADS})
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_view_module, *a) for a in args]
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


def layout_of(systems: list[System], places: int) -> Layout:
    views = systems[0].modules[0].weight.shape[0]
    return Layout(len(systems), views, len(systems[0].modules) * systems[0].places_per_module, places)


def ensemble_weight(systems: list[System]) -> np.ndarray:
    """(systems, views, padded places, pixels): every template of the ensemble."""
    return np.stack([system.weight() for system in systems])


def build_graph(systems: list[System], keep: np.ndarray | None = None) -> Graph:
    """The ensemble as one graph; ``keep`` (systems, views, padded places) bool zeroes
    removed neurons."""
    weight = ensemble_weight(systems)
    if keep is not None:
        weight *= keep[..., None]
    weight = weight.reshape(-1, weight.shape[-1])
    return Graph({"in": Input(weight.shape[1]), "views": Linear(weight), "out": Output(len(weight))},
                 [("in", "views"), ("views", "out")])


def neuron_drives(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, systems, views, padded places) template-neuron drives, before removal;
    ``weight`` from ``ensemble_weight``."""
    return np.einsum("svpd,nd->nsvp", weight, x, optimize=True)


def place_scores(drives: np.ndarray, places: int, keep: np.ndarray | None = None) -> np.ndarray:
    """(N, systems, views, padded places) drives → (N, places): each system's best kept
    view per place, summed over systems (a removed neuron's drive is zero)."""
    if keep is not None:
        drives = drives * keep
    return drives.max(axis=2).sum(axis=1)[:, :places]


def response_counts(systems: list[System], images: np.ndarray, rank: int, places: int,
                    chunk: int = 256, weight: np.ndarray | None = None) -> np.ndarray:
    """(systems, views, padded places): for how many of ``images`` (N, pixels) — the
    whole reference route — each neuron is among its system's ``rank`` most driven
    neurons (padding neurons never count). ``weight``: ``ensemble_weight(systems)`` if
    the caller has it already."""
    layout = layout_of(systems, places)
    weight = ensemble_weight(systems) if weight is None else weight
    counts = np.zeros((layout.systems, layout.views * layout.padded_places), np.int64)
    real = np.zeros((layout.views, layout.padded_places), bool)
    real[:, :places] = True
    real = real.ravel()
    k = min(rank, int(real.sum()))
    for start in range(0, len(images), chunk):
        d = neuron_drives(weight, images[start:start + chunk])
        d = np.where(real, d.reshape(len(d), layout.systems, -1), -np.inf)
        top = np.argpartition(-d, k - 1, axis=2)[..., :k]
        for s in range(layout.systems):
            np.add.at(counts[s], top[:, s].ravel(), 1)
    return counts.reshape(layout.systems, layout.views, layout.padded_places)


def choose_threshold(counts: np.ndarray, calibration_drives: np.ndarray, gt: np.ndarray,
                     places: int) -> int | None:
    """The removal threshold T with the best calibration Recall@1 (None: remove nothing).
    ``calibration_drives`` (N, systems, views, padded places), ``gt`` (N, places)."""
    best_t, best_r = None, recall_at_n(place_scores(calibration_drives, places), gt, (1,))[1]
    for t in sorted(set(counts.ravel().tolist()), reverse=True):
        if t < 1:
            break
        r = recall_at_n(place_scores(calibration_drives, places, counts < t), gt, (1,))[1]
        if r > best_r:
            best_t, best_r = int(t), r
    return best_t


def train_place_model(reference: np.ndarray, preprocessing: Preprocessing, *, systems: int = 3,
                      places_per_module: int = 275, config: ViewConfig = ViewConfig(),
                      seed: int = 0, calibration: tuple[np.ndarray, np.ndarray] | None = None,
                      workers: int | None = None, progress: bool = False) -> "PlaceModel":
    """Train an ensemble on ``reference`` (traverses, places, pixels) and choose the
    removal threshold on ``calibration`` = (queries (N, pixels), ground truth (N, places));
    without calibration data nothing is removed."""
    trained = train_systems(reference, preprocessing, systems, places_per_module, config, seed,
                            workers, progress)
    places = reference.shape[1]
    weight = ensemble_weight(trained)
    counts = response_counts(trained, reference.reshape(-1, reference.shape[2]),
                             config.response_rank, places, weight=weight)
    threshold = None
    if calibration is not None:
        queries, gt = calibration
        threshold = choose_threshold(counts, neuron_drives(weight, queries), gt, places)
    return PlaceModel(trained, preprocessing, places, config, counts, threshold, seed)


@dataclass
class PlaceModel:
    """A trained ensemble ready to save: systems, removal and what a query needs."""

    systems: list[System]
    preprocessing: Preprocessing
    places: int
    config: ViewConfig
    counts: np.ndarray            # (systems, views, padded places) responses on the reference route
    threshold: int | None         # removal threshold T (None: no removal)
    seed: int

    @property
    def keep(self) -> np.ndarray:
        if self.threshold is None:
            return np.ones_like(self.counts, dtype=bool)
        return self.counts < self.threshold

    def removed_per_module(self) -> np.ndarray:
        """(systems, modules) number of removed template neurons."""
        s, v, _ = self.counts.shape
        return (~self.keep).reshape(s, v, -1, self.systems[0].places_per_module).sum(axis=(1, 3))

    def to_model(self, removal: bool = True, systems: int | None = None) -> Model:
        """The ensemble (or its first ``systems`` systems) as a model file."""
        chosen = self.systems[:systems or len(self.systems)]
        keep = self.keep[:len(chosen)] if removal else None
        layout = layout_of(chosen, self.places)
        metadata = {
            "name": "place-ensemble", "task": TASK, "places": self.places,
            "preprocessing": self.preprocessing.to_metadata(),
            "module": self.config.to_metadata(), "systems": layout.systems,
            "views": layout.views, "modules_per_system": len(chosen[0].modules),
            "places_per_module": chosen[0].places_per_module, "seed": self.seed,
            "removal": {"threshold": self.threshold if removal else None,
                        "removed_per_module": self.removed_per_module()[:len(chosen)].tolist()
                        if removal else None},
        }
        return Model(build_graph(chosen, keep), metadata=metadata)


def quantize_place_model(model: Model, reference: np.ndarray) -> Model:
    """The model with int8 scales calibrated on ~256 images spread over ``reference``
    (traverses, places, pixels)."""
    flat = reference.reshape(-1, reference.shape[-1])
    return quantize(model, flat[::max(1, len(flat) // 256), None, :])


def place_metadata(model: Model) -> tuple[Layout, Preprocessing]:
    """Check a model is a place-recognition ensemble; its output layout and preprocessing."""
    meta = model.metadata
    if meta.get("task") != TASK:
        raise ModelFileError(f"not a place-recognition model (task {meta.get('task')!r}); "
                             "train one with: edgesnn vpr train")
    out = model.graph.nodes[model.graph.outputs()[0]].out_size
    values = [meta.get(k) for k in ("systems", "views", "modules_per_system", "places_per_module",
                                    "places")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ModelFileError("place-recognition metadata needs positive integers systems, views, "
                             f"modules_per_system, places_per_module and places; got {values}")
    systems, views, modules, per_module, places = values
    layout = Layout(systems, views, modules * per_module, places)
    if layout.outputs != out or places > layout.padded_places:
        raise ModelFileError(f"place-recognition metadata ({systems} systems x {views} views x "
                             f"{modules * per_module} places) does not fit the model's {out} "
                             f"outputs for {places} places")
    return layout, Preprocessing.from_metadata(meta.get("preprocessing"))


def similarity(program: Program, x: np.ndarray, layout: Layout, batch: int = 256) -> np.ndarray:
    """(N, pixels) preprocessed queries → (N, places) ensemble place scores."""
    out = np.empty((len(x), layout.places), np.float32)
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        y, _ = program.step(program.init_state(len(xb)), xb)  # stateless: one step per image
        drives = np.asarray(y, np.float32).reshape(len(xb), layout.systems, layout.views, -1)
        out[start:start + len(xb)] = place_scores(drives, layout.places)
    return out

"""Per-step latency of a model on each backend, and of the same network in snnTorch.

Each step is timed on its own (``perf_counter_ns`` around one call, batch 1, after a
warm-up), because a control loop pays per step, not per sequence.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from edgesnn.backends import get_backend
from edgesnn.errors import EdgesnnError, MissingExtraError, require
from edgesnn.ir import LIF, Affine, Graph, Input, Linear, Output
from edgesnn.modelfile import Model

SNNTORCH = "snntorch"


@dataclass
class BenchRow:
    backend: str
    median_us: float
    p99_us: float
    steps_per_s: float
    speedup: float = float("nan")  # baseline median / this median
    note: str = ""


def time_steps(step: Callable[[np.ndarray], object], xs: np.ndarray, warmup: int,
               progress: bool = False, desc: str = "") -> np.ndarray:
    """Nanoseconds per call of ``step`` on each row of ``xs`` (after ``warmup`` calls)."""
    from tqdm.auto import tqdm

    for x in xs[:warmup]:
        step(x)
    out = np.empty(len(xs), dtype=np.int64)
    clock = time.perf_counter_ns
    for i in tqdm(range(len(xs)), desc=desc, unit="step", disable=not progress, leave=False,
                  mininterval=0.5):
        t0 = clock()
        step(xs[i])
        out[i] = clock() - t0
    return out


def _row(name: str, ns: np.ndarray, note: str = "") -> BenchRow:
    return BenchRow(name, float(np.median(ns)) / 1e3, float(np.percentile(ns, 99)) / 1e3,
                    1e9 / float(ns.mean()), note=note)


def executor_stepper(model: Model, backend: str) -> Callable[[np.ndarray], np.ndarray]:
    ex = get_backend(backend)(model)
    state = [ex.init_state(1)]

    def step(x):
        y, state[0] = ex.step(state[0], x)
        return y
    return step


def snntorch_stepper(graph: Graph) -> Callable[[np.ndarray], np.ndarray]:
    """The same network as snnTorch layers (nn.Linear + snn.Leaky), stepped one sample at
    a time, the way a control loop would call it. Supports Affine/Linear → LIF chains."""
    torch = require("torch", "bench")
    snn = require("snntorch", "bench")
    layers = []
    name = graph.inputs()[0]
    while not isinstance(graph.nodes[name], Output):
        nxt = [d for s, d in graph.edges if s == name]
        if graph.recurrent or len(nxt) != 1:
            raise EdgesnnError("snnTorch comparison supports plain feed-forward chains only")
        name = nxt[0]
        node = graph.nodes[name]
        if isinstance(node, (Affine, Linear)):
            lin = torch.nn.Linear(node.in_size, node.out_size, bias=isinstance(node, Affine))
            lin.weight.data = torch.from_numpy(node.weight.copy())
            if isinstance(node, Affine):
                lin.bias.data = torch.from_numpy(node.bias.copy())
            layers.append(lin)
        elif isinstance(node, LIF):
            layers.append(snn.Leaky(beta=torch.from_numpy(node.beta.copy()),
                                    threshold=torch.from_numpy(node.threshold.copy()),
                                    reset_mechanism="subtract" if node.reset == "subtract"
                                    else "zero"))
        elif not isinstance(node, Output):
            raise EdgesnnError(f"snnTorch comparison does not support {type(node).__name__}")
    mems = [layer.init_leaky() if isinstance(layer, snn.Leaky) else None for layer in layers]

    @torch.no_grad()
    def step(x):
        h = torch.as_tensor(x)[None]
        for i, layer in enumerate(layers):
            if mems[i] is None:
                h = layer(h)
            else:
                h, mems[i] = layer(h, mems[i])
        return h[0].numpy()
    return step


def bench_model(model: Model, backends: Sequence[str], steps: int = 2000, warmup: int = 200,
                compare_snntorch: bool = True, seed: int = 0,
                progress: bool = False) -> list[BenchRow]:
    """Rows for each backend (and snnTorch when installed), with speed-up relative to
    snnTorch if it ran, else to the first backend."""
    n_in = model.graph.nodes[model.graph.inputs()[0]].size
    xs = np.random.default_rng(seed).normal(size=(steps + warmup, n_in)).astype(np.float32)
    rows = [_row(b, time_steps(executor_stepper(model, b), xs, warmup, progress, b))
            for b in backends]
    if compare_snntorch:
        try:
            stepper = snntorch_stepper(model.graph)
            torch = require("torch", "bench")
            torch.set_num_threads(1)
            rows.append(_row(SNNTORCH, time_steps(stepper, xs, warmup, progress, SNNTORCH),
                             note=f"torch {torch.__version__}, 1 thread"))
        except MissingExtraError as exc:
            rows.append(BenchRow(SNNTORCH, *(float("nan"),) * 3, note=f"skipped: {exc}"))
        except EdgesnnError as exc:
            rows.append(BenchRow(SNNTORCH, *(float("nan"),) * 3, note=f"skipped: {exc}"))
    timed = [r for r in rows if np.isfinite(r.median_us)]
    base = next((r for r in timed if r.backend == SNNTORCH), timed[0])
    for r in rows:
        r.speedup = base.median_us / r.median_us if np.isfinite(r.median_us) else float("nan")
    return rows


def format_table(rows: list[BenchRow]) -> str:
    base = next((r.backend for r in rows if r.speedup == 1.0), rows[0].backend)
    head = f"{'backend':<14}{'median µs':>11}{'p99 µs':>10}{'steps/s':>11}{'vs ' + base:>16}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        if np.isfinite(r.median_us):
            lines.append(f"{r.backend:<14}{r.median_us:>11.1f}{r.p99_us:>10.1f}"
                         f"{r.steps_per_s:>11.0f}{r.speedup:>15.2f}×  {r.note}")
        else:
            lines.append(f"{r.backend:<14}{'—':>11}{'—':>10}{'—':>11}{'—':>16}  {r.note}")
    return "\n".join(lines)


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for k, v in asdict(r).items()} for r in rows]

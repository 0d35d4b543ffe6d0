"""edgesnn models to and from NIR, the Neuromorphic Intermediate Representation.

NIR states neurons in continuous time (τ, R, v_leak, v_threshold, v_reset); edgesnn's
IR is discrete (decays β, α per step). They meet through the step length
``graph.dt`` and forward Euler, the discretisation snnTorch's and Norse's NIR
converters use (docs/nir.md derives it):

    β = 1 − dt/τ,   τ = dt / (1 − β),   input gain per step = R·dt/τ

edgesnn's populations have unit input gain, so R = τ/dt is written (as snnTorch does).

What NIR cannot state is refused, never approximated. The reset is the main case:
NIR's LIF resets its membrane to v_reset and keeps the next step's input, which
neither edgesnn reset does. So an edgesnn LIF (reset="subtract") is written as the
exact NIR circuit LI → Threshold with a Linear(−diag ϑ) loop back into the LI, in a
subgraph named after the node, and that subgraph imports as the LIF again. Reading a
NIR LIF node needs the caller to say it was trained with a reset by subtraction
(``reset="subtract"``): snnTorch writes every ``snn.Leaky`` as a NIR LIF, whatever
its reset mechanism.

NIR marks no delays. A reader gives each cycle one step of delay; edgesnn puts it on
the edge leaving the cycle's last neuron population (``delayed_edges``), as
snnTorch's recurrent layers run, and an exported edgesnn graph also records its
recurrent edges in the graph's metadata, which its import follows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesnn.errors import BackendError, EdgesnnError, ModelFileError, require
from edgesnn.ir import (LI, LIF, NEURONS, AdaptiveLIF, Affine, CubaLIF, Graph, GroupedLinear,
                        Input, Linear, Node, Output, SpikeEncoder, Threshold)
from edgesnn.modelfile import Model

if TYPE_CHECKING:
    import nir as nir_module

Edge = tuple[str, str]

DISCRETIZATION = "forward-euler"
# A writer that computes R = τ/dt in float32 (snnTorch does) gives an input gain
# R·dt/τ of 1 ± a few float32 roundings; within this tolerance it is read as exactly 1.
UNIT_GAIN_TOLERANCE = 1e-6
# Graph metadata written by edgesnn: node order, recurrent edges and the model's own
# metadata (JSON). It decides nothing NIR states; it only settles what NIR leaves open.
_HINT = "edgesnn"
_GROUPS = "edgesnn_groups"  # Linear metadata: this dense matrix is kron(I_groups, block)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _nir() -> "nir_module":
    return require("nir", "nir")


# ------------------------------------------------------------------------ dt conversion

def tau_from_decay(decay, dt: float) -> np.ndarray:
    """Time constants τ = dt / (1 − β) of per-step decays β (forward Euler); β = 1 gives ∞."""
    decay = np.asarray(decay, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return dt / (1.0 - decay)


def decay_from_tau(tau, dt: float) -> np.ndarray:
    """Per-step decays β = 1 − dt/τ of time constants τ (forward Euler), in float64."""
    return 1.0 - dt / np.asarray(tau, dtype=np.float64)


# ------------------------------------------------------------------------------ delays

def _holds_state(node: Node) -> bool:
    return node.spiking or isinstance(node, NEURONS)


def delayed_edges(nodes: dict[str, Node], edges: list[Edge]) -> list[Edge]:
    """The edges that carry their source's output of the previous step, one per cycle.

    A depth-first walk from the Input nodes (successors in name order, so the answer
    does not depend on the order of the edges) finds each cycle by the edge that closes
    it; the delay goes on the edge leaving the cycle's last neuron population before
    that point, or on the closing edge when the cycle has none. Everything after the
    population in the loop, biases included, then acts on its previous output, as in
    snnTorch's RLeaky (``mem = β mem + x + W s_{t-1} + b``).
    """
    successors = {name: sorted(d for s, d in edges if s == name) for name in nodes}
    status: dict[str, str] = {}
    path: list[str] = []
    delayed: list[Edge] = []

    def visit(name: str) -> None:
        status[name] = "open"
        path.append(name)
        for nxt in successors[name]:
            if status.get(nxt) == "open":
                loop = path[path.index(nxt):]
                cycle = list(zip(loop, loop[1:] + [nxt]))
                from_population = [e for e in cycle if _holds_state(nodes[e[0]])]
                edge = from_population[-1] if from_population else (name, nxt)
                if edge not in delayed:
                    delayed.append(edge)
            elif nxt not in status:
                visit(nxt)
        path.pop()
        status[name] = "done"

    for root in sorted(n for n, node in nodes.items() if isinstance(node, Input)) + sorted(nodes):
        if root not in status:
            visit(root)
    # a delay moved off a closing edge can leave another cycle through that edge
    # undelayed: those get theirs from a walk over the edges still undelayed
    rest = [e for e in edges if e not in delayed]
    if delayed and _has_cycle(nodes, rest):
        delayed += delayed_edges(nodes, rest)
    return delayed


def _has_cycle(nodes: dict[str, Node], edges: list[Edge]) -> bool:
    indegree = {n: sum(d == n for _, d in edges) for n in nodes}
    ready = [n for n, k in indegree.items() if k == 0]
    for name in ready:  # Kahn's algorithm; ``ready`` grows while it is read
        for src, dst in edges:
            if src == name:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
    return len(ready) < len(nodes)


def delays_from_metadata(graph: Graph) -> list[Edge]:
    """The recurrent edges ``delayed_edges`` would not choose. Only an exported file's
    edgesnn metadata records them; a NIR reader without it delays their cycle elsewhere."""
    expected = delayed_edges(graph.nodes, graph.edges + graph.recurrent)
    return sorted(set(graph.recurrent) - set(expected))


# ------------------------------------------------------------------------------ export

def _export_dt(graph: Graph) -> float:
    if graph.dt is None:
        raise BackendError(
            "NIR export needs the step length, and the model's graph.dt is not set: NIR's "
            "neurons are continuous-time (τ = dt / (1 − β)). Give it in seconds per step: "
            "edgesnn export --dt 0.001, or model.graph.dt = 0.001 in Python")
    return float(graph.dt)


def _reaches(edges: list[Edge], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        at = todo.pop()
        for src, dst in edges:
            if src == at and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return goal in seen


def _check_structure(graph: Graph) -> None:
    for name in graph.nodes:
        if "/" in name:
            raise BackendError(f"node {name!r}: NIR (HDF5) node names cannot contain '/'")
    for src, dst in graph.recurrent:
        if (src, dst) in graph.edges:
            raise BackendError(f"{src} -> {dst} is both a forward and a recurrent edge; NIR "
                               "holds one edge per pair of nodes")
        if not _reaches(graph.edges + graph.recurrent, dst, src):
            raise BackendError(
                f"recurrent edge {src} -> {dst} closes no cycle: NIR marks no delays, so every "
                "NIR reader would run it as a forward edge of the same step")


def _leak(owner: str, decay: np.ndarray, dt: float) -> "nir_module.NIRNode":
    """A unit-gain leaky integrator with per-step decays ``decay``: LI, or I when β = 1."""
    nir = _nir()
    decay = decay.astype(np.float64)  # τ in float64, so that 1 − dt/τ gives β back exactly
    if np.all(decay == 1.0):
        return nir.I(r=np.full(decay.shape, 1.0 / dt))
    if np.any(decay == 1.0):
        raise BackendError(
            f"{owner}: decays of 1 (no leak, τ = ∞) beside decays below 1 in one population. "
            "NIR's LI cannot hold τ = ∞ with unit input gain and its integrator I has no leak, "
            "so this population has no exact NIR form (use decays below 1, or split it)")
    tau = tau_from_decay(decay, dt)
    return nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros_like(tau))


def _spiking(stages: dict[str, "nir_module.NIRNode"], size_in: int,
             threshold: np.ndarray) -> "nir_module.NIRGraph":
    """``stages`` in a chain ending at the membrane, then a Threshold whose spikes
    subtract ϑ from the membrane one step later: edgesnn's reset="subtract", exactly."""
    nir = _nir()
    names = list(stages)
    threshold = threshold.astype(np.float64)
    nodes = {"input": nir.Input(input_type={"input": np.array([size_in])}), **stages,
             "spike": nir.Threshold(threshold=threshold),
             "reset": nir.Linear(weight=-np.diag(threshold)),
             "output": nir.Output(output_type={"output": np.array([threshold.size])})}
    chain = ["input", *names, "spike"]
    edges = list(zip(chain, chain[1:])) + [("spike", "reset"), ("reset", names[-1]),
                                           ("spike", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={})


def _export_node(name: str, node: Node, dt: float) -> "nir_module.NIRNode":
    nir = _nir()
    owner = f"node {name!r} ({type(node).__name__})"
    if isinstance(node, Input):
        return nir.Input(input_type={"input": np.array([node.size])})
    if isinstance(node, Output):
        return nir.Output(output_type={"output": np.array([node.size])})
    if isinstance(node, Affine):
        return nir.Affine(weight=node.weight, bias=node.bias)
    if isinstance(node, Linear):
        return nir.Linear(weight=node.weight)
    if isinstance(node, GroupedLinear):
        dense = np.kron(np.eye(node.groups, dtype=np.float32), node.weight)
        return nir.Linear(weight=dense, metadata={_GROUPS: node.groups})
    if isinstance(node, LI):
        return _leak(owner, node.beta, dt)
    if isinstance(node, Threshold):
        return nir.Threshold(threshold=node.threshold)
    if isinstance(node, AdaptiveLIF):
        raise BackendError(
            f"{owner}: its threshold rises with its own spike trace and its reset subtracts "
            "that moving threshold, a product of two signals that no NIR primitive computes; "
            "NIR cannot hold it exactly, so it is not exported")
    if node.reset != "subtract":
        raise BackendError(
            f"{owner} uses reset={node.reset!r}, which zeroes the membrane and drops the next "
            "step's input; NIR's reset to v_reset keeps that input and no NIR circuit drops "
            "it, so only reset='subtract' is exported")
    if isinstance(node, LIF):
        return _spiking({"mem": _leak(owner, node.beta, dt)}, node.size, node.threshold)
    if isinstance(node, CubaLIF):
        return _spiking({"syn": _leak(owner, node.alpha, dt), "mem": _leak(owner, node.beta, dt)},
                        node.size, node.threshold)
    if isinstance(node, SpikeEncoder):
        # channel c drives neurons c·P … c·P+P−1: a (C·P × C) matrix, one weight per row
        rows = np.arange(node.out_size)
        expanded = np.zeros((node.out_size, node.channels), np.float32)
        expanded[rows, rows // node.population] = node.weight
        return _spiking({"current": nir.Affine(weight=expanded, bias=node.bias),
                         "mem": _leak(owner, node.beta, dt)}, node.channels, node.threshold)
    raise BackendError(f"{owner}: no NIR mapping")


def to_nir(model: Model) -> "nir_module.NIRGraph":
    """The model's float graph as a NIR graph (NIR has no place for the quantization)."""
    from edgesnn import __version__

    nir = _nir()
    graph = model.graph
    dt = _export_dt(graph)
    _check_structure(graph)
    try:
        hint = json.dumps({"nodes": list(graph.nodes), "recurrent": graph.recurrent,
                           "metadata": model.metadata}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackendError(f"model metadata must be JSON values: {exc}") from None
    nodes = {name: _export_node(name, node, dt) for name, node in graph.nodes.items()}
    # forward edges, then recurrent ones, each in the graph's order (kept by the reader)
    edges = [tuple(e) for e in graph.edges + graph.recurrent]
    metadata = {"dt": dt, "discretization": DISCRETIZATION, "producer": f"edgesnn {__version__}",
                _HINT: hint}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _count(graph: "nir_module.NIRGraph") -> Counter:
    counts: Counter = Counter()
    for node in graph.nodes.values():
        counts[type(node).__name__] += 1
        if isinstance(node, _nir().NIRGraph):
            counts += _count(node)
    return counts


def export_nir(model: Model, path: str | Path) -> dict[str, Any]:
    """Writes ``model`` as a NIR (HDF5) file; returns what was written: node types and
    count (subgraphs' nodes included), dt, and the recurrent edges only edgesnn's
    metadata places (``delays_from_metadata``)."""
    nir = _nir()
    graph = to_nir(model)
    path = Path(path)
    try:
        nir.write(path, graph)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write ({exc})") from None
    counts = _count(graph)
    return {"path": str(path), "dt": graph.metadata["dt"], "discretization": DISCRETIZATION,
            "nodes": sum(counts.values()), "node_types": dict(sorted(counts.items())),
            "quantization_dropped": model.quantization is not None,
            "delays_from_metadata": [list(e) for e in delays_from_metadata(model.graph)],
            "bytes": path.stat().st_size}


# ------------------------------------------------------------------------------ import

def _read(path: Path) -> "nir_module.NIRGraph":
    nir = _nir()
    if not path.exists():
        raise ModelFileError(f"{path}: no such NIR file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a NIR file")
    with path.open("rb") as f:
        head = f.read(len(_HDF5_SIGNATURE))
    if head != _HDF5_SIGNATURE:
        raise ModelFileError(f"{path}: not a NIR file "
                             f"({'empty file' if not head else 'no HDF5 signature'})")
    try:
        graph = nir.read(path)
    # h5py and NIR's node constructors fail on a damaged or foreign file with many
    # exception types (OSError, KeyError, ValueError, AssertionError, ...)
    except Exception as exc:  # noqa: BLE001
        detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise ModelFileError(f"{path}: corrupt or not a NIR graph ({detail})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ModelFileError(f"{path}: holds a NIR {type(graph).__name__}, not a NIRGraph")
    return graph


def _vector(name: str, value, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ModelFileError(f"NIR node {name!r}: {what} has shape {arr.shape}; edgesnn needs "
                             "one value per neuron (a 1-D array)")
    return arr


def _matrix(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 2:
        raise ModelFileError(f"NIR node {name!r}: weight has shape {arr.shape}; edgesnn reads "
                             "2-D (out, in) matrices")
    return arr


def _size(name: str, types: dict) -> int:
    shapes = [np.asarray(s).ravel() for s in (types or {}).values()]
    if len(shapes) != 1 or shapes[0].size != 1:
        raise ModelFileError(f"NIR node {name!r} has shape {[s.tolist() for s in shapes]}; "
                             "edgesnn reads one 1-D input and output")
    return int(shapes[0][0])


def _zero(name: str, node, *fields: str) -> None:
    for f in fields:
        if np.any(np.asarray(getattr(node, f), dtype=np.float64) != 0):
            raise ModelFileError(f"NIR node {name!r} ({type(node).__name__}) has a non-zero "
                                 f"{f}; edgesnn's neurons rest at 0 and reset from 0")


def _gain(gain: np.ndarray) -> np.ndarray | None:
    return None if np.all(np.abs(gain - 1.0) <= UNIT_GAIN_TOLERANCE) else gain


def _linear(name: str, node) -> Linear | GroupedLinear:
    """A Linear, or the GroupedLinear it was written from when the matrix is exactly one
    block repeated down the diagonal (the metadata only says which block size to try)."""
    weight = _matrix(name, node.weight)
    groups = int(np.asarray(node.metadata.get(_GROUPS, 1)))
    if groups > 1 and weight.shape[0] % groups == 0 and weight.shape[1] % groups == 0:
        block = weight[:weight.shape[0] // groups, :weight.shape[1] // groups]
        if np.array_equal(np.kron(np.eye(groups, dtype=np.float32), block), weight):
            return GroupedLinear(groups, block)
    return Linear(weight)


def _encoder(affine, decay: np.ndarray, threshold: np.ndarray) -> SpikeEncoder | None:
    """The SpikeEncoder whose current Affine is ``affine``, if it has that shape."""
    weight = np.asarray(affine.weight, dtype=np.float32)
    rows, channels = weight.shape
    if rows % channels:
        return None
    population = rows // channels
    index = (np.arange(rows), np.arange(rows) // population)
    expanded = np.zeros_like(weight)
    expanded[index] = weight[index]
    if not np.array_equal(expanded, weight):
        return None
    return SpikeEncoder(channels, population, weight[index], np.asarray(affine.bias), decay,
                        threshold)


class _Importer:
    """NIR nodes → edgesnn nodes, flattening the subgraphs it does not recognise."""

    def __init__(self, dt: float, reset: str | None):
        self.dt = dt
        self.reset = reset
        self.nodes: dict[str, Node | None] = {}  # None: a subgraph's Input/Output, contracted
        self.edges: list[Edge] = []

    def _decay(self, name: str, tau: np.ndarray, what: str) -> np.ndarray:
        decay = decay_from_tau(tau, self.dt)
        if np.any(decay < 0) or np.any(decay > 1):
            raise ModelFileError(
                f"NIR node {name!r}: {what} must be at least dt = {self.dt:g} s for a decay "
                f"1 − dt/τ in [0, 1]; its smallest is {np.min(tau):g} s — import with a "
                "smaller dt")
        return decay

    def _leak(self, name: str, node) -> tuple[np.ndarray, np.ndarray | None]:
        """(β, input gain or None when it is 1) of an LI, LIF, I or IF node."""
        nir = _nir()
        r = _vector(name, node.r, "r")
        if isinstance(node, (nir.I, nir.IF)):  # v_t = v_{t-1} + dt·R·I_t
            return np.ones_like(r), _gain(r * self.dt)
        _zero(name, node, "v_leak")
        tau = _vector(name, node.tau, "tau")
        return self._decay(name, tau, "tau"), _gain(r * self.dt / tau)

    def _cuba(self, name: str, node) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(α, β, input gain or None) of a CubaLI or CubaLIF node. In
        I_t = α I_{t-1} + (w_in·dt/τ_syn) x_t, v_t = β v_{t-1} + (R·dt/τ_mem) I_t both
        gains scale the input of a linear filter, so they act as one gain on x_t."""
        _zero(name, node, "v_leak")
        tau_syn = _vector(name, node.tau_syn, "tau_syn")
        tau_mem = _vector(name, node.tau_mem, "tau_mem")
        gain = (_vector(name, node.w_in, "w_in") * self.dt / tau_syn
                * _vector(name, node.r, "r") * self.dt / tau_mem)
        return (self._decay(name, tau_syn, "tau_syn"), self._decay(name, tau_mem, "tau_mem"),
                _gain(gain))

    def _threshold(self, name: str, node) -> np.ndarray:
        if self.reset != "subtract":
            raise ModelFileError(
                f"NIR node {name!r} is a {type(node).__name__}: it resets to v_reset and keeps "
                "the next step's input, which no edgesnn reset does exactly. Import with "
                "reset='subtract' if it was trained with a reset by subtraction — snnTorch "
                "writes every snn.Leaky/Synaptic as this node whatever its reset_mechanism, "
                "and its default is 'subtract'")
        _zero(name, node, "v_reset")
        return _vector(name, node.v_threshold, "v_threshold")

    def _put(self, name: str, node: Node | None) -> None:
        if name in self.nodes:
            raise ModelFileError(f"the NIR graph flattens to two nodes named {name!r}")
        self.nodes[name] = node

    def _with_gain(self, name: str, node: Node, gain: np.ndarray | None) -> tuple[str, str]:
        """``node``, behind a diagonal Linear when its input gain is not 1."""
        self._put(name, node)
        if gain is None:
            return name, name
        self._put(f"{name}.gain", Linear(np.diag(gain)))
        self.edges.append((f"{name}.gain", name))
        return f"{name}.gain", name

    def add(self, name: str, node) -> tuple[str, str]:
        """Adds ``node``; returns the names its incoming and outgoing edges attach to."""
        nir = _nir()
        if isinstance(node, nir.NIRGraph):
            converted = self._fuse(name, node)
            if converted is None:
                return self._flatten(name, node)
        elif isinstance(node, nir.Input):
            converted = Input(_size(name, node.input_type))
        elif isinstance(node, nir.Output):
            converted = Output(_size(name, node.output_type))
        elif isinstance(node, nir.Affine):
            converted = Affine(_matrix(name, node.weight), _vector(name, node.bias, "bias"))
        elif isinstance(node, nir.Linear):
            converted = _linear(name, node)
        elif isinstance(node, nir.Scale):
            converted = Linear(np.diag(_vector(name, node.scale, "scale")))
        elif isinstance(node, nir.Threshold):
            threshold = _vector(name, node.threshold, "threshold")
            converted = Threshold(threshold.size, threshold)
        elif isinstance(node, (nir.LI, nir.I)):
            beta, gain = self._leak(name, node)
            return self._with_gain(name, LI(beta.size, beta), gain)
        elif isinstance(node, (nir.LIF, nir.IF)):
            threshold = self._threshold(name, node)
            beta, gain = self._leak(name, node)
            return self._with_gain(name, LIF(beta.size, beta, threshold), gain)
        elif isinstance(node, nir.CubaLIF):
            threshold = self._threshold(name, node)
            alpha, beta, gain = self._cuba(name, node)
            return self._with_gain(name, CubaLIF(beta.size, alpha, beta, threshold), gain)
        elif isinstance(node, nir.CubaLI):
            alpha, beta, gain = self._cuba(name, node)
            entry, _ = self._with_gain(f"{name}.syn", LI(alpha.size, alpha), gain)
            self._put(name, LI(beta.size, beta))
            self.edges.append((f"{name}.syn", name))
            return entry, name
        else:
            raise ModelFileError(
                f"NIR node {name!r} is a {type(node).__name__}, which edgesnn cannot import: it "
                "reads Input, Output, Affine, Linear, Scale, Threshold, LI, I, CubaLI, LIF, IF, "
                "CubaLIF and subgraphs of these (1-D populations; no convolution, pooling, "
                "reshape or delay)")
        self._put(name, converted)
        return name, name

    def connect(self, attach: dict[str, tuple[str, str]], edges, where: str) -> None:
        for src, dst in edges:
            if src not in attach or dst not in attach:
                raise ModelFileError(f"{where}: edge {src} -> {dst} names an unknown node")
            self.edges.append((attach[src][1], attach[dst][0]))

    def _flatten(self, name: str, sub) -> tuple[str, str]:
        nir = _nir()
        ends = []
        for kind in (nir.Input, nir.Output):
            found = [k for k, n in sub.nodes.items() if isinstance(n, kind)]
            if len(found) != 1:
                raise ModelFileError(f"NIR subgraph {name!r} has {len(found)} {kind.__name__} "
                                     "nodes; edgesnn reads subgraphs with one of each")
            ends += found
        attach = {}
        for key, node in sub.nodes.items():
            if key in ends:
                self._put(f"{name}.{key}", None)
                attach[key] = (f"{name}.{key}",) * 2
            else:
                attach[key] = self.add(f"{name}.{key}", node)
        self.connect(attach, sub.edges, f"NIR subgraph {name!r}")
        return attach[ends[0]][0], attach[ends[1]][1]

    def _fuse(self, name: str, sub) -> Node | None:
        """The edgesnn population whose exact NIR circuit ``sub`` is (see ``_spiking``):
        Input → stages → Threshold → Output, and Threshold → Linear(−diag ϑ) → membrane."""
        nir = _nir()
        nodes = sub.nodes

        def only(kind) -> str | None:
            found = [k for k, n in nodes.items() if isinstance(n, kind)]
            return found[0] if len(found) == 1 else None

        inp, out, spike = only(nir.Input), only(nir.Output), only(nir.Threshold)
        if None in (inp, out, spike):
            return None
        succ = {k: sorted(d for s, d in sub.edges if s == k) for k in nodes}
        stages, at = [], inp
        while len(succ[at]) == 1 and succ[at][0] != spike and len(stages) < 2:
            at = succ[at][0]
            stages.append(at)
        reset = next((k for k in succ[spike] if k != out), None)
        if not stages or reset is None or len(nodes) != len(stages) + 4:
            return None
        chain = [inp, *stages, spike]
        expected = list(zip(chain, chain[1:])) + [(spike, reset), (reset, stages[-1]), (spike, out)]
        if sorted(tuple(e) for e in sub.edges) != sorted(expected):
            return None
        threshold = np.asarray(nodes[spike].threshold, dtype=np.float64)
        if not isinstance(nodes[reset], nir.Linear) or threshold.ndim != 1 or not np.array_equal(
                np.asarray(nodes[reset].weight, dtype=np.float64), -np.diag(threshold)):
            return None
        leaky = [isinstance(nodes[k], (nir.LI, nir.I)) for k in stages]
        if not leaky[-1]:
            return None
        leaks = [self._leak(f"{name}.{k}", nodes[k])
                 for k, is_leak in zip(stages, leaky) if is_leak]
        if any(gain is not None for _, gain in leaks):
            return None  # a scaled input: imported node by node instead
        decays = [decay for decay, _ in leaks]
        if len(stages) == 1:
            return LIF(threshold.size, decays[0], threshold)
        if all(leaky):
            return CubaLIF(threshold.size, decays[0], decays[1], threshold)
        if isinstance(nodes[stages[0]], nir.Affine):
            return _encoder(nodes[stages[0]], decays[0], threshold)
        return None


def _contract(nodes: dict[str, Node | None],
              edges: list[Edge]) -> tuple[dict[str, Node], list[Edge]]:
    """Removes the subgraphs' Input/Output pass-throughs, joining sources to targets."""
    for name in [n for n, node in nodes.items() if node is None]:
        sources = [s for s, d in edges if d == name]
        targets = [d for s, d in edges if s == name]
        edges = [e for e in edges if name not in e] + [(s, d) for s in sources for d in targets]
    return {n: node for n, node in nodes.items() if node is not None}, edges


def _import_dt(metadata: dict, dt: float | None, where: str) -> float:
    value = dt if dt is not None else metadata.get("dt")
    if value is None:
        raise ModelFileError(
            f"{where}: no dt in the NIR graph's metadata; pass dt (seconds per step) to turn "
            "its time constants into per-step decays β = 1 − dt/τ (files from snnTorch: "
            "dt=1e-4, the step its exporter converts with)")
    try:
        value = float(np.asarray(value))
    except (TypeError, ValueError):
        raise ModelFileError(f"{where}: dt must be a number of seconds; got {value!r}") from None
    if not 0 < value < float("inf"):
        raise ModelFileError(f"{where}: dt must be a positive number of seconds; got {value!r}")
    return value


def _hint(metadata: dict, where: str) -> dict:
    raw = metadata.get(_HINT)
    if raw is None:
        return {}
    try:
        hint = json.loads(str(raw))
    except ValueError:
        hint = None
    if not (isinstance(hint, dict) and isinstance(hint.get("nodes", []), list)
            and isinstance(hint.get("metadata", {}), dict)
            and all(isinstance(e, list) and len(e) == 2 and all(isinstance(n, str) for n in e)
                    for e in hint.get("recurrent", []))):
        raise ModelFileError(f"{where}: damaged edgesnn metadata in the NIR graph")
    return hint


def import_nir(source: "str | Path | nir_module.NIRGraph", dt: float | None = None,
               reset: str | None = None) -> Model:
    """A float edgesnn model from a NIR file or an in-memory NIR graph.

    ``dt`` (seconds per step) overrides the graph's metadata ``dt`` and is required
    when it has none. ``reset="subtract"`` reads NIR LIF, IF and CubaLIF nodes as
    resetting by subtraction (how snnTorch's default Leaky runs); without it they are
    refused, since NIR's reset to v_reset has no exact edgesnn form.
    """
    nir = _nir()
    if reset not in (None, "subtract"):
        raise ModelFileError(f"reset must be None or 'subtract'; got {reset!r}")
    if isinstance(source, nir.NIRGraph):
        graph, where = source, "NIR graph"
    else:
        graph, where = _read(Path(source)), str(source)
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    step = _import_dt(metadata, dt, where)
    hint = _hint(metadata, where)
    importer = _Importer(step, reset)
    try:
        attach = {name: importer.add(name, node) for name, node in graph.nodes.items()}
        importer.connect(attach, graph.edges, "the graph")
        nodes, edges = _contract(importer.nodes, importer.edges)
        order = hint.get("nodes", [])
        if sorted(order) == sorted(nodes):
            nodes = {name: nodes[name] for name in order}
        hinted = [tuple(e) for e in hint.get("recurrent", [])]
        if "recurrent" in hint and all(e in edges for e in hinted):
            delayed = hinted  # an edgesnn file: the delays exactly where they were
        else:
            delayed = delayed_edges(nodes, edges)
        forward = [e for e in edges if e not in delayed]
        recurrent = [e for e in edges if e in delayed]  # in the file's order
        imported = Graph(nodes, forward, recurrent, dt=step)
    except ModelFileError as exc:
        raise ModelFileError(f"{where}: {exc}") from None
    except EdgesnnError as exc:
        raise ModelFileError(f"{where}: not a valid edgesnn graph: {exc}") from None
    return Model(imported, metadata=hint.get("metadata", {}))

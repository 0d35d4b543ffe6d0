"""A graph of named IR nodes, validated at construction.

A node's input is the sum of its incoming edges. A forward edge carries the source's
output of the current step; a recurrent edge carries the source's output of the
previous step (zero at the first step), so only recurrent edges may close a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgesnn.errors import GraphError
from edgesnn.ir.nodes import Input, Node, Output

Edge = tuple[str, str]


@dataclass(eq=False)
class Graph:
    nodes: dict[str, Node]
    edges: list[Edge]
    recurrent: list[Edge] = field(default_factory=list)
    dt: float | None = None  # seconds per step; metadata, the equations are discrete
    order: list[str] = field(init=False, repr=False)

    def __post_init__(self):
        self.nodes = dict(self.nodes)
        self.edges = [tuple(e) for e in self.edges]
        self.recurrent = [tuple(e) for e in self.recurrent]
        self._validate()
        self.order = self._topological_order()

    # -- queries -------------------------------------------------------------
    def inputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Input)]

    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Output)]

    def predecessors(self, name: str) -> list[tuple[str, bool]]:
        """(source, is_recurrent) pairs feeding ``name``, forward edges first."""
        return ([(s, False) for s, d in self.edges if d == name]
                + [(s, True) for s, d in self.recurrent if d == name])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (list(self.nodes) == list(other.nodes)
                and all(self.nodes[k] == other.nodes[k] for k in self.nodes)
                and self.edges == other.edges and self.recurrent == other.recurrent
                and self.dt == other.dt)

    # -- validation ------------------------------------------------------------
    def _validate(self) -> None:
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name:
                raise GraphError(f"node names must be non-empty strings; got {name!r}")
            if not isinstance(node, Node):
                raise GraphError(f"node {name!r} is a {type(node).__name__}, not an IR node")
        if self.dt is not None:
            try:
                self.dt = float(self.dt)
            except (TypeError, ValueError):
                raise GraphError(f"dt must be a number of seconds; got {self.dt!r}") from None
            if not (0 < self.dt < float("inf")):
                raise GraphError(f"dt must be a positive number of seconds; got {self.dt!r}")
        if not self.inputs():
            raise GraphError("graph has no Input node")
        if not self.outputs():
            raise GraphError("graph has no Output node")
        seen: set[tuple[Edge, bool]] = set()
        for kind, edges in (("edge", self.edges), ("recurrent edge", self.recurrent)):
            for edge in edges:
                if len(edge) != 2:
                    raise GraphError(f"{kind} {edge!r} must be a (source, destination) pair")
                src, dst = edge
                for end in (src, dst):
                    if end not in self.nodes:
                        raise GraphError(f"{kind} {src} -> {dst}: unknown node {end!r}")
                if (edge, kind == "edge") in seen:
                    raise GraphError(f"{kind} {src} -> {dst} appears twice")
                seen.add((edge, kind == "edge"))
                if isinstance(self.nodes[dst], Input):
                    raise GraphError(f"{kind} {src} -> {dst}: an Input node cannot receive edges")
                if isinstance(self.nodes[src], Output):
                    raise GraphError(f"{kind} {src} -> {dst}: an Output node cannot send edges")
                produced, taken = self.nodes[src].out_size, self.nodes[dst].in_size
                if produced != taken:
                    raise GraphError(f"{kind} {src} -> {dst}: shape mismatch, {src!r} produces "
                                     f"{produced} values but {dst!r} takes {taken}")
        all_edges = self.edges + self.recurrent
        for name, node in self.nodes.items():
            if not isinstance(node, Input) and not any(d == name for _, d in all_edges):
                raise GraphError(f"node {name!r} has no incoming edge (dangling)")
            if not isinstance(node, Output) and not any(s == name for s, _ in all_edges):
                raise GraphError(f"node {name!r} has no outgoing edge (dangling)")

    def _topological_order(self) -> list[str]:
        indegree = {n: 0 for n in self.nodes}
        for _, dst in self.edges:
            indegree[dst] += 1
        order: list[str] = []
        ready = [n for n in self.nodes if indegree[n] == 0]
        while ready:
            name = ready.pop(0)
            order.append(name)
            for src, dst in self.edges:
                if src == name:
                    indegree[dst] -= 1
                    if indegree[dst] == 0:
                        ready.append(dst)
        if len(order) != len(self.nodes):
            stuck = [n for n in self.nodes if n not in order]
            raise GraphError(f"cycle without a delay through {', '.join(stuck)}: "
                             "mark one edge of the cycle as recurrent")
        return order

    def describe(self) -> list[dict[str, Any]]:
        """One row per node in execution order: name, type, sizes, parameter count."""
        return [{"name": n, "type": type(self.nodes[n]).__name__,
                 "in": self.nodes[n].in_size, "out": self.nodes[n].out_size,
                 "params": sum(a.size for a in self.nodes[n].arrays().values())}
                for n in self.order]

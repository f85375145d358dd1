"""Lineage: what each artefact came from and what it fed.

Nodes are ``(kind, id)`` pairs; :data:`NODE_KINDS` lists the kinds. Edges are written by the cycle as it goes
(``user -> dataset``, ``event -> dataset``, ``dataset -> model``, ``model -> collection``, ``collection ->
deployment``, ``model -> deployment``, ``cycle -> model`` ...). :class:`Lineage` walks them both ways, transitively,
so "which models saw this user's data" (downstream of ``user/<id>``) and "what trained the live embedder" (upstream
of ``model/embedder:vN``) have answers.

Ids: datasets ``{kind}:v{n}`` (``contrastive:v3``), models ``{kind}:{version}`` (``embedder:v2``), collections their
physical name (``faq__v4``), events / users / deployments / cycles / jobs their own ids.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInputError, NotFoundError
from flywheel.state import LineageEdge, StateStore

NODE_KINDS = ("event", "user", "query", "dataset", "model", "collection", "deployment", "cycle")
MAX_DEPTH = 8


def dataset_node(kind: str, version: int) -> str:
    """Lineage id of a dataset version."""
    return f"{kind}:v{version}"


def model_node(kind: str, version: str) -> str:
    """Lineage id of a registered model version."""
    return f"{kind}:{version}"


@dataclass(slots=True)
class LineageNode:
    """One node reached from the start, with the relation and the distance (1 = direct)."""

    kind: str
    id: str
    relation: str
    depth: int
    via: str | None = None


@dataclass(slots=True)
class LineageReport:
    """What ``kind/id`` came from (``upstream``) and what it fed (``downstream``), transitively."""

    kind: str
    id: str
    upstream: list[LineageNode] = field(default_factory=list)
    downstream: list[LineageNode] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the API / CLI."""
        from dataclasses import asdict

        return {
            "kind": self.kind,
            "id": self.id,
            "upstream": [asdict(n) for n in self.upstream],
            "downstream": [asdict(n) for n in self.downstream],
        }


class Lineage:
    """Records and answers lineage questions over the state store's edge table."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def link(self, from_kind: str, from_id: str, to_kind: str, to_id: str, *, relation: str) -> None:
        """Record that ``from`` fed ``to`` (idempotent)."""
        self.link_many([(from_kind, from_id)], to_kind, to_id, relation=relation)

    def link_many(self, sources: list[tuple[str, str]], to_kind: str, to_id: str, *, relation: str) -> int:
        """Record many sources feeding one target; returns how many edges were new."""
        for kind in {k for k, _ in sources} | {to_kind}:
            _check_kind(kind)
        edges = [LineageEdge(k, i, to_kind, to_id, relation) for k, i in sources]
        return self.state.add_edges(edges)

    def trace(self, kind: str, node_id: str, *, depth: int = MAX_DEPTH) -> LineageReport:
        """Upstream and downstream of a node, breadth-first up to ``depth`` hops.

        Raises ``InvalidInputError`` for an unknown kind and ``NotFoundError`` when the node has no edges at all.
        """
        _check_kind(kind)
        report = LineageReport(kind=kind, id=node_id)
        report.upstream = self._walk(kind, node_id, depth=depth, upstream=True)
        report.downstream = self._walk(kind, node_id, depth=depth, upstream=False)
        if not report.upstream and not report.downstream:
            raise NotFoundError(f"no lineage recorded for {kind}/{node_id}", kind=kind, id=node_id)
        return report

    def _walk(self, kind: str, node_id: str, *, depth: int, upstream: bool) -> list[LineageNode]:
        seen = {(kind, node_id)}
        queue: deque[tuple[str, str, int]] = deque([(kind, node_id, 0)])
        found: list[LineageNode] = []
        while queue:
            cur_kind, cur_id, dist = queue.popleft()
            if dist >= depth:
                continue
            edges = self.state.edges_to(cur_kind, cur_id) if upstream else self.state.edges_from(cur_kind, cur_id)
            for edge in edges:
                nxt = (edge.from_kind, edge.from_id) if upstream else (edge.to_kind, edge.to_id)
                if nxt in seen:
                    continue
                seen.add(nxt)
                via = None if dist == 0 else f"{cur_kind}/{cur_id}"
                found.append(LineageNode(kind=nxt[0], id=nxt[1], relation=edge.relation, depth=dist + 1, via=via))
                queue.append((nxt[0], nxt[1], dist + 1))
        return found


def _check_kind(kind: str) -> None:
    if kind not in NODE_KINDS:
        raise InvalidInputError(f"unknown lineage kind {kind!r}; expected one of {list(NODE_KINDS)}", field="kind")

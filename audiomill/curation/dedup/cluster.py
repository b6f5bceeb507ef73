"""Turn verified duplicate edges into clusters and decide which segment of each cluster stays.

Symmetric edges (same PCM, near-duplicate audio, near-duplicate transcript) are joined with
union-find, in three nested levels so a dropped segment's reason names the closest link it has to
the segment kept: ``duplicate_exact`` if it is in the kept one's exact group, else
``duplicate_audio``, else ``duplicate_text``. Containment edges (A is inside a longer B) are not
joined, because two long recordings that share one clip are not duplicates of each other; instead
A's whole cluster is dropped in favour of B's. Clusters are ranked by (longest member, key), and
containment only points up that order, so chains resolve and cycles cannot form.

Inside a cluster the kept segment has the highest keep score (``keep_score.py``: bandwidth, SNR,
clipping, source codec/bitrate, MOS where computed), then the longest duration, then the smallest
key. A dropped segment that has a byte-identical (same PCM) twin is always ``duplicate_exact``. Segments from the cross-run index (``external``) were
kept by an earlier run: they always win and are never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from audiomill.curation.dedup.match import Relation
from audiomill.schema import RejectReason

EXACT, AUDIO, TEXT = "exact", "audio", "text"
_LEVELS = (EXACT, AUDIO, TEXT)
_REASONS = {EXACT: RejectReason.DUPLICATE_EXACT, AUDIO: RejectReason.DUPLICATE_AUDIO,
            TEXT: RejectReason.DUPLICATE_TEXT}


@dataclass(frozen=True)
class Node:
    key: str
    duration_s: float
    score: float | None = None  # higher is better; None when no quality column is present
    external: bool = False  # from the cross-run index: already kept elsewhere


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    kind: str  # EXACT, AUDIO or TEXT
    relation: Relation = Relation.SAME


@dataclass(frozen=True)
class Decision:
    key: str
    cluster_id: str  # key of the segment the cluster resolves to
    kept: bool
    reason: str | None = None  # RejectReason value when dropped
    duplicate_of: str | None = None
    detail: str | None = None


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def keep_order(node: Node) -> tuple:
    """Sort key: the first node in this order is the one to keep."""
    score = node.score if node.score is not None and math.isfinite(node.score) else -math.inf
    return (not node.external, -score, -node.duration_s, node.key)


def resolve(nodes: dict[str, Node], edges: Iterable[Edge]) -> dict[str, Decision]:
    """Decisions for every node that takes part in an edge; other nodes are simply kept."""
    levels = {level: UnionFind() for level in _LEVELS}
    containment: list[Edge] = []
    for edge in sorted(set(edges), key=lambda e: (e.a, e.b, e.kind, e.relation.value)):
        if edge.relation is not Relation.SAME:
            containment.append(edge)
            continue
        for level in _LEVELS[_LEVELS.index(edge.kind):]:
            levels[level].union(edge.a, edge.b)
    for edge in containment:
        for level in _LEVELS:
            levels[level].find(edge.a), levels[level].find(edge.b)
    final = levels[TEXT]
    members: dict[str, list[str]] = {}
    for key in sorted(final.parent):
        members.setdefault(final.find(key), []).append(key)
    best = {root: min((nodes[k] for k in keys), key=keep_order).key for root, keys in members.items()}
    rank = {root: (max(nodes[k].duration_s for k in keys), best[root]) for root, keys in members.items()}
    target = _containment_targets(nodes, containment, final, rank)
    resolved: dict[str, str] = {}
    for root in sorted(members, key=lambda r: rank[r], reverse=True):
        resolved[root] = resolved[target[root]] if root in target else root
    twins = _exact_twins(nodes, levels[EXACT])
    decisions = {}
    for root, keys in members.items():
        keeper = best[resolved[root]]
        for key in keys:
            decisions[key] = _decide(nodes[key], keeper, root != resolved[root], levels, twins.get(key))
    return {k: d for k, d in decisions.items() if not nodes[k].external}


def _exact_twins(nodes: dict[str, Node], exact: UnionFind) -> dict[str, str]:
    """Key -> the best other member of its exact-PCM group (only for keys that have one)."""
    groups: dict[str, list[str]] = {}
    for key in sorted(exact.parent):
        groups.setdefault(exact.find(key), []).append(key)
    twins = {}
    for keys in groups.values():
        ranked = sorted((nodes[k] for k in keys), key=keep_order)
        for node in ranked:
            twins[node.key] = next((n.key for n in ranked if n.key != node.key), None)
    return {k: v for k, v in twins.items() if v is not None}


def _containment_targets(nodes: dict[str, Node], containment: list[Edge], final: UnionFind,
                         rank: dict[str, tuple]) -> dict[str, str]:
    """Cluster root -> the highest-ranked cluster that contains one of its members."""
    target: dict[str, str] = {}
    for edge in containment:
        inner, outer = (edge.a, edge.b) if edge.relation is Relation.A_IN_B else (edge.b, edge.a)
        r_inner, r_outer = final.find(inner), final.find(outer)
        if r_inner == r_outer or nodes[inner].external or rank[r_inner] >= rank[r_outer]:
            continue
        if r_inner not in target or rank[r_outer] > rank[target[r_inner]]:
            target[r_inner] = r_outer
    return target


def _decide(node: Node, keeper: str, contained: bool, levels: dict[str, UnionFind],
            twin: str | None) -> Decision:
    """Keep or drop ``node``; the reason names the closest evidence found, exact PCM first.

    ``duplicate_of`` always names the kept segment. A dropped segment with a byte-identical twin is
    ``duplicate_exact`` even when the keeper is only an audio/text match of that twin (e.g. a WAV
    and its copy both dropped for a better FLAC): the detail then names the twin and the link.
    """
    if node.key == keeper:
        return Decision(node.key, keeper, kept=True)
    level = next((lv for lv in _LEVELS if levels[lv].find(node.key) == levels[lv].find(keeper)), None)
    if level != EXACT and twin is not None:
        link = "contained in" if contained else f"{level} duplicate of"
        return Decision(node.key, keeper, False, RejectReason.DUPLICATE_EXACT.value, keeper,
                        f"exact duplicate of {twin}, which is {link} {keeper}")
    if contained:
        return Decision(node.key, keeper, False, RejectReason.DUPLICATE_AUDIO.value, keeper,
                        f"audio contained in {keeper}")
    return Decision(node.key, keeper, False, _REASONS[level].value, keeper,
                    f"{level} duplicate of {keeper}")

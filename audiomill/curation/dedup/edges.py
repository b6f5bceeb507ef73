"""Batch functions that turn feature rows into verified duplicate edges.

Every kind of evidence becomes (kind, band key, segment key) rows: the PCM hash for ``exact``, the
LSH bands of each audio window for ``audio``, those of the transcript signature for ``text``.
Rows sharing (kind, band key) are candidate pairs; a candidate is verified on the two segments'
features (equal hashes; window coverage; transcript Jaccard). Every function takes and returns a
pyarrow table, so the Ray runner maps them over Ray Data (explode -> shuffle -> pairs -> join -> verify)
and the local runner calls them in process; both give the same edges. Edge rows carry both ends'
duration, keep score and external flag, so clusters are resolved from edges alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audiomill import schema
from audiomill.config import DedupConfig
from audiomill.curation.dedup import lsh
from audiomill.curation.dedup.cluster import AUDIO, EXACT, TEXT, Edge, Node
from audiomill.curation.dedup.features import EXTERNAL, has_rows, to_numpy_signatures, to_numpy_windows
from audiomill.curation.dedup.match import Relation, audio_relation, text_relation

KIND, BAND_KEY = "kind", "band_key"
KEY_A, KEY_B = "key_a", "key_b"
COLUMNS = {EXACT: schema.DEDUP_PCM_HASH, AUDIO: schema.DEDUP_AUDIO_MINHASH, TEXT: schema.DEDUP_TEXT_MINHASH}
_ATTRS = (schema.AUDIO_DURATION_S, schema.DEDUP_KEEP_SCORE, EXTERNAL)
BAND_SCHEMA = pa.schema([pa.field(KIND, pa.string()), pa.field(BAND_KEY, pa.uint64()), pa.field(schema.KEY, pa.string())])
PAIR_SCHEMA = pa.schema([pa.field(KIND, pa.string()), pa.field(KEY_A, pa.string()), pa.field(KEY_B, pa.string())])
EDGE_SCHEMA = pa.schema(
    [pa.field(KEY_A, pa.string()), pa.field(KEY_B, pa.string()), pa.field(KIND, pa.string()),
     pa.field("relation", pa.string())]
    + [pa.field(f"{name}_{side}", kind) for side in ("a", "b")
       for name, kind in zip(_ATTRS, (pa.float64(), pa.float64(), pa.bool_()))])


@dataclass(frozen=True)
class MatchOptions:
    kinds: tuple[str, ...]  # which of EXACT, AUDIO, TEXT to look for
    bands: int
    rows: int
    window_threshold: float
    min_coverage: float
    text_threshold: float
    max_bucket: int

    @classmethod
    def from_config(cls, d: DedupConfig) -> MatchOptions:
        """The match options a job's ``dedup`` section asks for (tests and evaluations share it)."""
        kinds = tuple(kind for kind, on in ((EXACT, d.exact), (AUDIO, d.audio), (TEXT, d.text)) if on)
        return cls(kinds=kinds, bands=d.bands, rows=d.num_perm // d.bands, window_threshold=d.window_threshold,
                   min_coverage=d.min_coverage, text_threshold=d.text_threshold, max_bucket=d.max_bucket)


def local_edges(features: pa.Table, opts: MatchOptions) -> pa.Table:
    """The whole edge search in this process: explode -> candidate pairs -> join -> verify."""
    if not opts.kinds:
        return EDGE_SCHEMA.empty_table()
    pairs = candidate_pairs(explode(features, opts), opts.max_bucket)
    if pairs.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    return verify(join_side(join_side(pairs, features, "a"), features, "b"), opts)


def explode(features: pa.Table, opts: MatchOptions) -> pa.Table:
    """(kind, band key, key) rows, unique per kind, for every kind of evidence a row has."""
    tables = []
    for kind in opts.kinds:
        usable = features.filter(has_rows(features, COLUMNS[kind]))
        if usable.num_rows == 0:
            continue
        keys = usable[schema.KEY].to_numpy(zero_copy_only=False)
        if kind == EXACT:
            owner = np.arange(usable.num_rows)
            band_key = np.array([int(h[:16], 16) for h in usable[COLUMNS[kind]].to_pylist()], dtype=np.uint64)
        else:
            if kind == AUDIO:
                per_row = to_numpy_windows(usable[COLUMNS[kind]])
            else:
                per_row = [s[None, :] for s in to_numpy_signatures(usable[COLUMNS[kind]])]
            owners = np.repeat(np.arange(len(per_row)), [len(w) for w in per_row])
            band_key, owner = lsh.explode(owners, np.concatenate(per_row), opts.bands, opts.rows)
        tables.append(pa.table({KIND: pa.array([kind] * len(owner), pa.string()),
                                BAND_KEY: pa.array(band_key, pa.uint64()),
                                schema.KEY: pa.array(keys[owner], pa.string())}, schema=BAND_SCHEMA))
    return pa.concat_tables(tables) if tables else BAND_SCHEMA.empty_table()


def candidate_pairs(bands: pa.Table, max_bucket: int) -> pa.Table:
    """All unique candidate pairs from band rows, sorted: over the whole table with the local
    runner, over one shuffle bucket (all rows of its band keys) on Ray."""
    pairs = set()
    for kind in sorted(set(bands[KIND].to_pylist())):
        rows = bands.filter(pc.equal(bands[KIND], kind))
        found = lsh.candidate_pairs(rows[BAND_KEY].to_numpy(), rows[schema.KEY].to_numpy(zero_copy_only=False),
                                    max_bucket)
        pairs.update((kind, a, b) for a, b in found)
    ordered = sorted(pairs)
    return pa.table({KIND: [p[0] for p in ordered], KEY_A: [p[1] for p in ordered], KEY_B: [p[2] for p in ordered]},
                    schema=PAIR_SCHEMA)


def side_columns(features: pa.Table, side: str) -> pa.Table:
    """Key, evidence columns and attributes of ``features``, suffixed for one side of a pair."""
    names = [schema.KEY, *COLUMNS.values(), *_ATTRS]
    return features.select(names).rename_columns([f"{n}_{side}" if n != schema.KEY else f"key_{side}" for n in names])


def join_side(pairs: pa.Table, features: pa.Table, side: str) -> pa.Table:
    """In-process join of one side's key with its features (Ray uses ``Dataset.join``)."""
    renamed = side_columns(features, side)
    index = {k: i for i, k in enumerate(renamed[f"key_{side}"].to_pylist())}
    taken = renamed.take(pa.array([index[k] for k in pairs[f"key_{side}"].to_pylist()], pa.int64()))
    for name in taken.column_names:
        if name != f"key_{side}":
            pairs = pairs.append_column(name, taken[name])
    return pairs


def verify(joined: pa.Table, opts: MatchOptions) -> pa.Table:
    """Edges for the candidate pairs whose features really match."""
    kinds = joined[KIND].to_pylist()
    sides = {s: _attrs(joined, s) for s in ("a", "b")}
    column = {kind: (joined[f"{col}_a"], joined[f"{col}_b"]) for kind, col in COLUMNS.items()}
    audio = {s: to_numpy_windows(column[AUDIO][i]) for i, s in enumerate("ab")} if AUDIO in kinds else {}
    text = {s: to_numpy_signatures(column[TEXT][i]) for i, s in enumerate("ab")} if TEXT in kinds else {}
    hashes = [column[EXACT][0].to_pylist(), column[EXACT][1].to_pylist()] if EXACT in kinds else []
    edges = []
    for i, kind in enumerate(kinds):
        if kind == EXACT:
            relation = Relation.SAME if hashes[0][i] == hashes[1][i] else None
        elif kind == AUDIO:
            relation = audio_relation(audio["a"][i], audio["b"][i], opts.window_threshold, opts.min_coverage)
        else:
            relation = text_relation(text["a"][i], text["b"][i], opts.text_threshold)
        if relation is not None:
            edges.append((sides["a"][i], sides["b"][i], kind, relation))
    return _edge_table(edges)


def edges_from_table(table: pa.Table) -> tuple[list[Edge], dict[str, Node]]:
    edges, nodes = [], {}
    for row in table.to_pylist():
        for side in ("a", "b"):
            key = row[f"key_{side}"]
            nodes[key] = Node(key, row[f"{schema.AUDIO_DURATION_S}_{side}"] or 0.0,
                              row[f"{schema.DEDUP_KEEP_SCORE}_{side}"], bool(row[f"{EXTERNAL}_{side}"]))
        edges.append(Edge(row[KEY_A], row[KEY_B], row[KIND], Relation(row["relation"])))
    return edges, nodes


def _attrs(joined: pa.Table, side: str) -> list[dict]:
    names = [f"key_{side}"] + [f"{n}_{side}" for n in _ATTRS]
    return [dict(zip([schema.KEY, *_ATTRS], values)) for values in zip(*(joined[n].to_pylist() for n in names))]


def _edge_table(edges: list[tuple[dict, dict, str, Relation]]) -> pa.Table:
    rows = []
    for a, b, kind, relation in edges:
        if a[EXTERNAL] and b[EXTERNAL]:
            continue  # both kept by earlier runs: nothing to decide
        row = {KEY_A: a[schema.KEY], KEY_B: b[schema.KEY], KIND: kind, "relation": relation.value}
        for side, values in (("a", a), ("b", b)):
            row.update({f"{n}_{side}": values[n] for n in _ATTRS})
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=EDGE_SCHEMA)

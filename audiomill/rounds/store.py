"""A round's files under ``<dataset>/labels/round-NNN/`` and its phase markers.

Each phase writes its tables (atomically, through ``storage``) and then ``_phase-<name>.json``;
a phase counts as done only when its marker exists, so a killed round resumes at the first phase
without one. Markers carry the phase's wall seconds and summary numbers; tables carry only
deterministic content (no times), so a rerun writes byte-identical tables.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from audiomill import layout, storage
from audiomill.formats.tables import read_table, write_table

PHASES = ("annotate", "select", "resynthesize", "verify", "accept", "train", "evaluate", "register")
ANNOTATIONS = "annotations.parquet"  # every annotated segment (+ its feature vector)
SELECTION = "selection.parquet"  # the budgeted clips, why each was chosen
RESYNTH = "resynth.parquet"  # key -> re-synthesis FLAC (with its rendered scene)
VERIFY = "verify.parquet"  # every score, check, decision and reason per clip
ACCEPTED = "accepted.parquet"  # accepted annotations (the next training labels)
EVAL = "eval.parquet"  # held-out clips: truth, parent's and candidate's predictions
ROUND_JSON = "round.json"  # models pinned at the start: asr, heads parent, generator
MODEL_DIR = "model"  # the trained candidate heads, before registration


def marker_name(phase: str) -> str:
    return f"_phase-{phase}.json"


class RoundStore:
    def __init__(self, dataset: str, number: int) -> None:
        self.dataset, self.number = dataset, number
        self.root = layout.round_dir(dataset, number)

    def uri(self, name: str) -> str:
        return storage.join(self.root, name)

    def done(self, phase: str) -> bool:
        return storage.exists(self.uri(marker_name(phase)))

    def marker(self, phase: str) -> dict[str, Any] | None:
        return read_json(self.uri(marker_name(phase))) if self.done(phase) else None

    def mark(self, phase: str, summary: dict[str, Any]) -> None:
        write_json(self.uri(marker_name(phase)), {"phase": phase, "round": self.number, **summary})

    def next_phase(self) -> str | None:
        return next((p for p in PHASES if not self.done(p)), None)

    def write_table(self, name: str, table: pa.Table) -> None:
        write_table(self.uri(name), table)

    def read_table(self, name: str) -> pa.Table:
        return read_table(self.uri(name))


def write_json(uri: str, data: dict[str, Any]) -> None:
    storage.write_text(uri, json.dumps(data, indent=2, sort_keys=True, default=str))


def read_json(uri: str) -> dict[str, Any]:
    return json.loads(storage.read_text(uri))


def round_numbers(dataset: str) -> list[int]:
    """Round numbers that have a directory under ``labels/``, ascending."""
    base = layout.labels_dir(dataset)
    if not storage.exists(base):
        return []
    found = set()
    for info in storage.list_files(base):
        for part in info.uri[len(base):].strip("/").split("/")[:1]:
            if part.startswith("round-") and part[6:].isdigit():
                found.add(int(part[6:]))
    return sorted(found)


def accepted_so_far(dataset: str, number: int, columns: list[str]) -> list[pa.Table]:
    """``columns`` of the labels accepted by round ``number`` and every earlier round, newest
    first; a clip accepted again later appears only in its newest round's table."""
    seen: set[str] = set()
    out = []
    for earlier in range(number, 0, -1):
        uri = RoundStore(dataset, earlier).uri(ACCEPTED)
        if not storage.exists(uri):
            continue
        table = read_table(uri)
        table = table.select([c for c in columns if c in table.column_names])
        keys = table.column("key").to_pylist()
        out.append(table.filter(pa.array([k not in seen for k in keys], pa.bool_())))
        seen.update(keys)
    return out

"""What ``audiomill round status`` / ``report`` show: per round, its phases and its numbers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from audiomill import schema, storage
from audiomill.rounds import store as files
from audiomill.rounds.store import PHASES, RoundStore, round_numbers

MEAN_SCORES = (schema.VER_CONTENT_STATE_DIST, schema.VER_CONTENT_MARGIN, schema.VER_PITCH_DIFF_ST,
               schema.VER_SPEAKER_COS, schema.VER_ROUNDTRIP_WER, schema.VER_ROUNDTRIP_AGREE)


@dataclass(frozen=True)
class RoundStatus:
    number: int
    done: tuple[str, ...]
    next_phase: str | None  # None: finished
    wall_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundReport:
    number: int
    status: RoundStatus
    phases: dict[str, dict[str, Any]]
    mean_scores: dict[str, float | None]
    reasons: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def round_status(dataset: str) -> list[RoundStatus]:
    out = []
    for number in round_numbers(dataset):
        store = RoundStore(dataset, number)
        markers = {p: store.marker(p) for p in PHASES}
        out.append(RoundStatus(number, tuple(p for p in PHASES if markers[p] is not None), store.next_phase(),
                               {p: m.get("wall_s", 0.0) for p, m in markers.items() if m}))
    return out


def _mean_scores(store: RoundStore) -> tuple[dict[str, float | None], dict[str, int]]:
    if not storage.exists(store.uri(files.VERIFY)):
        return {}, {}
    rows = store.read_table(files.VERIFY).to_pylist()
    means = {}
    for column in MEAN_SCORES:
        values = [r[column] for r in rows if r.get(column) is not None and math.isfinite(r[column])]
        means[column] = sum(values) / len(values) if values else None
    reasons: dict[str, int] = {}
    for r in rows:
        for code in filter(None, r[schema.VER_REASONS].split(",")):
            reasons[code] = reasons.get(code, 0) + 1
    return means, dict(sorted(reasons.items()))


def round_report(dataset: str) -> list[RoundReport]:
    reports = []
    for status in round_status(dataset):
        store = RoundStore(dataset, status.number)
        phases = {p: store.marker(p) for p in status.done}
        means, reasons = _mean_scores(store)
        reports.append(RoundReport(status.number, status, phases, means, reasons))
    return reports

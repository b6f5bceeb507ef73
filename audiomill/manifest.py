"""Typed records of what a job reports: shard summaries, part stats and the dataset manifest.

Every writer and reader of ``manifest.json`` and of a part's stats (``_DONE.json``) goes through
these classes, so a key is spelled once. Part stats add (``sum(parts, PartStats())``) the way
datatrove sums its pipeline stats. JSON shapes are those of ``audiomill-dataset/1``: a manifest
read and written back is byte-identical.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from audiomill import layout, storage

FORMAT = "audiomill-dataset/1"
FORMAT_PREFIX = "audiomill-dataset/"


class ManifestError(ValueError):
    """A manifest that is not an audiomill dataset manifest (the message names what is wrong)."""


@dataclass(frozen=True)
class ShardSummary:
    """One tar under ``shards/`` or ``held/``: bytes, segments, audio seconds, sha256."""

    name: str
    bytes: int
    samples: int
    seconds: float
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardSummary:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def _shards(items: Any) -> tuple[ShardSummary, ...]:
    return tuple(s if isinstance(s, ShardSummary) else ShardSummary.from_dict(s) for s in items or ())


@dataclass(frozen=True)
class PartStats:
    """What one part (or, summed, a whole job) read, kept and rejected; per-stage worker seconds."""

    sources: int = 0
    kept_sources: int = 0
    rejected_sources: int = 0
    segments: int = 0
    seconds_in: float = 0.0
    seconds_out: float = 0.0
    bytes_in: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    shards: tuple[ShardSummary, ...] = ()
    held_shards: tuple[ShardSummary, ...] = ()

    def __add__(self, other: PartStats) -> PartStats:
        if not isinstance(other, PartStats):
            return NotImplemented
        return PartStats(
            sources=self.sources + other.sources, kept_sources=self.kept_sources + other.kept_sources,
            rejected_sources=self.rejected_sources + other.rejected_sources,
            segments=self.segments + other.segments, seconds_in=self.seconds_in + other.seconds_in,
            seconds_out=self.seconds_out + other.seconds_out, bytes_in=self.bytes_in + other.bytes_in,
            rejects_by_reason=dict(Counter(self.rejects_by_reason) + Counter(other.rejects_by_reason)),
            stage_seconds=_add_floats(self.stage_seconds, other.stage_seconds),
            shards=self.shards + other.shards, held_shards=self.held_shards + other.held_shards)

    @property
    def accounted(self) -> bool:
        return self.sources == self.kept_sources + self.rejected_sources

    def with_stage_seconds(self, stage: str, seconds: float) -> PartStats:
        return replace(self, stage_seconds={**self.stage_seconds, stage: seconds})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rejects_by_reason"] = dict(sorted(self.rejects_by_reason.items()))
        data["shards"] = [s.to_dict() for s in self.shards]
        data["held_shards"] = [s.to_dict() for s in self.held_shards]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartStats:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["shards"] = _shards(data.get("shards"))
        values["held_shards"] = _shards(data.get("held_shards"))
        return cls(**values)


def _add_floats(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    out = dict(a)
    for name, value in b.items():
        out[name] = out.get(name, 0.0) + value
    return out


@dataclass(frozen=True)
class Counts:
    inputs: int
    kept_sources: int
    rejected_sources: int
    segments: int
    shards: int
    parts: int
    parts_resumed: int
    skipped_by_filter: int


@dataclass(frozen=True)
class Accounting:
    """``inputs == kept + rejected sources``: the invariant every job checks and records."""

    inputs: int
    kept_plus_rejected: int
    ok: bool

    @classmethod
    def of(cls, inputs: int, kept_sources: int, rejected_sources: int) -> Accounting:
        total = kept_sources + rejected_sources
        return cls(inputs=inputs, kept_plus_rejected=total, ok=inputs == total)


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``. Sections owned by other modules (config, stages, dedup, policy) stay
    plain JSON values; ``extra`` keeps keys later steps add (``curated``, ``takedowns``...)."""

    created_unix: float
    audiomill_version: str
    versions: dict[str, str]
    config: dict[str, Any]
    config_fingerprint: str
    models: dict[str, Any]
    counts: Counts
    accounting: Accounting
    hours_in: float
    hours_out: float
    bytes_in: int
    rejects_by_reason: dict[str, int]
    skipped_examples: list[str]
    wall_s: float
    stages: dict[str, Any]
    shards: tuple[ShardSummary, ...]
    held_shards: tuple[ShardSummary, ...]
    dedup: dict[str, Any]
    policy: dict[str, Any] | None
    policy_report: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": self.format}
        for f in fields(self):
            if f.name in ("format", "extra"):
                continue
            value = getattr(self, f.name)
            if f.name in ("shards", "held_shards"):
                value = [s.to_dict() for s in value]
            elif f.name in ("counts", "accounting"):
                value = asdict(value)
            data[f.name] = value
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict) or not str(data.get("format", "")).startswith(FORMAT_PREFIX):
            raise ManifestError("not an audiomill dataset manifest (no format audiomill-dataset/N)")
        known = {f.name for f in fields(cls)} - {"extra"}
        missing = sorted(known - set(data) - {"format"})
        if missing:
            raise ManifestError(f"manifest lacks {', '.join(missing)}")
        values = {name: data[name] for name in known}
        values["counts"] = Counts(**data["counts"])
        values["accounting"] = Accounting(**data["accounting"])
        values["shards"] = _shards(data["shards"])
        values["held_shards"] = _shards(data["held_shards"])
        values["extra"] = {k: v for k, v in data.items() if k not in known}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ManifestError(f"manifest is not JSON: {err}") from err
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Manifest:
        return replace(self, **changes)


def read_manifest(root: str) -> Manifest:
    """The manifest of the finished dataset at ``root`` (FileNotFoundError naming it if none)."""
    uri = storage.join(root, layout.MANIFEST_FILE)
    if not storage.exists(uri):
        raise FileNotFoundError(f"{storage.redact(root)} is not a finished dataset (no {layout.MANIFEST_FILE})")
    return Manifest.from_json(storage.read_text(uri))

"""Open a finished dataset for the dashboard: manifest, lazy parquet scans, column discovery, policy.

Tables are scanned lazily with polars so a page only reads the columns it aggregates; nothing loads
a whole index into memory. An ``s3://`` dataset's small tables (index, rejects, dedup) are copied
once into a local cache directory keyed by the manifest's hash, then scanned the same way; shards
are never copied (``audiomill.data.ranged_read`` reads byte ranges).

Every file read here is a fixed name under the dataset root (``layout``), or a ``labels/round-*``
parquet listed under it, so nothing from the browser becomes a path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from audiomill import layout, schema, storage

logger = logging.getLogger(__name__)

DEDUP_FILE = "dedup.parquet"
LABELS_DIR = layout.LABELS_DIR
ROUND_DIR = re.compile(r"^round-\d+$")
CACHE_ENV = "AUDIOMILL_DASHBOARD_CACHE"

BOOKKEEPING_COLUMNS = frozenset({
    schema.TAR_OFFSET, schema.FLAC_BYTES, schema.SOURCE_BYTES, schema.SOURCE_OFFSET, schema.PART_ID,
    schema.PART_SOURCES, schema.START_S, schema.END_S, schema.ORIG_CHANNELS, schema.PROV_FETCHED_UNIX,
})
"""Numeric columns that locate or count bytes rather than measure quality: never plotted."""
PREFERRED_FIRST = (schema.AUDIO_DURATION_S,)
LANGUAGE_HINT = "language"
SPEAKER_HINT = "speaker"
TRANSCRIPT_NAMES = ("asr_text", "text", "transcript")


@dataclass(frozen=True)
class Rule:
    """One policy threshold: ``metric`` must be >= ``min`` and <= ``max`` (either may be None)."""

    name: str
    metric: str
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        bounds = [f"≥ {self.min:g}" if self.min is not None else "",
                  f"≤ {self.max:g}" if self.max is not None else ""]
        return f"{self.metric} " + " and ".join(b for b in bounds if b)


@dataclass
class Dataset:
    """A finished dataset: its manifest and local paths of its parquet tables (``None``: absent)."""

    root: str
    manifest: dict[str, Any]
    token: str  # sha1 of the manifest text: changes whenever the dataset is rewritten
    index_path: str
    rejects_path: str | None
    dedup_path: str | None = None
    _schemas: dict[str, pl.Schema] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """The root as it may be shown: no credentials, no query string."""
        return storage.redact(self.root)

    def index(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.index_path)

    def rejects(self) -> pl.LazyFrame:
        if self.rejects_path is None:
            return pl.LazyFrame(schema=pl.Schema(pl.from_arrow(schema.REJECT_SCHEMA.empty_table()).schema))
        return pl.scan_parquet(self.rejects_path)

    def dedup(self) -> pl.LazyFrame | None:
        return pl.scan_parquet(self.dedup_path) if self.dedup_path else None

    def index_schema(self) -> pl.Schema:
        if "index" not in self._schemas:
            self._schemas["index"] = self.index().collect_schema()
        return self._schemas["index"]

    def rejects_schema(self) -> pl.Schema:
        if "rejects" not in self._schemas:
            self._schemas["rejects"] = self.rejects().collect_schema()
        return self._schemas["rejects"]

    def policy(self) -> list[Rule]:
        return policy_rules(self.manifest)


def open_dataset(root: str, cache_dir: str | None = None) -> Dataset:
    """Open the dataset at ``root`` (local dir or ``s3://`` prefix); raises FileNotFoundError if
    it has no manifest (not a finished dataset)."""
    root = root.rstrip("/") if len(root.rstrip("/")) > len("s3://") else root
    manifest_uri = storage.join(root, layout.MANIFEST_FILE)
    try:
        text = storage.read_text(manifest_uri)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{storage.redact(root)} is not a finished dataset (no {layout.MANIFEST_FILE})") from None
    manifest = json.loads(text)
    token = hashlib.sha1(text.encode("utf-8")).hexdigest()
    local_root = storage.local_path(root)
    if local_root is None:
        base = cache_dir or os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), "audiomill-dashboard")
        local_root = os.path.join(base, hashlib.sha1(f"{root}\n{token}".encode()).hexdigest()[:20])
    paths = {name: _local_table(root, local_root, name) for name in
             (layout.INDEX_FILE, layout.REJECTS_FILE, DEDUP_FILE)}
    if paths[layout.INDEX_FILE] is None:
        raise FileNotFoundError(f"{storage.redact(root)} has a manifest but no {layout.INDEX_FILE}")
    return Dataset(root=root, manifest=manifest, token=token, index_path=paths[layout.INDEX_FILE],
                   rejects_path=paths[layout.REJECTS_FILE], dedup_path=paths[DEDUP_FILE])


def _local_table(root: str, local_root: str, name: str) -> str | None:
    """Local path of table ``name``: the file itself for a local dataset, a cached copy for S3."""
    uri = storage.join(root, name)
    if storage.local_path(root) is not None:
        return uri if os.path.isfile(storage.local_path(uri) or uri) else None
    target = os.path.join(local_root, name)
    if os.path.isfile(target):
        return target
    if not storage.exists(uri):
        return None
    os.makedirs(local_root, exist_ok=True)
    tmp = f"{target}.{uuid.uuid4().hex}.tmp"
    try:
        with storage.open_read(uri) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


# -- column discovery ------------------------------------------------------------------------------

def metric_columns(table_schema: pl.Schema) -> list[str]:
    """Numeric columns that measure something about a segment (duration, ``vad_*``, ``q_*``,
    ``asr_*``...): every numeric column except byte offsets, ids, positions and timings."""
    names = [name for name, dtype in table_schema.items()
             if dtype.is_numeric() and name not in BOOKKEEPING_COLUMNS and not schema.is_timing_column(name)]
    first = [n for n in PREFERRED_FIRST if n in names]
    return first + [n for n in names if n not in first]


def text_columns(table_schema: pl.Schema, hint: str) -> list[str]:
    """String columns whose name contains ``hint`` (e.g. ``asr_language``, ``speaker``)."""
    return [name for name, dtype in table_schema.items() if dtype == pl.String and hint in name]


def transcript_column(table_schema: pl.Schema) -> str | None:
    """The column holding a segment's transcript, if any stage wrote one."""
    strings = [name for name, dtype in table_schema.items() if dtype == pl.String]
    for name in TRANSCRIPT_NAMES:
        if name in strings:
            return name
    return next((n for n in strings if n.endswith("_text") or "transcript" in n), None)


def duration_expr(table_schema: pl.Schema) -> pl.Expr:
    """Seconds of audio a row stands for: the segment's duration when the row is a segment,
    otherwise (a rejected source) the source's decoded duration."""
    names = set(table_schema.names())
    segment: pl.Expr | None = None
    if schema.AUDIO_DURATION_S in names:
        segment = pl.col(schema.AUDIO_DURATION_S)
    elif {schema.START_S, schema.END_S} <= names:
        segment = pl.col(schema.END_S) - pl.col(schema.START_S)
    source = pl.col(schema.ORIG_DURATION_S) if schema.ORIG_DURATION_S in names else pl.lit(None, pl.Float64)
    if segment is None:
        return source.cast(pl.Float64)
    if schema.KEY not in names:
        return segment.cast(pl.Float64)
    return pl.when(pl.col(schema.KEY).is_null()).then(source).otherwise(segment).cast(pl.Float64)


# -- policy ----------------------------------------------------------------------------------------

def policy_rules(manifest: dict[str, Any]) -> list[Rule]:
    """Thresholds of the filter policy the manifest records (``manifest.Manifest.policy``, as
    ``curation.policy.Policy.summary`` writes it: ``{"rules": {metric: {"min": a, "max": b}}}``);
    no policy gives no rules."""
    policy = manifest.get("policy")
    rules = policy.get("rules") if isinstance(policy, dict) else None
    if not isinstance(rules, dict):
        return []
    return [rule for metric, bounds in rules.items() if (rule := _rule(str(metric), bounds)) is not None]


def recorded_policy_report(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """``manifest["policy_report"]`` (kept/rejected hours overall and per rule, written by the job
    that applied the policy) when it has per-rule rows; None otherwise."""
    report = manifest.get("policy_report")
    if isinstance(report, dict) and isinstance(report.get("rules"), list):
        return report
    return None


def _rule(name: str, spec: Any) -> Rule | None:
    if not isinstance(spec, dict):
        return None
    low, high = _number(spec.get("min")), _number(spec.get("max"))
    if low is None and high is None:
        return None
    return Rule(name=name, metric=name, min=low, max=high)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


# -- shown text ------------------------------------------------------------------------------------

def redact_tree(value: Any) -> Any:
    """``value`` (parsed JSON) with credentials and query strings removed from every string."""
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    return storage.redact(value) if isinstance(value, str) else value


def token_set_files(ds: Dataset) -> dict[str, list[str]]:
    """``tokens/MODEL/part-*.parquet`` files under the dataset root, by model id."""
    return _files_by_child(ds, layout.TOKENS_DIR,
                           lambda child, name: name.startswith("part-") and name.endswith(".parquet"))


def label_round_files(ds: Dataset) -> dict[str, list[str]]:
    """``labels/round-NNN/*.parquet`` files under the dataset root, by round name."""
    return _files_by_child(ds, LABELS_DIR,
                           lambda child, name: bool(ROUND_DIR.match(child)) and name.endswith(".parquet"))


def _files_by_child(ds: Dataset, directory: str, accept: Callable[[str, str], bool]) -> dict[str, list[str]]:
    """Files ``directory/CHILD/NAME`` under the dataset root that ``accept(CHILD, NAME)``, by child."""
    top = storage.join(ds.root, directory)
    if not storage.exists(top):
        return {}
    found: dict[str, list[str]] = {}
    prefix = top.rstrip("/") + "/"
    for info in storage.list_files(top):
        parts = (info.uri[len(prefix):] if info.uri.startswith(prefix) else "").split("/")
        if len(parts) == 2 and accept(*parts):
            found.setdefault(parts[0], []).append(info.uri)
    return {child: sorted(uris) for child, uris in sorted(found.items())}

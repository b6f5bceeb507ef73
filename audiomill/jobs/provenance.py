"""Hours by license and by source domain: what a buyer or an auditor asks of a dataset first.

Reads ``index.parquet`` (kept audio) and ``rejects.parquet`` (what ``ingest.licenses`` turned
away) through ``audiomill.provenance``, so datasets written before the provenance stage (license
only in ``metadata_json``) report the same way. No rendering here: ``as_dict()`` is what the CLI
prints or renders as tables.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


from audiomill import layout, schema, storage
from audiomill.formats.tables import read_schema, read_table
from audiomill.provenance import UNKNOWN, provenance_of

_COLUMNS = (schema.SOURCE_ID, schema.SOURCE_URI, schema.METADATA_JSON, schema.AUDIO_DURATION_S,
            schema.ORIG_DURATION_S, schema.REJECT_REASON, *schema.PROVENANCE_COLUMNS)


@dataclass
class Bucket:
    """Kept audio of one license or domain: hours, segments, distinct sources."""

    hours: float = 0.0
    segments: int = 0
    sources: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"hours": round(self.hours, 6), "segments": self.segments, "sources": len(self.sources)}


@dataclass
class LicensingReport:
    """``by_license`` / ``by_domain``: name (or ``unknown``) -> Bucket of kept audio;
    ``rejected_by_license``: license -> sources rejected as ``license_not_allowed``."""

    by_license: dict[str, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    by_domain: dict[str, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    rejected_by_license: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missing_license_segments: int = 0

    def as_dict(self) -> dict[str, Any]:
        order = lambda buckets: dict(sorted(buckets.items(), key=lambda kv: (-kv[1].hours, kv[0])))  # noqa: E731
        return {"by_license": {k: v.as_dict() for k, v in order(self.by_license).items()},
                "by_domain": {k: v.as_dict() for k, v in order(self.by_domain).items()},
                "rejected_by_license": dict(sorted(self.rejected_by_license.items())),
                "missing_license_segments": self.missing_license_segments}


def _read(root: str, name: str) -> list[dict[str, Any]]:
    uri = storage.join(root, name)
    if not storage.exists(uri):
        return []
    present = [c for c in _COLUMNS if c in read_schema(uri).names]
    return read_table(uri, columns=present).to_pylist()


def licensing_report(root: str) -> LicensingReport:
    """Hours of kept audio by license and by source domain, and sources rejected by license."""
    if not storage.exists(storage.join(root, layout.INDEX_FILE)):
        raise FileNotFoundError(f"{storage.redact(root)} has no {layout.INDEX_FILE}: not a finished dataset")
    report = LicensingReport()
    for row in _read(root, layout.INDEX_FILE):
        prov = provenance_of(row)
        hours = (row.get(schema.AUDIO_DURATION_S) or 0.0) / 3600
        for buckets, name in ((report.by_license, prov.license), (report.by_domain, prov.domain)):
            bucket = buckets[name or UNKNOWN]
            bucket.hours += hours
            bucket.segments += 1
            bucket.sources.add(row[schema.SOURCE_ID])
        report.missing_license_segments += prov.license is None
    for row in _read(root, layout.REJECTS_FILE):
        if row.get(schema.REJECT_REASON) == schema.RejectReason.LICENSE_NOT_ALLOWED.value:
            report.rejected_by_license[provenance_of(row).license or UNKNOWN] += 1
    return report

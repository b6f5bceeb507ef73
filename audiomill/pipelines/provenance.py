"""Provenance stage: give every source ``prov_*`` columns and enforce ``ingest.licenses``.

Runs first, on source rows (before decoding, so a source under a disallowed license costs no
decode). Values come from the source's manifest row or crawl record (``metadata_json``: license,
source_url/url, fetched_unix/fetched_at), else from the longest matching ``provenance.defaults``
prefix, else null. The columns then travel with every segment into the index, the shards' JSON
and the rejects, which is what takedown and the licensing report read.
"""

from __future__ import annotations

import pyarrow as pa

from audiomill import schema
from audiomill.config import IngestConfig, ProvenanceConfig, ProvenanceDefault
from audiomill.pipelines.base import Resources, Stage, with_rejects
from audiomill.provenance import Provenance, from_metadata, host_of, license_allowed, parse_metadata
from audiomill.schema import RejectReason

_TYPES = {schema.PROV_LICENSE: pa.string(), schema.PROV_SOURCE_URL: pa.string(),
          schema.PROV_DOMAIN: pa.string(), schema.PROV_FETCHED_UNIX: pa.float64()}


def _with_default(prov: Provenance, default: ProvenanceDefault | None) -> Provenance:
    if default is None:
        return prov
    url = prov.source_url or default.source_url
    return Provenance(license=prov.license or default.license, source_url=url,
                      domain=prov.domain or host_of(url),
                      fetched_unix=prov.fetched_unix if prov.fetched_unix is not None else default.fetched_unix)


class ProvenanceStage(Stage):
    """Source rows in; the same rows with ``prov_*`` columns out, disallowed licenses rejected."""

    name = schema.StageName.INGEST.value
    resources = Resources(num_cpus=0.25)

    def __init__(self, ingest: IngestConfig, cfg: ProvenanceConfig) -> None:
        super().__init__()
        self.allowed = ingest.licenses
        self.defaults = sorted(cfg.defaults, key=lambda d: len(d.prefix), reverse=True)

    def _default(self, uri: str) -> ProvenanceDefault | None:
        return next((d for d in self.defaults if uri.startswith(d.prefix)), None)

    def provenance(self, source_uri: str, metadata_json: str | None) -> Provenance:
        prov = from_metadata(source_uri, parse_metadata(metadata_json))
        return _with_default(prov, self._default(source_uri))

    def process(self, table: pa.Table) -> pa.Table:
        rows = table.select([schema.SOURCE_URI, schema.METADATA_JSON]).to_pylist()
        found = [self.provenance(r[schema.SOURCE_URI], r[schema.METADATA_JSON]) for r in rows]
        values = {schema.PROV_LICENSE: [p.license for p in found],
                  schema.PROV_SOURCE_URL: [p.source_url for p in found],
                  schema.PROV_DOMAIN: [p.domain for p in found],
                  schema.PROV_FETCHED_UNIX: [p.fetched_unix for p in found]}
        for name, column in values.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, pa.array(column, _TYPES[name]))
        if self.allowed is None:
            return table
        reasons, details = [], []
        for prov in found:
            ok = license_allowed(prov.license, self.allowed)
            reasons.append(None if ok else RejectReason.LICENSE_NOT_ALLOWED.value)
            details.append(None if ok else f"license {prov.license or 'unknown'!r} is not in ingest.licenses "
                                           f"{self.allowed}"[:300])
        return with_rejects(table, self.name, reasons, details)

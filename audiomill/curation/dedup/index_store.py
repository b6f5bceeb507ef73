"""The cross-run dedup index: feature tables of segments kept by earlier runs, one file per dataset.

``<index>/run-<hash of the dataset root>.parquet`` holds what that dataset kept. A new run reads
every file but its own (so rerunning or resuming a job never deduplicates it against itself) and
writes its own at the end, replacing any earlier version. Files record the signature settings; a
file made with other settings cannot be compared and is refused with a message naming it.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

from audiomill import schema, storage
from audiomill.formats.tables import read_table, write_table
from audiomill.curation.dedup.features import DATASET, EXTERNAL, conform_features
from audiomill.curation.dedup.fingerprint import FINGERPRINT_VERSION

_META_KEY = b"audiomill.dedup"
EXTERNAL_SEP = "@"  # external keys become "<key>@run-<digest>": the same segment may be in both runs


class IndexMismatchError(ValueError):
    """An index file was built with other signature settings than this job's."""


def run_file(index_root: str, dataset_root: str) -> str:
    digest = hashlib.sha1(storage.redact(dataset_root).rstrip("/").encode()).hexdigest()[:16]
    return storage.join(index_root, f"run-{digest}.parquet")


def settings(num_perm: int) -> dict[str, object]:
    return {"num_perm": num_perm, "fingerprint": FINGERPRINT_VERSION}


def other_run_files(index_root: str, dataset_root: str) -> list[str]:
    """Index files of every other dataset, sorted."""
    if not storage.exists(index_root) and not storage.is_s3(index_root):
        return []
    own = run_file(index_root, dataset_root)
    return sorted(f.uri for f in storage.list_files(index_root)
                  if f.uri.endswith(".parquet") and f.uri.rsplit("/", 1)[-1].startswith("run-") and f.uri != own)


def read_run_file(uri: str, num_perm: int) -> pa.Table:
    """Features of one index file, marked external, after checking its settings match."""
    table = read_table(uri)
    found = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    if found != settings(num_perm):
        raise IndexMismatchError(f"dedup index file {storage.redact(uri)} was built with {found}, this job "
                                 f"uses {settings(num_perm)}; point dedup.index elsewhere or rebuild it")
    table = conform_features(table, num_perm, external=True)
    run = uri.rsplit("/", 1)[-1].removesuffix(".parquet")
    keys = pa.array([f"{k}{EXTERNAL_SEP}{run}" for k in table[schema.KEY].to_pylist()], pa.string())
    return table.set_column(table.column_names.index(schema.KEY), schema.KEY, keys)


def public_key(key: str) -> str:
    """The segment key without the ``@run-...`` mark external keys carry while deduplicating."""
    return key.split(EXTERNAL_SEP, 1)[0]


def write_run_file(index_root: str, dataset_root: str, kept: pa.Table, num_perm: int) -> str:
    """Store the features of this dataset's kept segments as its index file; returns its URI."""
    table = conform_features(kept, num_perm, external=False).drop_columns([EXTERNAL])
    table = table.append_column(DATASET, pa.array([storage.redact(dataset_root)] * table.num_rows, pa.string()))
    table = table.replace_schema_metadata({_META_KEY: json.dumps(settings(num_perm), sort_keys=True).encode()})
    uri = run_file(index_root, dataset_root)
    write_table(uri, table)
    return uri


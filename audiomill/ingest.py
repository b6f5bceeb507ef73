"""List inputs (directories, files, manifests, tar archives, s3 prefixes) into deterministic parts.

Listing streams: sources are yielded in order (inputs as given, each sorted) and cut into parts of
``part_size``; only one part is held at a time. Inputs that cannot become sources (unsafe tar
members, bad manifest rows, non-UTF-8 names) become sources that are already rejected, so every
listed item is accounted for.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import hashlib
import io
import json
import logging
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import schema, storage
from audiomill.config import IngestConfig
from audiomill.ingest_safety import (DatasetSkipper, InputOutputOverlapError,  # noqa: F401
                                               check_output_not_inside_inputs, manifest_row_escape)
from audiomill.schema import RejectReason

logger = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".jsonl", ".csv", ".parquet")
TAR_SUFFIXES = (".tar",)
PATH_COLUMNS = ("path", "uri", "audio_path", "audio", "file")


@dataclass
class ListingStats:
    """What listing saw besides sources: files the glob filters skipped, by input."""

    skipped_by_filter: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    skipped_datasets: list[str] = field(default_factory=list)  # audiomill dataset dirs not listed

    def skip(self, uri: str) -> None:
        self.skipped_by_filter += 1
        if len(self.skipped_examples) < 20:
            self.skipped_examples.append(storage.redact(uri))


def source_id(uri: str) -> str:
    """Stable id of a source: the same URI always gives the same id (and so the same keys)."""
    return hashlib.sha1(uri.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def check_inputs(inputs: list[str]) -> None:
    """Fail before any work if an input does not exist."""
    if not inputs:
        raise FileNotFoundError("no inputs given")
    for uri in inputs:
        if not storage.exists(uri):
            raise FileNotFoundError(f"input does not exist: {storage.redact(uri)}")


def iter_sources(inputs: list[str], cfg: IngestConfig, stats: ListingStats | None = None,
                 output: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one source row (a dict of schema source columns) per listed item.

    Directories holding an audiomill dataset, and ``output`` itself, are never listed unless
    ``cfg.include_datasets`` (a file named as an input is always read).
    """
    stats = stats if stats is not None else ListingStats()
    seen: set[str] = set()
    for root in inputs:
        is_single_file = not storage.is_s3(root) and _is_local_file(root)
        skipper = None
        if not (cfg.include_datasets or is_single_file):
            skipper = DatasetSkipper(storage.local_path(root) or root, [output] if output else [])
            if skipper.root_is_dataset():
                stats.skipped_datasets.extend(skipper.skipped)
                continue
        for info in storage.list_files(root):
            if skipper is not None and skipper.skips(info.uri):
                continue
            yield from _dedup(_sources_of(info, is_single_file, cfg, stats), seen)
        if skipper is not None:
            stats.skipped_datasets.extend(skipper.skipped)


def _sources_of(info: storage.FileInfo, is_single_file: bool, cfg: IngestConfig, stats: ListingStats
                ) -> Iterator[dict[str, Any]]:
    name = posixpath.basename(info.uri)
    lower = name.lower()
    if is_single_file and lower.endswith(MANIFEST_SUFFIXES):
        return _manifest_sources(info.uri, cfg)
    if lower.endswith(TAR_SUFFIXES):
        return _tar_sources(info, cfg, stats)
    if is_single_file or _matches(name, cfg):
        return iter([_file_row(info.uri, info.size)])
    stats.skip(info.uri)
    return iter(())


def _dedup(rows: Iterable[dict[str, Any]], seen: set[str]) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row[schema.SOURCE_ID] in seen:
            row = _rejected(row, RejectReason.DUPLICATE_INPUT, "listed by more than one input")
            row[schema.SOURCE_ID] = source_id(row[schema.SOURCE_URI] + f"#dup{len(seen)}")
        seen.add(row[schema.SOURCE_ID])
        yield row


def iter_parts(sources: Iterable[dict[str, Any]], part_size: int,
               target_bytes: int | None = None) -> Iterator[pa.Table]:
    """Cut a source stream into part tables with ``part_id`` and ``part_sources`` set.

    A part holds at most ``part_size`` sources and closes before the source that would take its
    bytes (``source_bytes``) past ``target_bytes`` (None: by count only), so a part of 2 s clips
    and a part holding one 2 h recording carry comparable work. A source larger than the target is
    a part of its own; sources of unknown size (e.g. rejected manifest rows) count 0 bytes. The
    cut depends only on the listing, so the same inputs always give the same parts.
    """
    chunk: list[dict[str, Any]] = []
    part_id = chunk_bytes = 0
    for row in sources:
        size = row.get(schema.SOURCE_BYTES) or 0
        if chunk and target_bytes is not None and chunk_bytes + size > target_bytes:
            yield _part_table(chunk, part_id)
            chunk, part_id, chunk_bytes = [], part_id + 1, 0
        chunk.append(row)
        chunk_bytes += size
        if len(chunk) == part_size:
            yield _part_table(chunk, part_id)
            chunk, part_id, chunk_bytes = [], part_id + 1, 0
    if chunk:
        yield _part_table(chunk, part_id)


def part_fingerprint(part: pa.Table) -> str:
    """Hash of a part's listing; a part marker is valid only for the same listing."""
    digest = hashlib.sha256()
    for name in (schema.SOURCE_URI, schema.SOURCE_BYTES, schema.SOURCE_OFFSET, schema.METADATA_JSON,
                 schema.REJECT_REASON):
        digest.update(json.dumps(part[name].to_pylist()).encode())
    return digest.hexdigest()[:16]


PART_SCHEMA = pa.schema(schema.SOURCE_FIELDS + schema.REJECT_FIELDS)


def _part_table(rows: list[dict[str, Any]], part_id: int) -> pa.Table:
    for row in rows:
        row[schema.PART_ID] = part_id
        row[schema.PART_SOURCES] = len(rows)
    table = pa.Table.from_pylist(rows, schema=PART_SCHEMA)
    index = table.column_names.index(schema.PART_FINGERPRINT)
    return table.set_column(index, schema.PART_FINGERPRINT,
                            pa.array([part_fingerprint(table)] * table.num_rows, pa.string()))


def _is_local_file(uri: str) -> bool:
    import os

    path = storage.local_path(uri)
    return path is not None and os.path.isfile(path)


def _matches(name: str, cfg: IngestConfig) -> bool:
    lower = name.lower()
    if cfg.include and not any(fnmatch.fnmatch(lower, p.lower()) for p in cfg.include):
        return False
    return not any(fnmatch.fnmatch(lower, p.lower()) for p in cfg.exclude)


def _valid_text(text: str) -> str | None:
    """``text`` if it is valid UTF-8 (Arrow strings must be), else None."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return None


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _file_row(uri: str, size: int | None, read_uri: str | None = None, offset: int | None = None,
              metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    shown = storage.redact(_printable(uri))  # what outputs show: never credentials or tokens
    row = {schema.SOURCE_ID: source_id(uri), schema.SOURCE_URI: shown,
           schema.READ_URI: _printable(read_uri or uri), schema.SOURCE_BYTES: size,
           schema.SOURCE_OFFSET: offset,
           schema.METADATA_JSON: json.dumps(metadata, sort_keys=True, default=str) if metadata else None}
    if _valid_text(uri) is None:
        return _rejected(row, RejectReason.UNSAFE_PATH, "file name is not valid UTF-8")
    if storage.redact(uri) != uri:  # never store a secret, not even in the part's work files
        row[schema.READ_URI] = storage.redact(row[schema.READ_URI])
        return _rejected(row, RejectReason.UNSAFE_PATH,
                         "URI carries credentials or a query string; give credentials via the environment")
    return row


def _rejected(row: dict[str, Any], reason: RejectReason, detail: str) -> dict[str, Any]:
    return {**row, schema.REJECT_STAGE: schema.StageName.INGEST.value, schema.REJECT_REASON: reason.value,
            schema.REJECT_DETAIL: detail}


def _tar_sources(info: storage.FileInfo, cfg: IngestConfig, stats: ListingStats
                 ) -> Iterator[dict[str, Any]]:
    """Members of a plain tar as sources read by byte range; nothing is ever extracted."""
    try:
        with storage.open_read(info.uri) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if member.isdir():
                    continue
                uri = f"{info.uri}#{member.name}"
                row = _file_row(uri, member.size, read_uri=info.uri, offset=member.offset_data)
                if row.get(schema.REJECT_REASON):
                    yield row
                elif not member.isfile():
                    yield _rejected(row, RejectReason.UNSAFE_PATH, "tar member is a link or device")
                elif member.name.startswith("/") or ".." in member.name.split("/"):
                    yield _rejected(row, RejectReason.UNSAFE_PATH, "tar member path escapes the archive")
                elif _matches(posixpath.basename(member.name), cfg):
                    yield row
                else:
                    stats.skip(uri)
    except (tarfile.TarError, EOFError, *storage.STORAGE_ERRORS) as err:
        detail = storage.redact_error(err, info.uri)
        logger.warning("cannot read tar %s: %s", storage.redact(info.uri), detail)
        yield _rejected(_file_row(info.uri, info.size), RejectReason.READ_ERROR,
                        f"tar archive unreadable: {detail}"[:300])


def _manifest_sources(uri: str, cfg: IngestConfig) -> Iterator[dict[str, Any]]:
    """Rows of a jsonl/csv/parquet manifest; extra columns become each source's metadata.

    A row that cannot be read (not JSON, no string path, outside the manifest root) is a reject
    whose detail names its 1-based line (jsonl, csv) or row (parquet); a manifest that is not
    UTF-8 or not parseable at all is one reject naming the file.
    """
    base = posixpath.dirname(uri)
    try:
        for where, record in _manifest_records(uri):
            yield _manifest_row(uri, base, where, record, cfg)
    except ManifestError as err:
        yield _rejected(_file_row(uri, None), RejectReason.BAD_MANIFEST_ROW, str(err)[:300])


def _manifest_row(uri: str, base: str, where: str, record: dict[str, Any], cfg: IngestConfig
                  ) -> dict[str, Any]:
    problem = record.get(_ERROR_KEY) or _path_problem(record)
    if problem:
        row = _file_row(f"{uri}#{where.replace(' ', '')}", None, read_uri=uri)
        return _rejected(row, RejectReason.BAD_MANIFEST_ROW, f"{where}: {problem}"[:300])
    path = next(record[c] for c in PATH_COLUMNS if record.get(c))
    metadata = {k: v for k, v in record.items()
                if k not in PATH_COLUMNS and k not in _REJECT_KEYS and v is not None}
    if record.get(schema.REJECT_REASON):
        return _arrived_rejected(path, record, metadata)
    target = path if storage.is_s3(path) or path.startswith("/") else storage.join(base, path)
    if storage.redact(target) != target:
        return _file_row(target, None, metadata=metadata)  # rejected there, never touched
    escape = manifest_row_escape(path, target, uri, cfg.manifest_root, cfg.manifest_absolute_paths)
    if escape:
        return _rejected(_file_row(target, None, metadata=metadata), RejectReason.UNSAFE_PATH,
                         f"{where}: {escape}"[:300])
    try:
        size = storage.size(target)
    except storage.STORAGE_ERRORS as err:
        return _rejected(_file_row(target, None, metadata=metadata), RejectReason.READ_ERROR,
                         storage.redact_error(err, target)[:300])
    return _file_row(target, size, metadata=metadata)


def _path_problem(record: dict[str, Any]) -> str | None:
    """Why a record has no usable path, or None: the first path column present must be a string."""
    for column in PATH_COLUMNS:
        value = record.get(column)
        if value is None or value == "":
            continue
        if isinstance(value, str):
            return None
        return f"{column!r} is a {_json_type(value)} ({json.dumps(value, default=str)[:60]}), not a string"
    return f"no {'/'.join(PATH_COLUMNS)} column"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__)


_REJECT_KEYS = (schema.REJECT_STAGE, schema.REJECT_REASON, schema.REJECT_DETAIL)


def _arrived_rejected(path: str, record: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """A manifest row an earlier step (e.g. crawl) rejected keeps its stage, reason and detail.

    ``path`` is only shown, redacted (e.g. the URL that was never fetched); nothing is read, so
    the earlier verdict wins over the query-string check (but not over non-UTF-8 names).
    """
    row = _file_row(path, None, metadata=metadata)
    if _valid_text(path) is None:
        return row
    try:
        reason = RejectReason(record[schema.REJECT_REASON])
        stage = schema.StageName(record.get(schema.REJECT_STAGE) or schema.StageName.INGEST.value)
    except ValueError:
        return _rejected(row, RejectReason.BAD_MANIFEST_ROW,
                         f"unknown reject reason or stage: {record.get(schema.REJECT_REASON)!r}"[:300])
    return {**row, schema.REJECT_STAGE: stage.value, schema.REJECT_REASON: reason.value,
            schema.REJECT_DETAIL: storage.redact(str(record.get(schema.REJECT_DETAIL) or ""))[:300]}


class ManifestError(ValueError):
    """The manifest file as a whole cannot be read (not UTF-8, not parseable)."""


_ERROR_KEY = "_error"


def _manifest_records(uri: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` per row, ``where`` being ``line N`` (jsonl, csv) or ``row N`` (parquet),
    1-based; a row that is not an object comes as ``{_ERROR_KEY: why}``."""
    lower = uri.lower()
    try:
        if lower.endswith(".parquet"):
            yield from _parquet_records(uri)
            return
        _check_utf8(uri)
        with storage.open_read(uri) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="" if lower.endswith(".csv") else None)
            yield from _csv_records(text) if lower.endswith(".csv") else _jsonl_records(text)
    except ManifestError:
        raise
    except (pa.ArrowException, csv.Error, UnicodeDecodeError, *storage.STORAGE_ERRORS) as err:
        raise ManifestError(f"manifest {storage.redact(uri)} unreadable: "
                            f"{storage.redact_error(err, uri)}") from err


def _parquet_records(uri: str) -> Iterator[tuple[str, dict[str, Any]]]:
    with storage.open_read(uri) as stream:
        data = stream.read()
    number = 0
    for batch in pq.ParquetFile(pa.BufferReader(data)).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            number += 1
            yield f"row {number}", record


def _csv_records(text: io.TextIOBase) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(text)
    for record in reader:
        yield f"line {reader.line_num}", record


def _jsonl_records(text: io.TextIOBase) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield f"line {number}", {_ERROR_KEY: f"not valid JSON ({err.msg} at column {err.colno})"}
            continue
        if not isinstance(record, dict):
            record = {_ERROR_KEY: f"a JSON {_json_type(record)}, not an object"}
        yield f"line {number}", record


def _check_utf8(uri: str) -> None:
    """Raise :class:`ManifestError` naming the file and byte offset unless it is all UTF-8.

    A streaming pre-pass, so a bad file is one reject instead of rows cut off halfway.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with storage.open_read(uri) as stream:
        while chunk := stream.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise ManifestError(f"manifest {storage.redact(uri)} is not valid UTF-8 "
                                    f"(near byte {offset + err.start}); save it as UTF-8") from None
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ManifestError(f"manifest {storage.redact(uri)} is not valid UTF-8 (it ends "
                            "inside a character); save it as UTF-8") from None

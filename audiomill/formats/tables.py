"""Parquet tables through storage: the one place a table is read from or written to a URI."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import storage

COMPRESSION = "zstd"


def parquet_source(uri: str) -> str | pa.BufferReader:
    """What pyarrow should open for ``uri``: the local path, or the fetched object's bytes.

    Bytes go in a ``pa.BufferReader``, never an ``io.BytesIO``: pyarrow 26 reading a Python
    file object with threads leaves a native thread that aborts the interpreter at exit
    ("terminate called without an active exception").
    """
    path = storage.local_path(uri)
    return path if path else pa.BufferReader(storage.read_bytes(uri))


def read_table(uri: str, columns: list[str] | None = None) -> pa.Table:
    """Read a parquet file (a local path is read in place, an object is fetched once)."""
    return pq.read_table(parquet_source(uri), columns=columns)


def read_schema(uri: str) -> pa.Schema:
    return pq.read_schema(parquet_source(uri))


def read_num_rows(uri: str) -> int:
    return pq.read_metadata(parquet_source(uri)).num_rows


def table_bytes(table: pa.Table, compression: str | None = COMPRESSION) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=compression) if compression else pq.write_table(table, buffer)
    return buffer.getvalue()


def write_table(uri: str, table: pa.Table, compression: str | None = COMPRESSION) -> None:
    """Write ``table`` as one object (atomic on local disk: temp file + rename)."""
    storage.write_bytes(uri, table_bytes(table, compression))


def write_row_groups(uri: str, tables: list[pa.Table], base: pa.Schema) -> pa.Table:
    """One parquet file with one row group per table, under the union of their schemas.

    Columns a table lacks are null-filled; ``base`` fixes the leading columns. Returns the
    merged table as written (callers that report on it need not read it back).
    """
    unified = pa.unify_schemas([base, *(t.schema for t in tables)], promote_options="permissive")
    conformed = []
    for table in tables:
        for field in unified:
            if field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        conformed.append(table.select(unified.names).cast(unified))
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, unified, compression=COMPRESSION) as writer:
        for table in conformed:
            writer.write_table(table)
        if not conformed:
            writer.write_table(unified.empty_table())
    storage.write_bytes(uri, buffer.getvalue())
    return pa.concat_tables(conformed) if conformed else unified.empty_table()

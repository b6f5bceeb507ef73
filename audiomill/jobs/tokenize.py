"""Tokenize a finished dataset into sidecar tables: ``tokens/<model>/part-NNNNNN.parquet``.

One table per dataset part (the index's ``part_id``), rows sorted by key, written atomically and
then a ``part-NNNNNN_DONE.json`` marker holding the part fingerprint (tokenizer sha256, the
part's keys and byte ranges, the stage settings); a rerun skips parts whose marker matches, so an
interrupted job resumes and a finished one is a no-op. Shards are read by byte range and never
rewritten. Parts run on a Ray Data actor pool (``workers`` actors, the tokenizer loaded once per
actor), or in-process with ``workers=0``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audiomill import layout, schema, storage
from audiomill.config import TokenizeConfig
from audiomill.execution.features import list_segments, read_audio_batch
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.models.registry import resolve_model
from audiomill.pipelines.tokenize import TokenizeStage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenizeRequest:
    dataset: str
    stage: TokenizeConfig  # .tokenizer names the model
    registry: str = ""
    workers: int = 2  # Ray actors; 0 = in-process
    ray: RaySettings | None = None


@dataclass
class TokenizeResult:
    model_id: str
    output: str
    parts_written: int = 0
    parts_skipped: int = 0
    segments: int = 0
    tokens: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def _fingerprint(sha256: str, stage: TokenizeConfig, rows: pa.Table) -> str:
    digest = hashlib.sha256(sha256.encode())
    digest.update(json.dumps(stage.model_dump(exclude={"threads", "device", "enabled"}), sort_keys=True).encode())
    for key, shard, offset in zip(rows[schema.KEY].to_pylist(), rows[schema.SHARD].to_pylist(),
                                  rows[schema.TAR_OFFSET].to_pylist(), strict=True):
        digest.update(f"{key}\t{shard}\t{offset}\n".encode())
    return digest.hexdigest()


def token_table(table: pa.Table) -> pa.Table:
    """The sidecar columns of a tokenized batch, sorted by key, in ``TOKEN_TABLE_SCHEMA``."""
    table = table.select([f.name for f in schema.TOKEN_TABLE_SCHEMA]).sort_by(schema.KEY)
    return table.cast(schema.TOKEN_TABLE_SCHEMA)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=False)
    return sink.getvalue()


class PartTokenizer:
    """Tokenizes one part's rows and writes its table + marker; the model loads once."""

    def __init__(self, dataset: str, model_id: str, stage: TokenizeConfig, registry: str) -> None:
        self.dataset, self.model_id = dataset, model_id
        self.stage = TokenizeStage(stage, registry)

    def run(self, part_id: int, rows: pa.Table, fingerprint: str) -> dict[str, int | str]:
        batch = read_audio_batch(rows)
        table = token_table(self.stage(batch))
        storage.write_bytes(layout.token_part_uri(self.dataset, self.model_id, part_id), _parquet_bytes(table))
        storage.write_text(layout.token_marker_uri(self.dataset, self.model_id, part_id),
                           json.dumps({"part_id": part_id, "fingerprint": fingerprint, "rows": table.num_rows}))
        reasons = Counter(r for r in table[schema.TOK_SKIP_REASON].to_pylist() if r)
        return {"part_id": part_id, "segments": table.num_rows, "reasons": json.dumps(dict(sorted(reasons.items()))),
                "tokens": sum(n for n in table[schema.TOK_NUM_TOKENS].to_pylist() if n)}

    def __call__(self, batch: pa.Table) -> pa.Table:  # Ray Data: one part descriptor per batch
        out = []
        for item in batch.to_pylist():
            rows = pq.read_table(pa.BufferReader(item["rows"]))
            out.append(self.run(item["part_id"], rows, item["fingerprint"]))
        return pa.Table.from_pylist(out)


def tokenize_dataset(req: TokenizeRequest, progress: Callable[[str], None] = logger.info) -> TokenizeResult:
    """Write the token tables of every part not already done with the same fingerprint."""
    resolved = resolve_model(req.stage.tokenizer, req.registry)
    result = TokenizeResult(model_id=resolved.model_id, output=layout.tokens_dir(req.dataset, resolved.model_id))
    segments = list_segments([req.dataset])
    todo = []
    for part_id in sorted(set(segments[schema.PART_ID].to_pylist())):
        rows = segments.filter(pc.equal(segments[schema.PART_ID], part_id))
        fingerprint = _fingerprint(resolved.sha256, req.stage, rows)
        if _done(req.dataset, resolved.model_id, part_id, fingerprint):
            result.parts_skipped += 1
            continue
        todo.append({"part_id": part_id, "fingerprint": fingerprint, "rows": _parquet_bytes(rows)})
    progress(f"tokenizing {len(todo)} parts ({result.parts_skipped} already done) with {resolved.model_id}")
    stage = req.stage.model_copy(update={"tokenizer": resolved.ref})
    stats = _run(req, resolved.model_id, stage, todo) if todo else []
    for row in stats:
        result.parts_written += 1
        result.segments += int(row["segments"])
        result.tokens += int(row["tokens"])
        for reason, count in json.loads(row["reasons"]).items():
            result.skipped[reason] = result.skipped.get(reason, 0) + count
    return result


def _done(dataset: str, model_id: str, part_id: int, fingerprint: str) -> bool:
    marker = layout.token_marker_uri(dataset, model_id, part_id)
    if not storage.exists(marker) or not storage.exists(layout.token_part_uri(dataset, model_id, part_id)):
        return False
    return json.loads(storage.read_text(marker)).get("fingerprint") == fingerprint


def _run(req: TokenizeRequest, model_id: str, stage: TokenizeConfig, todo: list[dict]) -> list[dict]:
    if req.workers == 0:
        worker = PartTokenizer(req.dataset, model_id, stage, req.registry)
        return [worker.run(t["part_id"], pq.read_table(pa.BufferReader(t["rows"])), t["fingerprint"]) for t in todo]
    with ray_session(req.ray) as ray:
        parts = ray.data.from_items(todo, override_num_blocks=len(todo))
        stats = parts.map_batches(PartTokenizer, fn_constructor_args=(req.dataset, model_id, stage, req.registry),
                                  batch_size=1, batch_format="pyarrow", concurrency=min(req.workers, len(todo)),
                                  num_cpus=stage.threads, num_gpus=1 if stage.device == "cuda" else 0)
        return sorted(stats.take_all(), key=lambda r: r["part_id"])

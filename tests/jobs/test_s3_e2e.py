"""A clean job that reads from and writes to S3 (a real moto server on 127.0.0.1) through Ray."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema, storage
from audiomill.testing.s3 import create_bucket, moto_s3_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_corpus(demo_corpus):
    with moto_s3_server():
        bucket = create_bucket("raw-audio")
        for path in sorted(Path(demo_corpus.root).rglob("*")):
            if path.is_file():
                relative = path.relative_to(demo_corpus.root).as_posix()
                storage.write_bytes(storage.join(bucket, "crawl", relative), path.read_bytes())
        yield bucket


def test_s3_in_s3_out_through_ray(s3_corpus, demo_corpus):
    out = storage.join(s3_corpus, "datasets", "crawl-01")
    result = subprocess.run(
        [sys.executable, "-m", "audiomill", "clean", storage.join(s3_corpus, "crawl"), "--out", out,
         "--runner", "ray", "--cpus", "2", "--json", "--set", "ingest.part_size=8"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(result.stdout)
    assert manifest["counts"]["inputs"] == len(demo_corpus.files)
    assert manifest["accounting"]["ok"]
    stored = json.loads(storage.read_text(storage.join(out, layout.MANIFEST_FILE)))
    assert stored["counts"] == manifest["counts"]
    index = pq.read_table(io.BytesIO(storage.read_bytes(storage.join(out, layout.INDEX_FILE))))
    rejects = pq.read_table(io.BytesIO(storage.read_bytes(storage.join(out, layout.REJECTS_FILE))))
    prefix = storage.join(s3_corpus, "crawl") + "/"
    outcomes = {u[len(prefix):]: "kept" for u in index[schema.SOURCE_URI].to_pylist()}
    outcomes |= {u[len(prefix):]: f"reject:{r}" for u, r in
                 zip(rejects[schema.SOURCE_URI].to_pylist(), rejects[schema.REJECT_REASON].to_pylist())}
    assert {f.path: f.expect for f in demo_corpus.files if outcomes[f.path] not in f.expect} == {}
    for shard in manifest["shards"]:
        data = storage.read_bytes(layout.shard_uri(out, shard["name"]))
        assert len(data) == shard["bytes"]
    row = index.slice(0, 1).to_pylist()[0]
    flac = storage.read_bytes(layout.shard_uri(out, row[schema.SHARD]), row[schema.TAR_OFFSET],
                              row[schema.FLAC_BYTES])
    assert flac[:4] == b"fLaC"
    assert "testing" not in result.stdout + result.stderr  # the secret key never shows

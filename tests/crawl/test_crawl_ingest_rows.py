"""Crawl manifest rows through ingest: fetched files become sources with metadata; failed URLs
arrive rejected and keep their stage, reason and detail (never their query string)."""

from __future__ import annotations

import json

from audiomill import schema
from audiomill.config import IngestConfig
from audiomill.ingest import iter_sources


def test_prerejected_manifest_rows_keep_stage_reason_and_detail(tmp_path):
    audio = tmp_path / "raw" / "0123456789abcdef.wav"
    audio.parent.mkdir()
    audio.write_bytes(b"RIFF....")
    rows = [
        {"path": str(audio), "source_url": "http://h.org/a.wav", "license": "CC0-1.0"},
        {"uri": "http://h.org/private/b.wav", "source_url": "http://h.org/private/b.wav",
         "reject_stage": "crawl", "reject_reason": "robots_disallowed", "reject_detail": "robots.txt disallows it"},
        {"uri": "http://h.org/c.wav#89abcdef01234567", "reject_stage": "crawl", "reject_reason": "timeout",
         "reject_detail": "no response from http://h.org/c.wav?token=SECRET"},
        {"uri": "http://h.org/d.wav", "reject_stage": "crawl", "reject_reason": "made_up"},
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources = list(iter_sources([str(manifest)], IngestConfig()))

    kept, robots, timeout, unknown = sources
    assert kept.get(schema.REJECT_REASON) is None and kept[schema.SOURCE_BYTES] == 8
    assert json.loads(kept[schema.METADATA_JSON]) == {"source_url": "http://h.org/a.wav", "license": "CC0-1.0"}
    assert (robots[schema.REJECT_STAGE], robots[schema.REJECT_REASON]) == ("crawl", "robots_disallowed")
    assert robots[schema.REJECT_DETAIL] == "robots.txt disallows it"
    assert "reject_reason" not in json.loads(robots[schema.METADATA_JSON])
    assert (timeout[schema.REJECT_STAGE], timeout[schema.REJECT_REASON]) == ("crawl", "timeout")
    assert "SECRET" not in json.dumps(timeout) and timeout[schema.SOURCE_URI] == "http://h.org/c.wav"
    assert timeout[schema.SOURCE_ID] != robots[schema.SOURCE_ID]
    assert (unknown[schema.REJECT_STAGE], unknown[schema.REJECT_REASON]) == ("ingest", "bad_manifest_row")

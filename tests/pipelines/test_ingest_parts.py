"""iter_parts cuts by source count and by input bytes (ingest.part_size, ingest.part_target_bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomill import schema
from audiomill.config import load_config
from audiomill import ingest


def rows(sizes: list[int | None]) -> list[dict]:
    return [{schema.SOURCE_ID: f"id{i}", schema.SOURCE_URI: f"/in/f{i:03d}.wav", schema.READ_URI: f"/in/f{i:03d}.wav",
             schema.SOURCE_BYTES: size, schema.SOURCE_OFFSET: None, schema.METADATA_JSON: None}
            for i, size in enumerate(sizes)]


def cut(sizes: list[int | None], part_size: int, target: int | None) -> list[list[int | None]]:
    return [part[schema.SOURCE_BYTES].to_pylist() for part in ingest.iter_parts(iter(rows(sizes)), part_size, target)]


def test_parts_close_before_the_source_that_would_pass_the_byte_target():
    assert cut([40, 40, 40, 10, 90, 5, 5], part_size=100, target=100) == [[40, 40], [40, 10], [90, 5, 5]]


def test_a_source_bigger_than_the_target_is_a_part_of_its_own():
    assert cut([10, 500, 10, 10], part_size=100, target=100) == [[10], [500], [10, 10]]


def test_part_size_stays_the_cap_on_sources():
    assert cut([1] * 7, part_size=3, target=1000) == [[1, 1, 1], [1, 1, 1], [1]]


def test_without_a_target_parts_are_cut_by_count_only():
    assert cut([10**9, 10**9, 1, 1, 1], part_size=2, target=None) == [[10**9, 10**9], [1, 1], [1]]


def test_unknown_sizes_count_zero_bytes():
    assert cut([None, 60, None, 60, None], part_size=10, target=100) == [[None, 60, None], [60, None]]


def test_byte_cut_parts_are_numbered_and_fingerprinted_deterministically():
    first = list(ingest.iter_parts(iter(rows([30, 70, 20, 10, 200])), 10, 100))
    again = list(ingest.iter_parts(iter(rows([30, 70, 20, 10, 200])), 10, 100))
    assert [p[schema.PART_ID].to_pylist() for p in first] == [[0, 0], [1, 1], [2]]
    assert [set(p[schema.PART_SOURCES].to_pylist()) for p in first] == [{2}, {2}, {1}]
    assert [p[schema.PART_FINGERPRINT][0].as_py() for p in first] == \
           [p[schema.PART_FINGERPRINT][0].as_py() for p in again]


def test_clean_plan_uses_the_byte_target(tmp_path: Path, write_tone):
    from audiomill.jobs.clean import plan_job
    from audiomill.jobs.prepare import prepare_job

    for name, seconds in (("a.wav", 1.0), ("b.wav", 1.0), ("c.wav", 4.0), ("d.wav", 1.0)):
        write_tone(f"in/{name}", seconds)
    sizes = [p.stat().st_size for p in sorted((tmp_path / "in").iterdir())]
    target = sizes[0] + sizes[1]
    cfg = load_config(inputs=[str(tmp_path / "in")], output=str(tmp_path / "out"),
                      overrides=["ingest.part_size=10", f"ingest.part_target_bytes={target}"])
    assert [p.sources for p in plan_job(prepare_job(cfg), write=False).parts] == [2, 1, 1]
    with pytest.raises(Exception, match="part_target_bytes"):
        load_config(inputs=[str(tmp_path / "in")], overrides=["ingest.part_target_bytes=0"])

"""One runner owns Ray for a whole job: a fully resumed Ray run still runs its global dedup step on
a Ray instance made with the job's runner settings (it used to start a fresh default one)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from audiomill.config import load_config
from audiomill.execution import ray_dedup, runners
from audiomill.jobs.clean import run_clean

pytestmark = pytest.mark.slow


def test_a_fully_resumed_ray_run_dedups_on_the_configured_ray(demo_corpus, tmp_path: Path, monkeypatch):
    root = Path(demo_corpus.root)
    inputs = [str(p) for p in sorted((root / "dups").glob("*"))[:3]]
    out = str(tmp_path / "ds")
    first = run_clean(load_config(inputs=inputs, output=out, overrides=["runner.kind=local", "dedup.ray_min_segments=0"]))
    sessions, searches = [], []
    real_session, real_edges = runners.ray_session, ray_dedup.ray_edges

    @contextlib.contextmanager
    def recording_session(settings=None):
        sessions.append(settings)
        with real_session(settings) as ray:
            yield ray

    def recording_edges(ray, search):
        searches.append(search.rows())
        return real_edges(ray, search)

    monkeypatch.setattr(runners, "ray_session", recording_session)
    monkeypatch.setattr(ray_dedup, "ray_edges", recording_edges)
    again = run_clean(load_config(inputs=inputs, output=out, overrides=[
        "runner.kind=ray", "runner.num_cpus=1", "dedup.ray_min_segments=0"]))
    assert again.counts.parts_resumed == again.counts.parts  # nothing left to run: fully resumed
    assert searches and searches[0] == first.dedup["segments"]  # the edge search ran on Ray Data
    assert len(sessions) == 1 and sessions[0].num_cpus == 1 and sessions[0].address is None
    assert again.dedup == first.dedup


def test_the_processes_runner_runs_a_big_global_dedup_on_ray_data(demo_corpus, tmp_path: Path, monkeypatch):
    root = Path(demo_corpus.root)
    inputs = [str(p) for p in sorted((root / "dups").glob("*"))[:4]]
    local = run_clean(load_config(inputs=inputs, output=str(tmp_path / "local"),
                                  overrides=["runner.kind=local", "ingest.part_size=2"]))
    searches, real_edges = [], ray_dedup.ray_edges

    def recording_edges(ray, search):
        searches.append(search.rows())
        return real_edges(ray, search)

    monkeypatch.setattr(ray_dedup, "ray_edges", recording_edges)
    big = run_clean(load_config(inputs=inputs, output=str(tmp_path / "processes"), overrides=[
        "ingest.part_size=2", "runner.num_cpus=1", "dedup.ray_min_segments=1"]))  # auto: processes
    assert big.counts.parts == 2 and searches == [local.dedup["segments"]]
    assert big.dedup == local.dedup
    for name in ("index.parquet", "rejects.parquet"):
        assert (tmp_path / "processes" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()

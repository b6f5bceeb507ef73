"""Reliability under faults: object-storage errors, killed Ray workers. Output must not change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from audiomill import layout, storage
from audiomill.config import load_config
from audiomill.jobs.clean import run_clean
from audiomill.testing.faulty_proxy import FaultSchedule, faulty_proxy
from audiomill.testing.s3 import create_bucket, moto_s3_server

pytestmark = pytest.mark.slow


def _speech_subset(demo_corpus) -> list:
    return [f for f in demo_corpus.files if f.kind in ("speech", "broken")][:14]


def _clean_s3(inputs: str, output: str) -> dict:
    cfg = load_config(inputs=[inputs], output=output,
                      overrides=["runner.kind=local", "ingest.part_size=3"])
    return run_clean(cfg).to_dict()


def test_s3_faults_are_retried_and_change_nothing(demo_corpus, monkeypatch):
    with moto_s3_server() as endpoint:
        bucket = create_bucket("faulty")
        for entry in _speech_subset(demo_corpus):
            storage.write_bytes(storage.join(bucket, "in", entry.path),
                                (Path(demo_corpus.root) / entry.path).read_bytes())
        clean = _clean_s3(storage.join(bucket, "in"), storage.join(bucket, "clean"))
        schedule = FaultSchedule(fault_every=4, stall_every=23, stall_s=2.5)
        with faulty_proxy(endpoint, schedule) as proxy:
            monkeypatch.setenv("AUDIOMILL_S3_ENDPOINT_URL", proxy)
            monkeypatch.setenv("AUDIOMILL_S3_READ_TIMEOUT_S", "1")
            monkeypatch.setenv("AUDIOMILL_S3_MAX_ATTEMPTS", "10")
            storage.reset_s3_client()
            faulty = _clean_s3(storage.join(bucket, "in"), storage.join(bucket, "faulty"))
            monkeypatch.setenv("AUDIOMILL_S3_ENDPOINT_URL", endpoint)
            storage.reset_s3_client()
        assert schedule.injected["503_before"] and schedule.injected["500_after"] and schedule.injected["stall"]
        assert faulty["counts"] == clean["counts"]
        assert [s["sha256"] for s in faulty["shards"]] == [s["sha256"] for s in clean["shards"]]
        for name in (layout.INDEX_FILE, layout.REJECTS_FILE):
            assert storage.read_bytes(storage.join(bucket, "faulty", name)) == \
                storage.read_bytes(storage.join(bucket, "clean", name))
        shard_objects = list(storage.list_files(storage.join(bucket, "faulty", layout.SHARDS_DIR)))
        assert sorted(o.uri.rsplit("/", 1)[-1] for o in shard_objects) == sorted(s["name"] for s in faulty["shards"])
        sizes = {s["name"]: s["bytes"] for s in faulty["shards"]}
        assert all(o.size == sizes[o.uri.rsplit("/", 1)[-1]] for o in shard_objects)  # no partial objects


def _ray_workers(root_pid: int) -> list[psutil.Process]:
    """Ray worker processes running our stage actors, found anywhere on the machine."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if "MapWorker" in cmdline and "Stages[" in cmdline:
            found.append(proc)
    return found


def test_killed_ray_worker_does_not_change_output(demo_corpus, tmp_path):
    args = [sys.executable, "-m", "audiomill", "clean", str(demo_corpus.root), "--runner", "ray", "--cpus", "2",
            "--json", "--set", "ingest.part_size=1"]
    # the undisturbed reference runs in-process: local and Ray runs are byte-identical (test_clean_e2e)
    reference = subprocess.run([*[a if a != "ray" else "local" for a in args], "--out", str(tmp_path / "reference")],
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / "disturbed"
    process = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    killed = None
    deadline = time.time() + 180
    while time.time() < deadline and killed is None and process.poll() is None:
        markers = list(out.glob(f"{layout.PARTS_DIR}/*/{layout.DONE_MARKER}"))
        workers = _ray_workers(process.pid)
        if len(markers) >= 2 and workers:
            killed = workers[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=300)
    assert killed is not None, "no worker found to kill before the job ended"
    assert process.returncode == 0, stderr[-3000:]
    manifest, expected = json.loads(stdout), json.loads(reference.stdout)
    assert manifest["counts"]["parts_resumed"] == 0  # finished within the same run
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in expected["shards"]]
    for name in (layout.INDEX_FILE, layout.REJECTS_FILE):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()

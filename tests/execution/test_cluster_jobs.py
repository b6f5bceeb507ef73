"""Real jobs on a real `ray start` cluster on 127.0.0.1, submitted through the Ray Jobs API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from audiomill import layout
from audiomill.execution.cluster import ClusterState, cluster_processes
from audiomill.testing.sockets import listeners, with_descendants

pytestmark = pytest.mark.slow


def _cli(*args: str, env: dict, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audiomill", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    env = dict(os.environ, AUDIOMILL_HOME=str(home))
    env.pop("RAY_ADDRESS", None)
    up = _cli("cluster", "up", "--cpus", "2", env=env, timeout=200)
    assert up.returncode == 0, up.stderr[-3000:]
    state = ClusterState.load(home / "cluster.json")
    yield env, state
    down = _cli("cluster", "down", env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not cluster_processes(state.temp_dir)


def test_status_reports_a_live_node(cluster):
    env, state = cluster
    status = _cli("cluster", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["reachable"] and info["nodes"][0]["state"] == "ALIVE" and info["nodes"][0]["cpus"] == 2
    assert info["dashboard_url"].startswith("http://127.0.0.1:")


def test_clean_job_submitted_to_cluster(cluster, demo_corpus, tmp_path):
    env, state = cluster
    out = tmp_path / "dataset"
    result = _cli("clean", str(demo_corpus.root), "--out", str(out), "--address", "auto", "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(result.stdout)
    assert manifest["accounting"]["ok"] and manifest["counts"]["inputs"] == len(demo_corpus.files)
    assert json.loads((out / layout.MANIFEST_FILE).read_text())["counts"] == manifest["counts"]
    jobs = json.loads(_cli("jobs", "list", "--json", env=env).stdout)
    assert any(j["status"] == "SUCCEEDED" and "audiomill clean" in j["entrypoint"] for j in jobs)
    job_id = next(j["job_id"] for j in jobs if j["status"] == "SUCCEEDED")
    logs = _cli("jobs", "logs", job_id, env=env)
    assert '"format": "audiomill-dataset/1"' in logs.stdout


def test_the_cluster_listens_on_loopback_only(cluster):
    """After a job ran (so job drivers and workers existed), every socket of the cluster's processes
    (found by temp dir or GCS address, plus their children) is bound to loopback."""
    env, state = cluster
    mine = [p for p in psutil.process_iter(["cmdline"])
            if state.temp_dir in " ".join(p.info["cmdline"] or []) or state.gcs_address in " ".join(p.info["cmdline"] or [])]
    seen = listeners(with_descendants(mine))
    ports = {item.port for item in seen}
    assert {"gcs_server", "raylet"} <= {item.process for item in seen}, seen
    assert int(state.gcs_address.rsplit(":", 1)[1]) in ports and int(state.dashboard_url.rsplit(":", 1)[1]) in ports
    exposed = [item for item in seen if not item.loopback]
    assert not exposed, f"the cluster listens beyond loopback: {exposed}"


def test_worker_nodes_are_refused_rather_than_exposed(tmp_path):
    env = dict(os.environ, AUDIOMILL_HOME=str(tmp_path))
    result = _cli("cluster", "up", "--workers", "1", env=env, timeout=60)
    assert result.returncode != 0 and "loopback-only" in result.stderr + result.stdout
    assert not (tmp_path / "cluster.json").exists()


def test_detached_job_can_be_stopped(cluster, demo_corpus, tmp_path):
    env, state = cluster
    submitted = _cli("clean", str(demo_corpus.root), "--out", str(tmp_path / "ds"), "--address", state.dashboard_url,
                     "--detach", "--json", "--set", "ingest.part_size=1", env=env)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job_id = json.loads(submitted.stdout)["job_id"]
    assert _cli("jobs", "stop", job_id, env=env).returncode == 0
    deadline = time.time() + 120
    status = ""
    while time.time() < deadline:
        status = json.loads(_cli("jobs", "status", job_id, env=env).stdout)["status"]
        if status in ("STOPPED", "SUCCEEDED", "FAILED"):
            break
        time.sleep(1)
    assert status in ("STOPPED", "SUCCEEDED")




def test_crawl_submitted_to_cluster_fetches_on_ray_workers(cluster, tmp_path):
    """`crawl --address --fetch-only`: the URL list ships with the job, Ray tasks fetch (the report
    names the workers) and every URL ends as a fetched file or a row with its reject reason.
    (The clean half of `crawl` is the clean job above, on the same cluster.)"""
    from audiomill.testing import crawl_site
    from audiomill.testing import http_server as hs

    env, _ = cluster
    with hs.HttpTestServer(crawl_site.site_routes(crawl_site.speech_files())) as site:
        urls_file = tmp_path / "urls.txt"
        urls_file.write_text("".join(site.url(p) + "\n" for p in crawl_site.LISTED))
        out = tmp_path / "crawled"
        sets = ["crawl.allowed_domains=[127.0.0.1]", "crawl.per_host_rate=20", "crawl.timeout_s=1",
                "crawl.retries=2", "crawl.backoff_s=0.05", "crawl.seed=7", "crawl.max_bytes=1048576"]
        result = _cli("crawl", str(urls_file), "--out", str(out), "--address", "auto", "--fetch-only",
                      *[a for s in sets for a in ("--set", s)], env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    kept = {p.split("?")[0] for p, v in crawl_site.EXPECTED.items() if v == "kept"}
    failed = {p.split("?")[0]: v for p, v in crawl_site.EXPECTED.items() if v not in (None, "kept")}
    report = json.loads((out / "_crawl" / "report.json").read_text())
    assert report["fetch_on"] == "ray" and report["fetched"] == len(kept) and report["fetch_workers"]
    rows = [json.loads(line) for line in (out / "_crawl" / "manifest.jsonl").read_text().splitlines()]
    outcome = {(r.get("source_url") or r.get("uri")).removeprefix(site.url("")).split("?")[0]:
               "kept" if "path" in r else r["reject_reason"] for r in rows}
    assert outcome == {p: "kept" for p in kept} | failed
    assert all(Path(r["path"]).is_file() and Path(r["path"]).parent == out / "_raw" for r in rows if "path" in r)

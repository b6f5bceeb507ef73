"""Embedded Ray listens on loopback only: every TCP socket of the driver, GCS, raylet, agents and
workers, inspected while a `clean` job runs on Ray (the issue's reproduction), and while a bare
session runs tasks and an actor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from audiomill.testing.signals import espeak, resample, write_audio
from audiomill.testing.sockets import Listener, listeners, with_descendants

pytestmark = pytest.mark.slow
RAY_SERVERS = {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    for name in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        env.pop(name, None)
    return env


def _assert_loopback_only(seen: set[Listener]) -> None:
    assert RAY_SERVERS <= {item.process for item in seen}, sorted(seen, key=str)
    exposed = sorted((item for item in seen if not item.loopback), key=str)
    assert not exposed, f"Ray listens beyond loopback: {exposed}"


def test_a_clean_job_on_embedded_ray_listens_on_loopback_only(tmp_path: Path):
    corpus = tmp_path / "corpus"
    for i, text in enumerate(["Loopback only, please.", "Nothing of Ray may listen on other interfaces."]):
        audio, sr = espeak(text)
        write_audio(corpus / f"s{i}.wav", resample(audio, sr, 16_000), 16_000)
    job = subprocess.Popen([sys.executable, "-m", "audiomill", "clean", str(corpus), "--out", str(tmp_path / "ds"),
                            "--runner", "ray", "--set", "runner.num_cpus=2", "--set", "ingest.part_size=1"],
                           env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: set[Listener] = set()
    deadline = time.time() + 400
    while job.poll() is None and time.time() < deadline:  # sample the job's process tree as it runs
        seen.update(listeners(with_descendants([psutil.Process(job.pid)])))
        time.sleep(0.3)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 0, stderr[-3000:]
    _assert_loopback_only(seen)


SESSION_SCRIPT = r"""
import json, os, time
import psutil
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.testing.sockets import listeners, with_descendants

with ray_session(RaySettings(num_cpus=2)) as ray:
    @ray.remote
    def square(x):
        return x * x

    @ray.remote
    class Counter:
        def add(self, n):
            return n + 1

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
    assert ray.get(Counter.remote().add.remote(1)) == 2
    seen = []
    for _ in range(40):  # agents come up asynchronously: wait until all are listening
        seen = listeners(with_descendants([psutil.Process(os.getpid())]))
        if {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= {i.process for i in seen}:
            break
        time.sleep(0.5)
    print(json.dumps([item.__dict__ for item in seen]))
"""


def test_a_bare_ray_session_listens_on_loopback_only():
    result = subprocess.run([sys.executable, "-c", SESSION_SCRIPT], capture_output=True, text=True, env=_env(),
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_loopback_only({Listener(**item) for item in json.loads(result.stdout.strip().splitlines()[-1])})

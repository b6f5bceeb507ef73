"""Embedded Ray listens on loopback only: every TCP socket of the driver, GCS, raylet, agents and
workers, inspected while a session runs tasks and an actor (Ray Data and Train run on those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

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
    for _ in range(20):  # agents come up asynchronously: wait until both are listening
        seen = listeners(with_descendants([psutil.Process(os.getpid())]))
        names = {item.process for item in seen}
        if {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names:
            break
        time.sleep(0.5)
    print(json.dumps([item.__dict__ | {"loopback": item.loopback} for item in seen]))
"""


def test_embedded_ray_binds_every_socket_to_loopback():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    result = subprocess.run([sys.executable, "-c", SESSION_SCRIPT], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    names = {item["process"] for item in seen}
    assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, seen
    exposed = [item for item in seen if not item["loopback"]]
    assert not exposed, f"Ray listens beyond loopback: {exposed}"
    assert len(seen) >= 8  # GCS, raylet x2, agents, driver and workers: the check saw real servers

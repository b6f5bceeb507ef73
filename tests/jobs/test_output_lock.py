"""The output lease: one holder at a time (threads, processes, S3), holder named in the refusal,
renewed by a heartbeat, taken over once its holder is dead or its lease expired."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from audiomill import layout, storage
from audiomill.jobs.lock import (LeaseHolder, LockLostError, OutputLock, OutputLockedError, output_lock,
                                 read_holder)
from audiomill.testing.s3 import create_bucket, moto_s3_server

NO_HEARTBEAT = 3600.0  # tests that drive renewal themselves


@pytest.fixture(scope="module")
def s3_bucket():
    with moto_s3_server():
        yield create_bucket("audiomill-lock-test")


@pytest.fixture(params=["local", "s3"])
def output(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "dataset")
    return storage.join(request.getfixturevalue("s3_bucket"), tmp_path.name, "dataset")


def _plant(output: str, **changes) -> LeaseHolder:
    """Write a lease of some other run straight into the lock object."""
    now = time.time()
    holder = LeaseHolder(**({"host": "other-host", "pid": 4242, "started_at": now - 60, "command": "audiomill clean x",
                             "token": "t0", "renewed_at": now - 5, "expires_at": now + 600} | changes))
    storage.write_bytes(layout.lock_uri(output), holder.to_json())
    return holder


def test_the_lease_names_its_holder_and_goes_away_on_release(output):
    with OutputLock(output, command="audiomill clean in --out ds", heartbeat_s=NO_HEARTBEAT) as lock:
        stored = json.loads(storage.read_text(layout.lock_uri(output)))
        assert stored["host"] == socket.gethostname() and stored["pid"] == os.getpid()
        assert stored["command"] == "audiomill clean in --out ds"
        assert stored["expires_at"] - stored["renewed_at"] == pytest.approx(lock.ttl_s)
        assert read_holder(output) == lock.holder
    assert not storage.exists(layout.lock_uri(output))
    assert read_holder(output) is None


def test_a_second_run_is_refused_with_the_holder_named(output):
    planted = _plant(output)
    with pytest.raises(OutputLockedError) as refused:
        OutputLock(output).acquire()
    message = str(refused.value)
    assert "is being written by another run: pid 4242 on other-host" in message
    assert "(audiomill clean x)" in message and ("expires in 599 s" in message or "expires in 600 s" in message)
    assert refused.value.holder == planted
    assert json.loads(storage.read_text(layout.lock_uri(output)))["token"] == "t0"  # untouched


def test_an_expired_lease_is_taken_over(output):
    _plant(output, expires_at=time.time() - 1)
    with OutputLock(output, heartbeat_s=NO_HEARTBEAT) as lock:
        assert read_holder(output).token == lock.holder.token != "t0"


def test_a_dead_holder_on_this_host_is_taken_over_at_once(output):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    _plant(output, host=socket.gethostname(), pid=int(finished.stdout), started_at=time.time() - 5)
    with OutputLock(output, heartbeat_s=NO_HEARTBEAT):
        assert read_holder(output).pid == os.getpid()


def test_the_heartbeat_keeps_a_short_lease_alive(output):
    with OutputLock(output, ttl_s=2.5, heartbeat_s=0.1) as lock:  # 25 beats per lease: load-proof
        first = lock.holder.renewed_at
        time.sleep(3.5)  # past the first expiry: only renewal keeps it
        with pytest.raises(OutputLockedError):
            OutputLock(output).acquire()
        assert read_holder(output).renewed_at > first + 1.0
        lock.check()


def test_a_lease_taken_over_is_lost_not_overwritten(output):
    lock = OutputLock(output, heartbeat_s=NO_HEARTBEAT)
    lock.acquire()
    _plant(output, token="newer")  # as if another run took it over while this one stalled
    with pytest.raises(LockLostError, match="another run took it over"):
        lock.renew()
    with pytest.raises(LockLostError):
        lock.check()
    lock.release()
    assert read_holder(output).token == "newer"  # the new holder's lease survives our release


def test_of_many_racing_runs_exactly_one_wins(tmp_path):
    """Local disk, 8 threads at once, on a fresh output and then on a stale lease, ten times over
    (the stale round's old rename-and-put-back let two threads win about 1 run in 6)."""
    output = str(tmp_path / "dataset")
    for stale in (False, True) * 10:
        if stale:
            _plant(output, expires_at=time.time() - 1)
        locks = [OutputLock(output, heartbeat_s=NO_HEARTBEAT) for _ in range(8)]
        outcomes: list[str] = []
        start = threading.Barrier(len(locks))

        def contend(lock: OutputLock) -> None:
            start.wait()
            try:
                lock.acquire()
                outcomes.append("won")
            except OutputLockedError:
                outcomes.append("refused")

        threads = [threading.Thread(target=contend, args=(lock,)) for lock in locks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refused"] * 7 + ["won"]
        (winner,) = [lock for lock in locks if lock.holder is not None]
        assert read_holder(output).token == winner.holder.token
        winner.release()
        assert not os.path.exists(layout.lock_uri(output))
        assert os.listdir(output) == []  # no temp or moved files left


def test_nested_output_lock_reuses_the_held_lease(tmp_path):
    output = str(tmp_path / "dataset")
    with output_lock(output) as outer:
        with output_lock(output + "/") as inner:  # e.g. crawl, then the clean job it runs
            assert inner is outer
        assert read_holder(output).token == outer.holder.token
    assert read_holder(output) is None


HOLDER_SCRIPT = """
import sys, time
from audiomill.jobs.lock import OutputLock
lock = OutputLock(sys.argv[1], command="holder-process")
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_killed_run_does_not_leave_the_output_stuck(tmp_path: Path):
    """A real second process holds the lock; kill -9 it; the next run takes over at once."""
    output = str(tmp_path / "dataset")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, output], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError, match=f"pid {holder.pid} on .*holder-process"):
            OutputLock(output).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with OutputLock(output, heartbeat_s=NO_HEARTBEAT) as lock:  # its lease has 2 minutes left
        assert read_holder(output).token == lock.holder.token

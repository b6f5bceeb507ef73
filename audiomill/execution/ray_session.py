"""The one owner of the Ray lifecycle: start or join Ray, quiet its logs, shut it down.

A process that needs Ray enters :func:`ray_session`; nested entries reuse the running session
and only the outermost one shuts Ray down (and only if it started it). The embedded instance
binds to loopback (``127.0.0.1``): Ray's GCS has no authentication, so nothing of it may listen
on other interfaces unless a cluster address is given explicitly.

Loopback takes more than ``_node_ip_address="127.0.0.1"``: Ray 2.60 replaces a loopback node IP
by the host's routable one (``services.resolve_ip_for_localhost``) unless Ray "clusters" are off
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the macOS/Windows default). With them off while Ray
starts, the node IP stays 127.0.0.1 and every server binds there: GCS, raylet (node manager and
object manager), core workers, the dashboard agent (gRPC, HTTP, metrics) and the runtime-env agent.
Processes Ray starts inherit the variable, so workers spawned later keep it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
RAY_CLUSTERS_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray reads it on import (``ray_constants.ENABLE_RAY_CLUSTER``); "0" keeps a loopback node IP."""
TRAIN_POLL_ENV, TRAIN_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25"
_RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray._private")


@dataclass(frozen=True)
class RaySettings:
    """What a session needs to know: an address to join, or the CPUs of an embedded instance."""

    address: str | None = None
    num_cpus: int | None = None


_depth = 0
_started_here = False


def quiet_ray_loggers() -> None:
    """Ray installs INFO handlers on import; the CLI draws its own progress."""
    for name in _RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def is_loopback_address(address: str) -> bool:
    """True for ``127.0.0.1:6379``, ``ray://localhost:10001``, ``[::1]:6379`` and the like."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]") if ":" in address else address
    return host in LOOPBACK_HOSTS


@contextlib.contextmanager
def loopback_node(ray) -> Iterator[None]:  # noqa: ANN001 - the ray module
    """While Ray starts or connects here, keep 127.0.0.1 as this node's IP (see module doc)."""
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(RAY_CLUSTERS_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[RAY_CLUSTERS_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(RAY_CLUSTERS_ENV, None)
        else:
            os.environ[RAY_CLUSTERS_ENV] = saved_env


def start_or_join(ray, settings: RaySettings) -> bool:  # noqa: ANN001 - the ray module
    """Initialise Ray if needed (loopback-only when embedded); True when this call started or
    joined it. Prefer :func:`ray_session`, which also shuts down what it started."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Ray Train's controller polls its workers every 2 s by default, so a short run waits up to
    # 2 s after its last report; processes Ray starts inherit this (a set value is kept)
    os.environ.setdefault(TRAIN_POLL_ENV, TRAIN_POLL_S)
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:  # join: inside a Ray job "auto" finds its cluster, whatever num_cpus says
        target = settings.address or "auto"
        local = is_loopback_address(address)
        with loopback_node(ray) if local else contextlib.nullcontext():
            ray.init(address=target, **kwargs)
    else:
        with loopback_node(ray):
            # "local": always a new embedded instance, never a stray `ray start` cluster on this machine
            ray.init(address="local", num_cpus=settings.num_cpus, _node_ip_address=LOOPBACK, **kwargs)
    if main_thread and callable(sigterm):  # Ray replaces it with a handler that dumps stacks
        signal.signal(signal.SIGTERM, sigterm)
    logger.info("ray resources: %s", ray.cluster_resources())
    return True


@contextlib.contextmanager
def ray_session(settings: RaySettings | None = None) -> Iterator[object]:
    """Yield the initialised ``ray`` module; shut it down on leaving if this session started it."""
    global _depth, _started_here
    import ray

    quiet_ray_loggers()
    if _depth == 0:
        _started_here = start_or_join(ray, settings or RaySettings())
    _depth += 1
    try:
        yield ray
    finally:
        _depth -= 1
        if _depth == 0 and _started_here:
            ray.shutdown()
            _started_here = False


BENIGN_DRIVER_LINES = (b"has constructor arguments in the object store and max_restarts > 0",)
"""Ray core lines the driver prints that do not apply to audiomill, with why:

- Ray Data ``ray.put``s each map operator's transformer and DataContext and holds those refs for
  the operator's lifetime (``MapOperator._map_transformer_ref``), so the restarted-actor hazard
  this line warns about cannot happen; actor restarts stay on for fault tolerance.
"""


@contextlib.contextmanager
def drop_driver_lines(needles: tuple[bytes, ...] = BENIGN_DRIVER_LINES) -> Iterator[None]:
    """While the block runs, copy this process's stderr (fd 2) through, minus lines holding one of
    ``needles``. Only exact known lines are dropped; every other error still reaches the user.

    Leaving does not wait for the pipe's end: child processes started inside the block (pool
    workers, Ray's raylet) inherited its write end and may outlive the block, and waiting for them
    cost 2 s at the end of every job. A marker line written last tells when everything this
    process wrote has been copied; the pump then keeps copying the children's lines until they
    close the pipe.
    """
    import sys
    import uuid

    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    marker = f"audiomill-stderr-drained-{uuid.uuid4().hex}\n".encode()
    drained = threading.Event()

    def pump() -> None:
        with os.fdopen(read_fd, "rb") as source:
            for line in source:
                if line.endswith(marker):  # a partial line written just before the marker
                    line = line[:-len(marker)]
                    drained.set()
                if not line or any(needle in line for needle in needles):
                    continue
                try:
                    os.write(saved, line)
                except OSError:  # the user's stderr is gone; ``saved`` stays open for the restore
                    drained.set()
                    return
        drained.set()
        os.close(saved)  # end of the pipe: fd 2 was restored and every child closed its copy

    thread = threading.Thread(target=pump, name="audiomill-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        try:
            os.write(2, marker)
        except OSError:  # the pump has stopped: nothing is left to wait for
            pass
        os.dup2(saved, 2)
        drained.wait(timeout=2.0)

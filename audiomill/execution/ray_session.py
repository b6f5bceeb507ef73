"""The one owner of the Ray lifecycle: start or join Ray, quiet its logs, shut it down.

A process that needs Ray enters :func:`ray_session`; nested entries reuse the running session
and only the outermost one shuts Ray down (and only if it started it). The embedded instance
binds to loopback (``127.0.0.1``): Ray's GCS has no authentication, so nothing of it may listen
on other interfaces unless a cluster address is given explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune")


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


def _init(ray, settings: RaySettings) -> bool:  # noqa: ANN001 - the ray module
    """Initialise Ray if needed; True when this call started (or joined) it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if settings.address:
        ray.init(address=settings.address, **kwargs)
    elif os.environ.get("RAY_ADDRESS"):  # inside a Ray job: join its cluster, whatever num_cpus says
        ray.init(address="auto", **kwargs)
    else:
        # "local": always a new embedded instance, never a stray `ray start` cluster on this machine
        ray.init(address="local", num_cpus=settings.num_cpus, _node_ip_address=LOOPBACK, **kwargs)
    logger.info("ray resources: %s", ray.cluster_resources())
    return True


@contextlib.contextmanager
def ray_session(settings: RaySettings | None = None) -> Iterator[object]:
    """Yield the initialised ``ray`` module; shut it down on leaving if this session started it."""
    global _depth, _started_here
    import ray

    quiet_ray_loggers()
    if _depth == 0:
        _started_here = _init(ray, settings or RaySettings())
    _depth += 1
    try:
        yield ray
    finally:
        _depth -= 1
        if _depth == 0 and _started_here:
            ray.shutdown()
            _started_here = False

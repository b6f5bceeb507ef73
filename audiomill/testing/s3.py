"""A real S3 endpoint on 127.0.0.1 (moto's server mode) for tests and benchmarks.

Server mode rather than in-process mocks, so requests go through boto3's real HTTP stack
(retries, ranges, pagination, multipart) exactly as they will against AWS or MinIO.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from collections.abc import Iterator

from audiomill import storage

_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Removed while the server runs, so a developer's real profile or session never reaches moto.
_CLEARED_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start moto on a free port, point ``audiomill.storage`` at it, yield the endpoint URL.

    Use one at a time: moto keeps buckets in process-global state, which entry and exit reset.
    """
    from moto.server import ThreadedMotoServer

    request_log = logging.getLogger("werkzeug")  # one line per request would bury test output
    saved_level = request_log.level
    request_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = _DUMMY_ENV | {"AUDIOMILL_S3_ENDPOINT_URL": endpoint}
    for name in ("NO_PROXY", "no_proxy"):  # an HTTP(S)_PROXY must not swallow local traffic
        env[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1"]))
    saved = {name: os.environ.get(name) for name in (*env, *_CLEARED_ENV)}
    try:
        # moto's backends are process-global: reset so buckets from an earlier server don't leak in.
        _reset_moto(endpoint)
        for name in _CLEARED_ENV:
            os.environ.pop(name, None)
        os.environ.update(env)
        storage.reset_s3_client()
        yield endpoint
    finally:
        with contextlib.suppress(OSError):
            _reset_moto(endpoint)
        server.stop()
        request_log.setLevel(saved_level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        storage.reset_s3_client()


def _reset_moto(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10):
        pass


def create_bucket(name: str) -> str:
    """Create bucket ``name`` on the current endpoint; returns its URI ``s3://name``."""
    storage.s3_client().create_bucket(Bucket=name)
    return f"s3://{name}"

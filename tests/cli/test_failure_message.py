"""A failed job's first line names the real error (through Ray's wrappers), with secrets masked."""

from __future__ import annotations

from botocore.exceptions import EndpointConnectionError
from ray.exceptions import RayTaskError

from audiomill.cli.dataset import describe_failure
from audiomill.config import load_config


def test_first_line_is_the_innermost_cause_with_the_uri_redacted():
    cause = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket/raw/a.wav?X-Amz-Signature=secret")
    wrapped = RayTaskError("MapWorker.submit", "Traceback (most recent call last):\n  ... 160 lines ...", cause)
    cfg = load_config(inputs=["s3://bucket/raw/"], output="s3://bucket/out")
    line = describe_failure(wrapped.as_instanceof_cause(), cfg)
    assert line.startswith("EndpointConnectionError: Could not connect to the endpoint URL")
    assert "127.0.0.1:9/bucket/raw/a.wav" in line and "secret" not in line and "\n" not in line

"""Submit audiomill jobs to a Ray cluster through the Ray Jobs API and follow them.

The submitted job ships this package (``py_modules``) and the fully resolved job config, so the
cluster runs exactly the code and settings the user's command line produced.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

import audiomill
from audiomill import storage
from audiomill.config import CleanConfig
from audiomill.manifest import Manifest, ManifestError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
CONFIG_NAME = "audiomill-job.yaml"
MANIFEST_LINE_ENV = "AUDIOMILL_MANIFEST_LINE"
"""Set in a submitted job: ``clean --json`` also writes :func:`manifest_line` to stderr."""
MANIFEST_MARK = "audiomill-manifest-json: "


def client(address: str):  # noqa: ANN201 - ray's JobSubmissionClient
    from ray.job_submission import JobSubmissionClient

    from audiomill.execution.cluster import auth_headers

    return JobSubmissionClient(address, headers=auth_headers() or None)


def submit_job(address: str, cfg: CleanConfig, entry: str = "clean", files: dict[str, str] | None = None,
               args: tuple[str, ...] = ()) -> str:
    """Submit ``audiomill ENTRY [ARGS] --config ...`` with ``cfg``; returns the job id.

    ``files`` (name in the job's working dir -> local path) ship with the job, e.g. a crawl's
    URL list; ``args`` name them. Stdout is the command's ``--json`` result.
    """
    # the job runs in its own working dir: a relative local path must mean what it meant here
    cfg = cfg.model_copy(update={"inputs": [storage.absolute(u) for u in cfg.inputs],
                                 "output": storage.absolute(cfg.output) if cfg.output else cfg.output})
    staging = Path(tempfile.mkdtemp(prefix="audiomill-job-"))
    (staging / CONFIG_NAME).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True))
    for name, local in (files or {}).items():
        shutil.copyfile(local, staging / name)
    package_dir = str(Path(audiomill.__file__).parent)
    env_vars = {k: v for k, v in os.environ.items()
                if k.startswith(("AUDIOMILL_", "AWS_")) and k != "AUDIOMILL_HOME"} | {MANIFEST_LINE_ENV: "1"}
    command = " ".join(shlex.quote(a) for a in (entry, *args))
    return client(address).submit_job(
        entrypoint=f"python -m audiomill {command} --config {CONFIG_NAME} --runner ray --json",
        runtime_env={"working_dir": str(staging), "py_modules": [package_dir], "env_vars": env_vars},
        metadata={"audiomill_version": audiomill.__version__, "output": cfg.output, "command": entry},
    )


def follow(address: str, job_id: str, on_logs: Callable[[str], None], poll_s: float = 1.0,
           timeout_s: float | None = None) -> str:
    """Stream new log text to ``on_logs`` until the job ends; returns its final status."""
    jobs = client(address)
    shown = 0
    deadline = time.time() + timeout_s if timeout_s else None
    while True:
        status = str(jobs.get_job_status(job_id).value)
        logs = jobs.get_job_logs(job_id)
        if len(logs) > shown:
            on_logs(logs[shown:])
            shown = len(logs)
        if status in TERMINAL:
            return status
        if deadline and time.time() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout_s} s")
        time.sleep(poll_s)


def list_jobs(address: str) -> list[dict]:
    rows = []
    for job in client(address).list_jobs():
        rows.append({"job_id": job.submission_id or job.job_id, "status": str(job.status.value),
                     "entrypoint": job.entrypoint, "start_time": job.start_time, "end_time": job.end_time,
                     "message": job.message})
    return sorted(rows, key=lambda r: r["start_time"] or 0)


def job_status(address: str, job_id: str) -> dict:
    info = client(address).get_job_info(job_id)
    return {"job_id": job_id, "status": str(info.status.value), "message": info.message,
            "entrypoint": info.entrypoint, "start_time": info.start_time, "end_time": info.end_time}


def job_logs(address: str, job_id: str) -> str:
    return client(address).get_job_logs(job_id)


def stop_job(address: str, job_id: str) -> bool:
    return bool(client(address).stop_job(job_id))


def manifest_line(manifest: Manifest) -> str:
    """One log line carrying the manifest as compact JSON, marked so a reader finds it exactly."""
    return MANIFEST_MARK + json.dumps(manifest.to_dict(), separators=(",", ":"))


def manifest_from_logs(logs: str) -> Manifest | None:
    """The manifest a submitted ``--json`` job logged on its marked line (None if it logged none)."""
    for line in reversed(logs.splitlines()):
        if line.startswith(MANIFEST_MARK):
            try:
                return Manifest.from_json(line[len(MANIFEST_MARK):])
            except ManifestError:
                return None
    return None

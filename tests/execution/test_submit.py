"""What `--address` submits: the resolved config with local paths made absolute (the job runs in
its own working dir), shipped files, and a quoted entrypoint. The real Jobs API round trip is in
test_cluster_jobs.py; here the client only records what it was given."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from audiomill.config import load_config
from audiomill.execution import submit


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def submit_job(self, **kwargs) -> str:  # noqa: ANN003
        self.calls.append(kwargs)
        return "raysubmit_1"


def test_relative_local_paths_are_made_absolute_and_files_ship(tmp_path, monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(submit, "client", lambda address: recorder)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    urls = tmp_path / "my urls.txt"
    urls.write_text("https://example.org/a.wav\n")
    cfg = load_config(inputs=["raw", "s3://bucket/in/"], output="out/dataset")
    job_id = submit.submit_job("http://127.0.0.1:8265", cfg, "crawl", {"urls.txt": str(urls)},
                               ("urls.txt", "--out", "out dir"))
    assert job_id == "raysubmit_1"
    call = recorder.calls[0]
    staged = Path(call["runtime_env"]["working_dir"])
    sent = yaml.safe_load((staged / submit.CONFIG_NAME).read_text())
    assert sent["inputs"] == [os.path.join(str(tmp_path), "raw"), "s3://bucket/in/"]
    assert sent["output"] == os.path.join(str(tmp_path), "out", "dataset")
    assert (staged / "urls.txt").read_text() == urls.read_text()
    assert call["entrypoint"] == (f"python -m audiomill crawl urls.txt --out 'out dir' --config {submit.CONFIG_NAME} "
                                  "--runner ray --json")
    assert call["runtime_env"]["env_vars"][submit.MANIFEST_LINE_ENV] == "1"

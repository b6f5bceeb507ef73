"""The train phase's models share one Ray Train run when their worker shapes match (a worker group
start costs more than a tiny round's training), and each job's files and metrics come back apart."""

from __future__ import annotations

import os

from audiomill.execution.training import TrainOutcome, TrainScaling
from audiomill.jobs.rounds import train


def _fitter(config, rank, world):
    return {"value": config["value"], "note": "not a number"}, None


def test_jobs_of_one_shape_share_a_run_and_come_back_apart(tmp_path, monkeypatch):
    runs = []

    def fake_fit(loop, config, *, name, storage_dir, scaling, ray_settings):
        assert loop is train.jobs_train_loop
        runs.append((name, scaling, [job_name for job_name, _, _ in config["jobs"]]))
        checkpoint = tmp_path / "ckpt" / name
        metrics = {}
        for job_name, _, job_config in config["jobs"]:
            (checkpoint / job_name).mkdir(parents=True)
            (checkpoint / job_name / "model.bin").write_text(job_name)
            metrics[f"{job_name}/value"] = job_config["value"]
            metrics[f"{job_name}/note"] = "text"
        return TrainOutcome(metrics, str(checkpoint))

    monkeypatch.setattr(train, "fit_torch", fake_fit)
    two = TrainScaling(num_workers=2)
    jobs = [train.TrainJob("heads", _fitter, {"value": 1}, str(tmp_path / "out" / "heads"), two),
            train.TrainJob("generator", _fitter, {"value": 2}, str(tmp_path / "out" / "gen"), two)]
    metrics = train.fit_jobs(jobs, name="r", storage_dir=str(tmp_path / "ray"), ray_settings=None)
    assert runs == [("r", two, ["heads", "generator"])]
    assert metrics == {"heads": {"value": 1}, "generator": {"value": 2}}
    assert (tmp_path / "out" / "gen" / "model.bin").read_text() == "generator"
    assert (tmp_path / "out" / "heads" / "model.bin").read_text() == "heads"

    runs.clear()
    jobs[1] = train.TrainJob("generator", _fitter, {"value": 2}, str(tmp_path / "out2"), TrainScaling(num_workers=1))
    metrics = train.fit_jobs(jobs, name="r", storage_dir=str(tmp_path / "ray"), ray_settings=None)
    assert [(n, names) for n, _, names in runs] == [("r-0", ["heads"]), ("r-1", ["generator"])]
    assert metrics["generator"] == {"value": 2} and os.listdir(tmp_path / "out2") == ["model.bin"]

"""``runner.kind=processes``: parts on a pool of worker processes, no Ray; same bytes as in
process, and a dead worker costs a retry of its part, not the job."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audiomill import layout
from audiomill.config import RunnerConfig, load_config
from audiomill.execution.runners import ProcessRunner, WorkerLostError, make_runner
from audiomill.jobs.clean import run_clean
from audiomill.pipelines.base import Stage


class DieOnPart(Stage):
    """Kills its worker process (as the OOM killer would) on part ``victim``, the first
    ``deaths`` times that part is attempted; a file per attempt counts them across processes."""

    name = "die_on_part"

    def __init__(self, marks: str, victim: int, deaths: int) -> None:
        super().__init__()
        self.marks, self.victim, self.deaths = marks, victim, deaths

    def process(self, table: pa.Table) -> pa.Table:
        if table["n"][0].as_py() == self.victim:
            attempts = len(os.listdir(self.marks))
            if attempts < self.deaths:
                Path(self.marks, f"attempt-{attempts}").touch()
                os._exit(9)
        return table.append_column("pid", pa.array([os.getpid()] * table.num_rows, pa.int64()))


def _parts(tmp_path: Path, count: int) -> list[str]:
    uris = []
    for n in range(count):
        uri = tmp_path / f"part-{n}.parquet"
        pq.write_table(pa.table({"n": [n]}), uri)
        uris.append(str(uri))
    return uris


def test_a_worker_that_dies_costs_its_part_a_retry_not_the_job(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    runner = ProcessRunner(RunnerConfig(kind="processes", num_cpus=2))
    batches = list(runner.run(_parts(tmp_path, 4), [DieOnPart(str(marks), victim=2, deaths=1)]))
    assert sorted(b["n"][0].as_py() for b in batches) == [0, 1, 2, 3]  # each part exactly once
    assert len(os.listdir(marks)) == 1  # part 2 really killed a worker once
    assert len({b["pid"][0].as_py() for b in batches}) >= 2  # parts ran in worker processes
    assert os.getpid() not in {b["pid"][0].as_py() for b in batches}


def test_a_part_that_always_kills_its_worker_fails_the_job_naming_it(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    runner = ProcessRunner(RunnerConfig(kind="processes", num_cpus=2))
    runner.max_restarts = 1
    parts = _parts(tmp_path, 3)
    with pytest.raises(WorkerLostError, match="part-1"):
        list(runner.run(parts, [DieOnPart(str(marks), victim=1, deaths=99)]))
    assert len(os.listdir(marks)) == 2  # the first try and one restart


def test_processes_runner_gives_the_in_process_bytes(demo_corpus, demo_dataset, tmp_path):
    local_out, local_manifest = demo_dataset
    out = tmp_path / "dataset"
    cfg = load_config(inputs=[str(demo_corpus.root)], output=str(out),
                      overrides=["runner.kind=processes", "runner.num_cpus=2", "ingest.part_size=4"])
    assert isinstance(make_runner(cfg.runner, parts=5), ProcessRunner)
    manifest = run_clean(cfg).to_dict()
    assert manifest["counts"]["parts"] > 1  # more than one worker had work
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in local_manifest["shards"]]
    for name in (layout.INDEX_FILE, layout.REJECTS_FILE, layout.DEDUP_FILE):
        assert (out / name).read_bytes() == (local_out / name).read_bytes()


class SleepOnPart(Stage):
    """Sleeps ``seconds`` on every part but part 0: a long part still running when the job stops."""

    name = "sleep_on_part"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def process(self, table: pa.Table) -> pa.Table:
        if table["n"][0].as_py() != 0:
            import time

            time.sleep(self.seconds)
        return table


def test_an_interrupted_run_kills_its_running_parts_instead_of_waiting_for_them(tmp_path):
    import time

    runner = ProcessRunner(RunnerConfig(kind="processes", num_cpus=2))
    batches = runner.run(_parts(tmp_path, 3), [SleepOnPart(120.0)])
    first = next(batches)  # part 0; part 1 is asleep in the other worker
    assert first["n"][0].as_py() == 0
    time.sleep(1.0)
    started = time.monotonic()
    batches.close()  # what Ctrl-C does to the runner's generator (GeneratorExit at its yield)
    assert time.monotonic() - started < 30  # the old shutdown(wait=True) waited out the 120 s part

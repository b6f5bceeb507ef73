"""``runner.kind=auto``: one part in process, more on worker processes, Ray for a cluster address
or a stage that needs GPUs."""

from __future__ import annotations

from audiomill.config import RunnerConfig
from audiomill.execution.runners import LocalRunner, ProcessRunner, RayRunner, effective_kind, make_runner


def test_auto_picks_in_process_then_processes_and_ray_for_an_address_or_gpus():
    auto = RunnerConfig()
    assert auto.kind == "auto"
    assert effective_kind(auto, 1) == effective_kind(auto, 0) == "local"
    assert effective_kind(auto, 2) == effective_kind(auto, 5000) == "processes"
    assert effective_kind(auto, 3, gpus=True) == "ray"  # a GPU actor pool
    assert effective_kind(auto, 1, gpus=True) == "local"  # one part: one process holds the model anyway
    assert effective_kind(RunnerConfig(address="ray://head:10001"), 1) == "ray"
    assert effective_kind(RunnerConfig(address="ray://head:10001"), 3) == "ray"
    assert effective_kind(RunnerConfig(kind="ray"), 1) == "ray"
    assert effective_kind(RunnerConfig(kind="local"), 50, gpus=True) == "local"
    assert isinstance(make_runner(auto, parts=1), LocalRunner)
    assert isinstance(make_runner(auto, parts=3), ProcessRunner)
    assert isinstance(make_runner(auto, parts=3, gpus=True), RayRunner)  # Ray starts only when used


def test_the_plan_counts_each_parts_input_bytes(tmp_path):
    from audiomill.config import IngestConfig
    from audiomill.jobs.plan import plan_parts

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, size in enumerate([1000, 2500, 40]):
        (inputs / f"f{i}.wav").write_bytes(b"\0" * size)
    plan = plan_parts([str(inputs)], IngestConfig(part_size=2), str(tmp_path / "out"), "fp", write=False)
    assert [p.source_bytes for p in plan.parts] == [3500, 40]
    assert [p.part_id for p in plan.run_order] == [0, 1]


def test_parts_run_largest_first_and_ties_in_part_order():
    from audiomill.ingest import ListingStats
    from audiomill.jobs.plan import PartPlan, Plan

    sizes = [10, 500, 10, 70, 500]
    plan = Plan([PartPlan(i, f"p{i}", "f", 1, None, size) for i, size in enumerate(sizes)], ListingStats())
    assert [p.part_id for p in plan.run_order] == [1, 4, 3, 0, 2]
    done = Plan([PartPlan(0, "p0", "f", 1, object(), 900), *plan.parts[1:]], ListingStats())
    assert [p.part_id for p in done.run_order] == [1, 4, 3, 2]  # done parts are not run

"""``runner.kind=auto``: a one-part job runs in process, anything bigger or remote on Ray."""

from __future__ import annotations

from audiomill.config import RunnerConfig
from audiomill.execution.runners import LocalRunner, RayRunner, effective_kind, make_runner


def test_auto_runs_one_part_in_process_and_more_on_ray():
    auto = RunnerConfig()
    assert auto.kind == "auto"
    assert effective_kind(auto, 1) == effective_kind(auto, 0) == "local"
    assert effective_kind(auto, 2) == "ray"  # a resumed multi-part job still dedups on Ray Data
    assert effective_kind(RunnerConfig(address="ray://head:10001"), 1) == "ray"
    assert effective_kind(RunnerConfig(kind="ray"), 1) == "ray"
    assert effective_kind(RunnerConfig(kind="local"), 50) == "local"
    assert isinstance(make_runner(auto, parts=1), LocalRunner)
    assert isinstance(make_runner(auto, parts=3), RayRunner)  # Ray starts only when used

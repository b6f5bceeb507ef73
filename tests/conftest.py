"""Session fixtures shared by end-to-end tests: one demo corpus, one local Ray instance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audiomill.testing.corpus import CorpusTruth, make_demo_corpus


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusTruth:
    return make_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray with 2 CPUs, started once; stages run in its worker processes."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def corpus_uri(truth: CorpusTruth, relative: str) -> str:
    return str(Path(truth.root) / relative)


@pytest.fixture(scope="session")
def licensed_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A real cleaned dataset of 6 licensed sources (3 domains, 3 licenses), with held, dedup-held
    and cross-run-indexed segments (``audiomill.testing.licensed``). Copy it before changing it."""
    from audiomill.testing.licensed import build_licensed_dataset

    return build_licensed_dataset(tmp_path_factory.mktemp("licensed"))

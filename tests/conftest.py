"""Session fixtures shared by end-to-end tests: one demo corpus, one local Ray instance; and the
collection order that lets 2 pytest workers finish together."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomill.testing.corpus import CorpusTruth, make_demo_corpus


# the longest test files (measured 2026-12-03, 2 cores: 110-210 s each) start first, so under
# `make test` (2 workers, a file per worker) no long file is left to run alone at the end
LONG_FILES_FIRST = ("tests/rounds/test_round_e2e.py", "tests/jobs/test_tokenizer.py",
                    "tests/models/test_pyannote_backend.py", "tests/execution/test_cluster_jobs.py",
                    "tests/jobs/test_faults.py", "tests/curation/dedup/test_dedup_e2e.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    root = Path(str(config.rootpath))
    items.sort(key=lambda item: rank.get(Path(str(item.path)).relative_to(root).as_posix(), len(rank)))


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusTruth:
    return make_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray with 2 CPUs, started once; stages run in its worker processes."""
    from audiomill.execution.ray_session import RaySettings, ray_session

    with ray_session(RaySettings(num_cpus=2)) as ray:
        yield ray


@pytest.fixture(scope="session")
def demo_dataset(demo_corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo corpus cleaned once with the default config on the local runner: (dataset dir,
    manifest dict). Shared read-only by every test that only reads a cleaned dataset; a test
    that writes into it takes ``demo_dataset_copy``."""
    from audiomill.config import load_config
    from audiomill.jobs.clean import run_clean

    out = tmp_path_factory.mktemp("demo-dataset") / "dataset"
    manifest = run_clean(load_config(inputs=[str(demo_corpus.root)], output=str(out),
                                     overrides=["runner.kind=local"])).to_dict()
    return out, manifest


@pytest.fixture
def demo_dataset_copy(demo_dataset, tmp_path: Path) -> tuple[Path, dict]:
    """A private copy of ``demo_dataset`` (same inputs, so a rerun resumes it)."""
    import shutil

    out = tmp_path / "dataset"
    shutil.copytree(demo_dataset[0], out)
    return out, demo_dataset[1]


def corpus_uri(truth: CorpusTruth, relative: str) -> str:
    return str(Path(truth.root) / relative)


@pytest.fixture(scope="session")
def licensed_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A real cleaned dataset of 6 licensed sources (3 domains, 3 licenses), with held, dedup-held
    and cross-run-indexed segments (``audiomill.testing.licensed``). Copy it before changing it."""
    from audiomill.testing.licensed import build_licensed_dataset

    return build_licensed_dataset(tmp_path_factory.mktemp("licensed"))

"""Session fixtures shared by end-to-end tests: one demo corpus, one local Ray instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomill.testing.corpus import CorpusTruth, make_demo_corpus


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
    """The demo corpus cleaned once with the default config on the local runner, in parts of 4
    sources (by default its 35 files, 5 MB, fit one part; resume, compaction and the runners'
    byte-identity need several): (dataset dir, manifest dict). Shared read-only by every test
    that only reads a cleaned dataset; a test that writes into it takes ``demo_dataset_copy``."""
    from audiomill.config import load_config
    from audiomill.jobs.clean import run_clean

    out = tmp_path_factory.mktemp("demo-dataset") / "dataset"
    manifest = run_clean(load_config(inputs=[str(demo_corpus.root)], output=str(out),
                                     overrides=["runner.kind=local", "ingest.part_size=4"])).to_dict()
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

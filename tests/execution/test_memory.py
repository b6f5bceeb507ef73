"""A stage chain puts Arrow on the system allocator and trims the heap after each part."""

from __future__ import annotations

import platform

import pyarrow as pa

from audiomill.execution import memory
from audiomill.execution.runners import StageChain


def test_a_stage_chain_uses_the_system_allocator_and_trims_after_a_part(monkeypatch):
    trims = []
    monkeypatch.setattr("audiomill.execution.runners.release_free_memory", lambda: trims.append(1))
    chain = StageChain([])
    assert pa.default_memory_pool().backend_name == "system"
    table = pa.table({"x": [1, 2]})
    assert chain(table) is table and chain(table) is table
    assert trims == [1, 1]


def test_glibc_is_found_and_trimmed_here():
    if platform.libc_ver()[0] == "glibc":  # the CI and dev machines; elsewhere trimming is a no-op
        assert memory._libc() is not None
    memory.release_free_memory()

"""Give a worker's freed memory back to the OS between parts.

A worker holds one part's decoded audio at a time, but its RSS kept what its largest part had
needed: pyarrow's default mimalloc pool and glibc's heap both keep freed pages for reuse. One
process running the stage chain over the 10-hour benchmark corpus sat at 0.8-0.9 GiB between
parts; with Arrow on the system allocator and ``malloc_trim`` after each part it returns to
0.5 GiB (its models), and the Ray job's process-tree peak on that corpus went from 3.71 to
3.36 GiB (``benchmarks/clean_cpu.py --big-hours 10``): an idle actor no longer holds its last
part's peak while the other runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import pyarrow as pa


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


@functools.cache
def use_returning_allocator() -> None:
    """Arrow buffers from the system allocator (once per process; buffers already allocated are
    still freed to the pool they came from)."""
    pa.set_memory_pool(pa.system_memory_pool())


def release_free_memory() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

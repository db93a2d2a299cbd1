"""The one worker pool of the fast methods: as many threads as cores, at most two.

NumPy releases the GIL in copies, ufunc loops and BLAS calls, so two threads can run two
single-threaded memory passes (strided adds, gathers) at once. Work submitted here never
submits more work, so callers may wait on it without deadlock.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

_POOL: list[ThreadPoolExecutor] = []

# a forked child has none of the parent's threads: it must build its own pool, not wait on one
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.clear)


def pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1),
                                        thread_name_prefix="tconv"))
    return _POOL[0]


def over_batch(fn: Callable[[slice], None], batch: int, threaded: bool) -> None:
    """``fn(samples)`` over the batch: two halves in the pool when ``threaded`` (and there are
    two samples), else the whole batch in the calling thread. ``fn`` must write only its own
    samples."""
    if not threaded or batch < 2:
        fn(slice(0, batch))
        return
    half = batch // 2
    list(pool().map(fn, (slice(0, half), slice(half, batch))))

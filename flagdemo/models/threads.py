"""Torch threads shared out among the jobs running a model, and the freed memory handed back when the last one ends.

A job that starts alone gets every thread, one that starts while another runs gets its share (2 cores: the second
job gets 1 thread). The count is fixed when a job starts: once a thread has run parallel work, OpenMP keeps its thread
count per thread, so a running job cannot be given more or fewer threads by another one. Backends that hold memory
of their own between jobs (ONNX Runtime's arenas) register a release with ``on_idle``; FLAGDEMO_CPU_THREADS sets the
budget. The serving layer counts jobs through ``JOB_THREADS``; nothing here knows about requests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from flagdemo.limits import Setting

CPU_THREADS = Setting("FLAGDEMO_CPU_THREADS", 0, "torch threads shared by the running jobs (unset: torch's own count)")
IDLE_HOOKS: list[Callable[[], None]] = []


def on_idle(release: Callable[[], None]) -> None:
    """Run ``release`` whenever the last running job ends (before the heap is trimmed)."""
    if release not in IDLE_HOOKS:
        IDLE_HOOKS.append(release)


def glibc_function(name: str) -> Callable | None:
    """A glibc function by name (None where there is no glibc, so the memory helpers are no-ops there)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = glibc_function("malloc_trim")  # hands freed heap pages back to the system


def release_freed_memory() -> None:
    """Return the heap that finished requests freed to the system, so the app's memory falls back after a busy spell.

    glibc keeps freed blocks of its many per-thread arenas for reuse; after a room's worth of concurrent requests
    that is hundreds of MB that no request holds any more. Backends with arenas of their own (ONNX Runtime's, sized
    by the largest batch a session ran) are shrunk first, through their ``on_idle`` hooks.
    """
    for release in IDLE_HOOKS:
        release()
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


STARTING_THREADS = torch.get_num_threads()  # torch's own choice (cores, or OMP_NUM_THREADS) before any job changed it


class JobThreads:
    """Sets a starting job's torch threads to its share of the budget: ``budget // running``, at least 1.

    ``torch.set_num_threads`` runs in the job's own thread, the one whose parallel regions it governs.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def total(self) -> int:
        if self.budget is not None:
            return self.budget
        return int(CPU_THREADS.value()) or STARTING_THREADS

    def per_job(self) -> int:
        return max(1, self.total() // max(1, self.running))

    @contextmanager
    def job(self) -> Iterator[int]:
        """Count one running job for the block and set this thread's torch threads to its share; yields the count."""
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            threads = self.per_job()
            torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            with self._lock:
                self.running -= 1
                idle = self.running == 0
            if idle:  # the last running job is done: its activations and buffers are free, give them back
                release_freed_memory()


JOB_THREADS = JobThreads()

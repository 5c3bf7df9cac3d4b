"""How one small machine serves a room: kinds of work, queue slots, one lock per model, threads per running job.

A workshop is twenty to thirty people clicking mostly the same examples on 2 CPU cores. A warm Similarity takes
0.1 s, a reranker run 4-5 s: in one shared queue slot every light click waits behind the heavy ones. So:

- every endpoint is **light** (embedding-cache hits, small encodes, figures, tables, projections, the model list) or
  **heavy** (LLM reranking, layer sweeps, Compare on the labelled set, fine-tuning), and each kind has its own gradio
  concurrency group, so light work runs while heavy work does (``event_kwargs``);
- the same weights never run in two threads at once: model work holds the lock of the model it runs
  (``MODEL_LOCKS``, keyed by the resolved model location), so a light and a heavy job only overlap on different models.
  The lock, not the slot count, is what serialises model work: a group has more than one slot so that a request
  answered from the result cache (no model runs) does not wait behind another visitor's long run;
- torch's intra-op threads are shared out among the jobs running a model (``JOB_THREADS``): a job that starts alone
  gets every thread, one that starts while another runs gets its share (2 cores: the second job gets 1 thread). The
  count is fixed when a job starts: once a thread has run parallel work, OpenMP keeps its thread count per thread,
  so a running job cannot be given more or fewer threads by another one.

Bounds are environment settings read when the app is built: FLAGDEMO_LIGHT_SLOTS, FLAGDEMO_HEAVY_SLOTS,
FLAGDEMO_QUEUE_SIZE, FLAGDEMO_CPU_THREADS. No gradio here: the UI passes these keyword arguments on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from enum import StrEnum

import torch

from flagdemo.limits import Setting


class WorkKind(StrEnum):
    LIGHT = "light"
    HEAVY = "heavy"


ENDPOINT_KINDS: dict[str, WorkKind] = {
    "encode": WorkKind.LIGHT,
    "similarity": WorkKind.LIGHT,
    "project": WorkKind.LIGHT,
    "models": WorkKind.LIGHT,
    "unload": WorkKind.LIGHT,
    "rerank": WorkKind.HEAVY,
    "layer_sweep": WorkKind.HEAVY,
    "compare": WorkKind.HEAVY,
    "cocktail": WorkKind.HEAVY,
}

LIGHT_SLOTS = Setting("FLAGDEMO_LIGHT_SLOTS", 4, "light requests (Encode, Similarity, Projection, Models) run at once")
HEAVY_SLOTS = Setting("FLAGDEMO_HEAVY_SLOTS", 2, "heavy requests (Rerankers, Layer sweep, Compare) run at once")
QUEUE_SIZE = Setting("FLAGDEMO_QUEUE_SIZE", 64, "requests waiting in the queue; past it a visitor is told to retry")
CPU_THREADS = Setting("FLAGDEMO_CPU_THREADS", 0, "torch threads shared by the running jobs (unset: torch's own count)")


def kind_of(api_name: str) -> WorkKind:
    """The kind of work behind an endpoint; an endpoint not listed counts as heavy, so it never delays light work."""
    return ENDPOINT_KINDS.get(api_name.strip("/"), WorkKind.HEAVY)


def event_kwargs(api_name: str) -> dict[str, object]:
    """``concurrency_id`` / ``concurrency_limit`` for the gradio event behind ``api_name``: one group per kind."""
    kind = kind_of(api_name)
    slots = LIGHT_SLOTS if kind is WorkKind.LIGHT else HEAVY_SLOTS
    return {"concurrency_id": f"{kind.value}-work", "concurrency_limit": int(slots.value())}


def queue_kwargs() -> dict[str, object]:
    """``demo.queue(...)`` settings: the room's waiting requests; an event without a group runs one at a time."""
    return {"max_size": int(QUEUE_SIZE.value()), "default_concurrency_limit": 1}


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, which hands freed heap pages back to the system (None where there is no glibc)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Return the heap that finished requests freed to the system, so the app's memory falls back after a busy spell.

    glibc keeps freed blocks of its many per-thread arenas for reuse; after a room's worth of concurrent requests
    that is hundreds of MB that no request holds any more. ONNX Runtime sessions keep their own arenas, sized by the
    largest batch they ran; those are shrunk first.
    """
    from flagdemo.onnx_backend import release_session_arenas

    release_session_arenas()
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


STARTING_THREADS = torch.get_num_threads()  # torch's own choice (cores, or OMP_NUM_THREADS) before any job changed it


class _ModelLock:
    """A re-entrant lock that can be weakly referenced (threading.RLock cannot)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()


class ModelLocks:
    """One lock per model key: work on the same weights is serialised, work on different models is not.

    Locks live while someone holds or waits for them (a weak map), so names typed once do not pile up.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[Hashable, _ModelLock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = _ModelLock()
        with entry.lock:
            yield


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


MODEL_LOCKS = ModelLocks()
JOB_THREADS = JobThreads()


@contextmanager
def model_work(key: Hashable) -> Iterator[None]:
    """Run a model: wait for its lock (same weights, one job at a time), then count as a running job for the threads.

    Re-entrant for one thread (a job that reaches the same model again does not wait for itself).
    """
    with MODEL_LOCKS.hold(key), JOB_THREADS.job():
        yield

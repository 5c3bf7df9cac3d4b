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
- torch's intra-op threads are shared out among the jobs running a model (``flagdemo.models.threads``), and a
  job holds its model's lock and its share of the threads together (``model_work``).

Bounds are environment settings read when the app is built: FLAGDEMO_LIGHT_SLOTS, FLAGDEMO_HEAVY_SLOTS,
FLAGDEMO_QUEUE_SIZE, FLAGDEMO_CPU_THREADS. No gradio here: the UI passes these keyword arguments on.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from flagdemo.limits import Setting
from flagdemo.models.threads import JOB_THREADS


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


MODEL_LOCKS = ModelLocks()


@contextmanager
def model_work(key: Hashable) -> Iterator[None]:
    """Run a model: wait for its lock (same weights, one job at a time), then count as a running job for the threads.

    Re-entrant for one thread (a job that reaches the same model again does not wait for itself).
    """
    with MODEL_LOCKS.hold(key), JOB_THREADS.job():
        yield

"""Whole operations computed once: a bounded result cache with single-flight, for a room clicking the same examples.

Key: (operation, resolved model identities, settings, inputs), hashed with SHA-256, so identical requests (same
model, settings and texts) share one entry while any difference in them gives another. A request that arrives while
the same work runs waits for that run instead of starting its own; if the run fails, every waiter gets the same
error and nothing is stored, so the next request computes afresh.

Values are stored pickled: every caller, the first included, gets a private copy that it may change without
touching anyone else's, and the bytes are what the bounds count. Bounds (least-recently-used eviction):
``FLAGDEMO_RESULT_CACHE_ENTRIES`` (default 256 results) and ``FLAGDEMO_RESULT_CACHE_MB`` (default 64 MiB); 0 turns
the cache off (single-flight still shares a running computation). Each request's log line says ``cache``: ``hit``,
``shared`` (waited for a running computation) or ``miss``.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from flagdemo import limits
from flagdemo.errors import FlagDemoError
from flagdemo.models.sources import resolve_source
from flagdemo.serving import request_log

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RESULTS = limits.Setting("FLAGDEMO_RESULT_CACHE_ENTRIES", 256, "whole results kept (0 = none)")
MAX_RESULT_MB = limits.Setting("FLAGDEMO_RESULT_CACHE_MB", 64, "MiB of kept results (0 = none)", integer=False)


def model_identity(name: str | None, *, own_models: Sequence[str] = ()) -> tuple[str, str | None]:
    """(name, where it loads from) for a result key: a folder or hub id behind the name, None when unresolvable.

    In public mode only the app's own and catalog models are resolved: a visitor's path is never looked at (the
    engine refuses it anyway, and a refusal is never stored).
    """
    name = str(name or "")
    if limits.public_mode() and name not in own_models:
        from flagdemo.models import catalog

        entry = catalog.lookup(name)
        if entry is None or name not in (entry.key, entry.hub_id):
            return name, None
    try:
        source = resolve_source(name)
    except (FlagDemoError, OSError):
        return name, None
    return name, f"{source.path}@{source.revision or ''}"


def reuse_note() -> str:
    """The sentence a result carries when every operation of the current request was served from the cache."""
    statuses = request_log.cache_statuses()
    if statuses and "miss" not in statuses:
        return (
            "Served from the result cache: an identical request ran earlier (or at the same time), so the times shown "
            "are that run's."
        )
    return ""


def result_key(operation: str, *parts: object) -> str:
    """A digest of the operation and everything that determines its result (models, settings, inputs)."""
    blob = pickle.dumps((operation, parts), protocol=pickle.HIGHEST_PROTOCOL)
    return f"{operation}:{hashlib.sha256(blob).hexdigest()}"


@dataclass
class _Flight:
    """One running computation that later requests for the same key wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    blob: bytes | None = None
    error: BaseException | None = None


class ResultCache:
    """LRU cache of pickled results with single-flight computation; ``get_or_compute`` is the one entry point."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 2**20) -> None:
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self._results: OrderedDict[Hashable, bytes] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = self.shared = self.misses = 0

    @classmethod
    def from_env(cls) -> ResultCache:
        entries = limits.env_number(MAX_RESULTS.env, MAX_RESULTS.default, allow_zero=True)
        megabytes = limits.env_number(MAX_RESULT_MB.env, MAX_RESULT_MB.default, integer=False, allow_zero=True)
        return cls(max_entries=int(entries), max_bytes=int(megabytes * 2**20))

    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._results

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self._nbytes = 0

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], T], *, keep: Callable[[T], bool] = lambda _: True
    ) -> T:
        """The result for ``key``: a stored one, the one a running computation is producing, or ``compute()``.

        ``keep(result)`` False shares the result with the requests waiting for it but does not store it (e.g. a
        rerank where one method failed: the next request should try again).
        """
        with self._lock:
            blob = self._results.get(key)
            if blob is not None:
                self._results.move_to_end(key)
                self.hits += 1
            else:
                flight = self._flights.get(key)
                leader = flight is None
                if leader:
                    flight = self._flights[key] = _Flight()
                    self.misses += 1
                else:
                    self.shared += 1
        if blob is not None:
            request_log.note_cache("hit")
            return pickle.loads(blob)  # bytes this process pickled itself
        if not leader:
            request_log.note_cache("shared")
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.blob is None:  # the result could not be copied: compute our own
                return self.get_or_compute(key, compute, keep=keep)
            return pickle.loads(flight.blob)
        request_log.note_cache("miss")
        try:
            result = compute()
        except BaseException as error:
            flight.error = error
            self._land(key, flight, store=False)
            raise
        try:
            flight.blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an uncopyable result is served, just not shared
            logger.warning("a %s result could not be pickled: not cached", str(key).split(":")[0], exc_info=True)
        self._land(key, flight, store=flight.blob is not None and keep(result))
        return result

    def once(
        self,
        operation: str,
        *,
        models: Sequence[str | None],
        inputs: object,
        compute: Callable[[], T],
        own_models: Sequence[str] = (),
        keep: Callable[[T], bool] = lambda _: True,
    ) -> T:
        """``compute()`` once for identical requests: the key is the operation, the models' identities (where each
        loads from) and ``inputs`` (every setting and text that changes the result, as picklable values)."""
        identities = [model_identity(model, own_models=own_models) for model in models]
        return self.get_or_compute(result_key(operation, identities, inputs), compute, keep=keep)

    def _land(self, key: Hashable, flight: _Flight, *, store: bool) -> None:
        """End a computation: store its result if wanted, then release the requests waiting for it."""
        with self._lock:
            del self._flights[key]
            if store:
                self._store(key, flight.blob)
        flight.done.set()

    def _store(self, key: Hashable, blob: bytes) -> None:
        """Keep ``blob`` unless it alone is past a bound; evict the least recently used (caller holds the lock)."""
        if len(blob) > self.max_bytes or self.max_entries < 1:
            return
        self._results[key] = blob
        self._nbytes += len(blob)
        while len(self._results) > self.max_entries or self._nbytes > self.max_bytes:
            _, evicted = self._results.popitem(last=False)
            self._nbytes -= len(evicted)

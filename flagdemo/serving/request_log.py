"""One structured log line per app request: endpoint, model, number of inputs, duration, outcome.

The line is JSON on the ``flagdemo.requests`` logger (also attached to the record as ``request``), so an operator
can count failures and slow endpoints without reading anyone's texts: those are added only with FLAGDEMO_DEBUG=1.
A handler runs inside :func:`logged_request` and fills in the model and inputs once it knows them (:func:`note`);
the result cache adds how it served each operation (:func:`note_cache`: ``"cache": "hit"`` on a repeated request).
Each computed request also leaves its duration behind, less the model loading done meanwhile (:func:`last_run`),
so a heavy tab can say before it runs about how long its work will take on this server.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from flagdemo.limits import debug_mode
from flagdemo.models.cache import LOAD_CLOCK

logger = logging.getLogger("flagdemo.requests")

MAX_MODEL_CHARS = 200  # a model name is typed by the user too: keep the line short whatever they paste


@dataclass
class RequestRecord:
    """What the log line will say; ``outcome`` is 'ok' unless the handler (or an exception) says otherwise."""

    endpoint: str
    models: list[str] = field(default_factory=list)
    n_inputs: int = 0
    texts: list[str] = field(default_factory=list)
    outcome: str = "ok"
    cache: list[str] = field(default_factory=list)


_current: ContextVar[RequestRecord | None] = ContextVar("flagdemo_request", default=None)
_durations: dict[tuple[str, tuple[str, ...]], tuple[float, int]] = {}  # (endpoint, models) → (seconds, inputs)


def last_run() -> tuple[float, int] | None:
    """(seconds, inputs) of the last computed run of the current request's endpoint on the same models, on this
    server, not counting model loading; None outside a request or before any such run (results served from the
    cache do not count)."""
    record = _current.get()
    return None if record is None else _durations.get((record.endpoint, tuple(record.models)))


def estimate() -> tuple[float, float, int] | None:
    """(estimated seconds, last run's seconds, last run's inputs) for the current request once its models are
    loaded: the last run's time scaled by the number of inputs (the heavy tabs' work grows with it); None when
    :func:`last_run` is."""
    record, last = _current.get(), last_run()
    if record is None or last is None:
        return None
    seconds, inputs = last
    return (seconds * record.n_inputs / inputs if inputs and record.n_inputs else seconds), seconds, inputs


def note(*, models: Sequence[str | None] = (), inputs: Sequence[str] = ()) -> None:
    """Add the models used and the inputs given to the request being handled (no-op outside one)."""
    record = _current.get()
    if record is None:
        return
    record.models += [str(m)[:MAX_MODEL_CHARS] for m in models if m and str(m) not in record.models]
    record.n_inputs += len(inputs)
    record.texts += [str(t) for t in inputs]


def note_cache(status: str) -> None:
    """Say how the result cache served one operation of the current request: 'hit', 'shared' or 'miss'."""
    record = _current.get()
    if record is not None:
        record.cache.append(status)


def cache_statuses() -> list[str]:
    """How the result cache served the current request's operations so far (empty outside a request)."""
    record = _current.get()
    return list(record.cache) if record is not None else []


def set_outcome(outcome: str) -> None:
    """Mark the current request's outcome, e.g. 'refused:EmptyInputError' or 'failed:RuntimeError'."""
    record = _current.get()
    if record is not None:
        record.outcome = outcome


@contextmanager
def logged_request(endpoint: str) -> Iterator[RequestRecord]:
    """Time the block and log its line when it ends, however it ends."""
    record = RequestRecord(endpoint)
    token = _current.set(record)
    started, loading_before = time.perf_counter(), LOAD_CLOCK.seconds
    try:
        yield record
    except BaseException as exc:
        if record.outcome == "ok":
            record.outcome = f"failed:{type(exc).__name__}"
        raise
    finally:
        _current.reset(token)
        seconds = time.perf_counter() - started
        if record.outcome == "ok" and "hit" not in record.cache:
            computing = max(seconds - (LOAD_CLOCK.seconds - loading_before), 0.0)
            _durations[(endpoint, tuple(record.models))] = (computing, record.n_inputs)
        payload = {
            "event": "request",
            "endpoint": endpoint,
            "model": ",".join(record.models),
            "inputs": record.n_inputs,
            "seconds": round(seconds, 4),
            "outcome": record.outcome,
        }
        if record.cache:  # one entry per cached operation, e.g. "hit" or "miss,hit"
            payload["cache"] = ",".join(record.cache)
        if debug_mode():
            payload["texts"] = record.texts
        logger.info(json.dumps(payload, ensure_ascii=False), extra={"request": payload})

"""One structured log line per app request: endpoint, model, number of inputs, duration, outcome.

The line is JSON on the ``flagdemo.requests`` logger (also attached to the record as ``request``), so an operator
can count failures and slow endpoints without reading anyone's texts: those are added only with FLAGDEMO_DEBUG=1.
A handler runs inside :func:`logged_request` and fills in the model and inputs once it knows them (:func:`note`);
the result cache adds how it served each operation (:func:`note_cache`: ``"cache": "hit"`` on a repeated request).
Each computed request also leaves its duration behind, less the model loading done meanwhile, so a heavy tab can say
before it runs about how long its work will take on this server (:func:`estimate`), also for models it has not run
yet, scaled by their size from the last run on others.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import PurePath

from flagdemo.errors import FlagDemoError
from flagdemo.limits import debug_mode
from flagdemo.models.cache import LOAD_CLOCK
from flagdemo.models.sources import resolve_source, stored_weights

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
_latest: dict[str, tuple[str, ...]] = {}  # endpoint → the models of its last computed run
_parameters: dict[str, int] = {}  # model name → parameters in its stored weights (only those found)


@dataclass(frozen=True)
class Estimate:
    """How long the current request's work should take once its models are loaded, and what that is from: the
    last run of this endpoint on the same models, or (``scaled_from`` names them) on other models, by size."""

    seconds: float
    last_seconds: float
    last_inputs: int
    scaled_from: tuple[str, ...] = ()


def estimate() -> Estimate | None:
    """The current request's :class:`Estimate`: the last run's time scaled by the number of inputs (the heavy tabs'
    work grows with it) and, for models not run yet, by their parameters against the last run's models (work per
    input grows about linearly with a model's size). Only computed runs count (results served from the cache do
    not), model loading left out. None outside a request, before any run of its endpoint, or when a model's size
    cannot be read before it loads (a name that is not a model, a download)."""
    record = _current.get()
    if record is None:
        return None
    models = tuple(record.models)
    scaled_from = () if (record.endpoint, models) in _durations else _latest.get(record.endpoint, ())
    seconds, inputs = _durations.get((record.endpoint, scaled_from or models), (None, 0))
    if seconds is None:
        return None
    about = seconds * record.n_inputs / inputs if inputs and record.n_inputs else seconds
    if scaled_from:
        now, then = parameters(models), parameters(scaled_from)
        if not now or not then:
            return None
        about *= now / then
    return Estimate(about, seconds, inputs, tuple(PurePath(name).name for name in scaled_from))


def parameters(models: Sequence[str]) -> int | None:
    """The parameters of ``models`` together, read from their weight files (nothing loads); None when one cannot be
    read here."""
    total = 0
    for name in models:
        if name not in _parameters:
            try:
                stored = stored_weights(resolve_source(name))
            except (FlagDemoError, OSError, ValueError):  # not a model name (e.g. a fusion), or not here
                stored = None
            if stored is None:
                return None
            _parameters[name] = stored[0] // stored[1]
        total += _parameters[name]
    return total


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
            _latest[endpoint] = tuple(record.models)
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

"""An internal failure is never an accepted outcome: watch flagdemo's logs while a request runs, fail on one.

The app hides an unexpected exception behind a sentence (``flagdemo.ui.views.text.ERROR_FALLBACK``) and logs the
request's outcome as ``failed:<Exception>``; the engine logs a reranking method that crashed; a figure that could not
be drawn is logged too. So a test that only checks "a result or a sentence came back" cannot see a crash. These helpers
make it see one, and name the exception with its traceback.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flagdemo.errors import FlagDemoError
from flagdemo.ui.views import text

_FALLBACK = re.compile(
    "^" + ".+".join(re.escape(part) for part in text.ERROR_FALLBACK.split("{action}")) + "$", re.DOTALL
)


def is_fallback(message: str) -> bool:
    """Whether ``message`` is the generic sentence shown for an unexpected exception."""
    return bool(_FALLBACK.match(str(message)))


_watches: list[_FailureLog] = []


class _FailureLog(logging.Handler):
    """Collects ``failed:…`` request lines and logged exceptions that are not flagdemo's typed errors."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if _watches[-1] is not self:  # an inner watch reports it (a hypothesis example inside a watched test)
            return
        request = getattr(record, "request", None)
        if isinstance(request, dict) and str(request.get("outcome", "")).startswith("failed:"):
            self.failures.append(f"the request to /{request.get('endpoint')} ended as {request['outcome']}")
        if record.exc_info and record.exc_info[1] is not None and not isinstance(record.exc_info[1], FlagDemoError):
            error = record.exc_info[1]
            trace = "".join(traceback.format_exception(*record.exc_info))
            self.failures.append(
                f"{record.name} logged {type(error).__name__}: {error} ({record.getMessage()})\n{trace}"
            )


@contextmanager
def no_internal_failure() -> Iterator[_FailureLog]:
    """Fail (AssertionError naming the exception) if, inside the block, a request ended as ``failed:…`` or flagdemo
    logged an exception other than its typed errors (an engine method or a figure that crashed)."""
    watch = _FailureLog()
    package = logging.getLogger("flagdemo")
    requests = logging.getLogger("flagdemo.requests")
    level = requests.level
    if not requests.isEnabledFor(logging.INFO):
        requests.setLevel(logging.INFO)  # request lines are INFO: make sure they are emitted at all
    package.addHandler(watch)
    _watches.append(watch)
    try:
        yield watch
    finally:
        _watches.remove(watch)
        package.removeHandler(watch)
        requests.setLevel(level)
    if watch.failures:
        raise AssertionError("internal failure (never an accepted outcome):\n" + "\n".join(watch.failures))


def answer(call: Callable[[], object], refusal: type[BaseException]) -> object:
    """What a handler call gives: its result, or the ``refusal`` it raised (a sentence for the user).

    A crash is a test failure: a ``failed:…`` request line or a logged exception (named, with its traceback), or the
    generic fallback sentence, or any exception other than ``refusal``.
    """
    with no_internal_failure():
        try:
            return call()
        except refusal as error:
            refused = error
    message = getattr(refused, "message", str(refused))
    assert not is_fallback(message), f"answered with the generic sentence for an internal failure: {message!r}"
    return refused


def endpoint(demo, api_name: str) -> Callable:
    """The function behind the app's event ``api_name``, called with the widgets' values by parameter name (the
    names gradio_client uses, which are the app's public API)."""
    functions = [block.fn for block in demo.fns.values() if block.api_name == api_name]
    assert len(functions) == 1, f"the app has {len(functions)} events named {api_name!r}"
    return functions[0]

"""What every tab shares: error handling, the model-work queue slot, the run wiring, and small widget groups.

A tab's ``render`` builds its widgets and calls ``wire_run`` once; the widget groups here are plain functions that
return their components (a model picker, a precision picker, a "how to read this" line).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

import gradio as gr

from flagdemo import serving
from flagdemo.engine import Engine
from flagdemo.errors import FlagDemoError
from flagdemo.models.backends.precision import default_precision
from flagdemo.serving import request_log, result_cache
from flagdemo.ui import zerogpu
from flagdemo.ui.inputs import PRECISION_CHOICES, precision_label
from flagdemo.ui.views import text

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

FAILED_NOTE = (
    "**The last run stopped with an error** (its message is shown above the page): the results were cleared. "
    "Change the inputs and run again."
)

try:  # ZeroGPU Spaces: spaces.GPU borrows a GPU per call; elsewhere it returns the function unchanged.
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn: Callable[P, R]) -> Callable[P, R]:
        return fn


REUSED: contextvars.ContextVar[str] = contextvars.ContextVar("reused", default="")  # the last request's reuse note


def with_reuse_note(handler: Callable, outputs: Sequence, note) -> Callable:
    """``handler`` whose note also says when its result came from the result cache (the times shown are then an
    earlier run's); the note is read after the handler's own request ends."""
    where = list(outputs).index(note)

    @functools.wraps(handler)
    def run(*args, **kwargs):
        REUSED.set("")
        values = handler(*args, **kwargs)
        reused = REUSED.get()
        if not reused or not isinstance(values, tuple | list):
            return values
        values = list(values)
        values[where] = f"{values[where] or ''} {reused}".strip()
        return tuple(values)

    return run


def user_errors(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Show expected failures as their own sentence and unexpected ones as a generic sentence (details in the log).

    Each call also writes one request log line named after the handler (which is its api_name).
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with request_log.logged_request(fn.__name__):
                try:
                    result = fn(*args, **kwargs)
                    REUSED.set(result_cache.reuse_note())
                    return result
                except gr.Error:
                    request_log.set_outcome("refused:Error")
                    raise
                except FlagDemoError as exc:
                    request_log.set_outcome(f"refused:{type(exc).__name__}")
                    logger.info("refused: %s", exc)  # the operator's log keeps the setting names
                    raise gr.Error(for_visitors(str(exc)), print_exception=False) from None
                except Exception as exc:
                    request_log.set_outcome(f"failed:{type(exc).__name__}")
                    logger.exception("unexpected failure while %s", action)
                    raise gr.Error(text.ERROR_FALLBACK.format(action=action), print_exception=False) from None

        return wrapper

    return decorate


SETTING_NAME = re.compile(r"\s*\((?:[^()]*?\s)?FLAGDEMO_[A-Z_]+[^()]*\)")
SETTING_WORDS = re.compile(r"(?:the environment variable )?FLAGDEMO_[A-Z_]+(?:=[^\s.]+)?")


def for_visitors(message: str) -> str:
    """A message without server setting names: "(FLAGDEMO_MAX_TEXTS)" goes, a sentence naming one says "the
    server's setting" (the names belong in the operator's log and docs/serving.md)."""
    return SETTING_WORDS.sub("the server's setting for it", SETTING_NAME.sub("", message))


def bind(handler: Callable, engine: Engine) -> Callable:
    """``handler`` with ``engine`` filled in, keeping its name and the signature gradio documents for the API (on a
    ZeroGPU Space, inside the GPU decorator)."""

    @functools.wraps(handler)
    def bound(*args, **kwargs):
        return handler(engine, *args, **kwargs)

    signature = inspect.signature(handler)
    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    del bound.__wrapped__  # gradio must read the bound signature, not the handler's
    return zerogpu.on_gpu(bound)


@dataclass
class TabParts:
    """What a tab's ``render`` hands back to the composer: the handler bound to the engine, its widgets, the inputs
    a shared link may carry (URL parameter → component), whether its opening example may be computed once per
    process (``memo``; False for views of changing state, such as the model cache), and the tab's other sections
    with their own endpoint (``also``), each opened with its example computed too."""

    handler: Callable
    inputs: list
    outputs: list
    note: gr.Markdown
    link: dict[str, gr.components.Component] = field(default_factory=dict)
    memo: bool = True
    also: tuple[TabParts, ...] = ()

    def sections(self) -> tuple[TabParts, ...]:
        return (self, *self.also)


def wire_run(
    parts: TabParts, *, api_name: str, button: gr.Button, submit: Sequence[gr.Textbox] = (), reset: bool = True
) -> list:
    """The tab's main event: the button (and Enter in ``submit`` boxes) runs the handler; a failed run clears the
    outputs and says so; a reset button puts the example back; a link button copies a link to this state. Returns
    the run events, for views that follow a successful run."""
    event = {
        "fn": gpu(with_reuse_note(parts.handler, parts.outputs, parts.note)),
        "inputs": parts.inputs,
        "outputs": parts.outputs,
        **serving.event_kwargs(api_name),
    }
    cleared = [FAILED_NOTE if output is parts.note else None for output in parts.outputs]
    triggers = [button.click(**event, api_name=api_name)]
    triggers += [box.submit(**event, api_visibility="private") for box in submit]
    for trigger in triggers:
        trigger.failure(lambda: cleared, None, parts.outputs, api_visibility="private", queue=False)
    with gr.Row():
        if reset:
            defaults = [component.value for component in parts.inputs]
            reset_button = gr.Button("Reset to the example", size="sm", elem_id=f"{api_name}-reset")
            reset_button.click(lambda: defaults, None, parts.inputs, api_visibility="private", queue=False).then(
                **event, api_visibility="private"
            )
        if parts.link:
            link_button = gr.Button("Copy a link to these inputs", size="sm", elem_id=f"{api_name}-link")
            link_button.click(None, list(parts.link.values()), None, js=copy_link_js(api_name, list(parts.link)))
    return triggers


def copy_link_js(tab_id: str, names: Sequence[str]) -> str:
    """Browser code that puts ``?tab=<tab_id>&<name>=<value>…`` for the current inputs on the clipboard."""
    keys = ", ".join(f"'{name}'" for name in names)
    return (
        "(...values) => { const keys = [" + keys + "]; const url = new URL(window.location.href); "
        "url.search = ''; url.searchParams.set('tab', '" + tab_id + "'); "
        "keys.forEach((k, i) => { const v = values[i]; "
        "if (v !== null && v !== undefined && typeof v !== 'object') url.searchParams.set(k, String(v)); }); "
        "navigator.clipboard && navigator.clipboard.writeText(url.toString()); "
        "window.history.replaceState(null, '', url.toString()); }"
    )


def progress_with_last_run(progress: gr.Progress) -> Callable[[float, str], None]:
    """The engine's progress callback for a heavy tab: each step also says about how long the work will take here
    (``request_log.estimate``: the last run of this endpoint on these models, or on others scaled by their size, and
    to this request's inputs); read once the request has named its models and inputs."""
    guess, hint = request_log.estimate(), ""
    if guess is not None:
        basis = "the last run"
        if guess.scaled_from:
            basis = f"scaled by size from the last run on {text.listed(guess.scaled_from)}"
        hint = (
            f" (about {text.duration(guess.seconds)} here once the models are loaded; {basis}: "
            f"{text.plural(guess.last_inputs, 'input')} in {text.duration(guess.last_seconds)})"
        )
    return lambda fraction, desc: progress(fraction, desc=desc + hint)


def model_box(menu: Sequence[tuple[str, str]], value: str, label: str, elem_id: str) -> gr.Dropdown:
    """A model picker listing ``menu`` ((label, name) pairs) that also accepts a hub id or a folder typed in."""
    choices = list(menu)
    if value and value not in [name for _, name in choices]:
        choices.insert(0, (value, value))
    return gr.Dropdown(choices, value=value, label=label, allow_custom_value=True, elem_id=elem_id)


def warn_if_unavailable(engine: Engine) -> Callable[[str], None]:
    """A model picker's change event: choosing a catalog model that cannot load here says why, at once."""

    def check(name: str) -> None:
        reason = engine.unavailable(name) if isinstance(name, str) else ""
        if reason:
            gr.Warning(reason)

    return check


def precision_box(elem_id: str) -> gr.Dropdown:
    """fp32 reproduces FlagEmbedding exactly; the faster CPU modes are opt-in and say they are approximate."""
    return gr.Dropdown(
        list(PRECISION_CHOICES),
        value=precision_label(default_precision()),
        label="Precision",
        info="Only fp32 gives FlagEmbedding's exact numbers.",
        elem_id=elem_id,
    )


def note_box(elem_id: str, label: str) -> gr.Markdown:
    """A tab's status line (what ran, how long, what to watch for); its label names it in the API."""
    return gr.Markdown(label=label, elem_id=elem_id)


def download_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="flagdemo-"))


def number_choices(radio: gr.Radio) -> gr.Radio:
    """A radio of numbers that also takes them as text ("3" as well as 3) and documents them as numbers: the API
    page must describe what the endpoint accepts."""
    preprocess, api_info = radio.preprocess, radio.api_info

    def accept_text(payload):
        if isinstance(payload, str) and payload.strip().lstrip("-").isdigit():
            payload = int(payload.strip())
        return preprocess(payload)

    radio.preprocess = accept_text
    radio.api_info = lambda: {**api_info(), "type": "integer"}
    return radio

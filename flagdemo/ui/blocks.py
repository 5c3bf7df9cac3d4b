"""The composer: theme, header, one line per tab, the page-load events and the queue.

How a tab is made (the contract every tab module follows, so new tabs are added the same way):

- ``flagdemo/ui/tabs/<name>.py`` has ``TITLE`` (the tab's label), ``TAB_ID`` (its id, used by ``?tab=<id>``
  links) and ``render(engine) -> common.TabParts``.
- ``render`` lays out the tab's contents (the composer has already opened ``gr.Tab(TITLE, id=TAB_ID)``), wires its
  main button to its handler with ``common.wire_run(parts, api_name=..., button=...)`` and returns the parts.
- The handler sits beside ``render``, is named as its endpoint, takes the engine first and then the widget values,
  is wrapped in ``common.user_errors``, parses values with ``ui.inputs``, makes ONE engine call and turns the
  result into figures and tables. It returns one value per output; one output is the tab's note (status line).
- Add the module to ``tabs.TABS``. The composer then opens the tab with its example computed (once per process
  for ``memo`` tabs), selects it from a link, and fills the inputs a link carries (``parts.link``).

``compute_examples_in_background(demo)`` (what app.py calls as the server starts) computes the remembered examples
in a thread, so a visitor who arrives later finds them ready instead of waiting minutes for full-size models.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import gradio as gr

from flagdemo import limits, serving
from flagdemo.engine import Engine
from flagdemo.ui import common
from flagdemo.ui.tabs import TABS
from flagdemo.ui.views import text

logger = logging.getLogger(__name__)


_EXAMPLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # demo → its remembered examples and inputs


def build_demo(engine: Engine | None = None, *, only: str | None = None) -> gr.Blocks:
    """The whole app, or with ``only`` one tab (by its id). Pass an ``Engine`` to choose models (tests pass tiny
    ones); default: the models that load on this machine (the BGE set where it can), which the page names."""
    engine = engine or Engine.for_this_machine()
    chosen = [tab for tab in TABS if only is None or only == tab.TAB_ID]
    if not chosen:
        raise ValueError(f"No tab {only!r}: choose one of {', '.join(tab.TAB_ID for tab in TABS)}.")
    with gr.Blocks(title="flagdemo", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(text.TITLE)
        if only is None:
            gr.Markdown(text.INTRO)
        if engine.model_set_note:
            gr.Markdown(engine.model_set_note, elem_id="model-set-note")
        with gr.Tabs() as tabs:
            parts = {}
            for tab in chosen:
                with gr.Tab(tab.TITLE, id=tab.TAB_ID):
                    parts[tab.TAB_ID] = tab.render(engine)
        link_inputs = [c for tab in parts.values() for section in tab.sections() for c in section.link.values()]
        opened = demo.load(open_link(parts), None, [tabs, *link_inputs], api_visibility="private", queue=False)
        remembered = []
        for tab_id, tab in parts.items():
            for section in tab.sections():
                name = tab_id if section is tab else section.handler.__name__
                example = first_run(name, section) if section.memo else section.handler
                opened.then(
                    example, section.inputs, section.outputs, api_visibility="private", **serving.event_kwargs(tab_id)
                )
                if section.memo:
                    remembered.append((example, section.inputs))
    demo.queue(**serving.queue_kwargs())
    _EXAMPLES[demo] = remembered
    return demo


def compute_examples_in_background(demo: gr.Blocks) -> threading.Thread | None:
    """Start computing the demo's remembered examples in a thread (none on ZeroGPU, where a GPU is lent only
    inside a visitor's request); the thread, or None."""
    if limits.zero_gpu():
        return None
    thread = threading.Thread(target=compute_examples, args=(_EXAMPLES.get(demo, []),), name="examples", daemon=True)
    thread.start()
    return thread


def compute_examples(examples: Sequence[tuple[Callable, Sequence[gr.components.Component]]]) -> None:
    """Run each remembered example on its widgets' opening values, in page order: what the page load then asks
    for is already there (or being computed, and the result cache lets the visitor's request wait for it)."""
    for example, inputs in examples:
        try:
            example(*(component.value for component in inputs))
        except Exception:  # the visitor's own page load will run it again and show its sentence
            logger.exception("computing the example of %s in advance failed", example.__name__)


def theme() -> gr.themes.Base:
    """Gradio's default look with Source Sans Pro's regular and bold files, both bundled with gradio: its default
    asks for the semi-bold file, which holds only a few dozen glyphs, so offline a bold heading mixed two weights."""
    return gr.themes.Default(
        font=[gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"]
    )


def open_link(parts: dict[str, common.TabParts]):
    """The page-load event: ``?tab=<id>`` selects a tab, and that tab's other parameters fill its inputs."""

    def apply(request: gr.Request):
        params = dict(request.query_params) if request is not None else {}
        wanted = params.get("tab", "")
        selected = gr.Tabs(selected=wanted) if wanted in parts else gr.skip()
        values = []
        for tab_id, tab in parts.items():
            for section in tab.sections():
                for name, component in section.link.items():
                    linked = tab_id == wanted and name in params
                    values.append(link_value(component, name, params[name]) if linked else gr.skip())
        return [selected, *values]

    return apply


def link_value(component, name: str, raw: str):
    """A link parameter as its widget's value; one that does not fit leaves the widget as it was, and says so."""
    try:
        if isinstance(component, gr.Number):
            number = float(raw)
            return int(number) if number.is_integer() else number
        if isinstance(component, gr.Radio) and all(isinstance(value, int) for _, value in component.choices):
            return int(raw)
    except ValueError:
        gr.Warning(f"The link's {name} {raw[:40]!r} is not a number: the box keeps its value.")
        return gr.skip()
    return raw


def first_run(name: str, tab: common.TabParts):
    """The tab's handler, remembered for the inputs it opens with: every visitor sees the example at once, and the
    server computes it once (a link with other inputs runs them). A call that arrives while the same inputs are
    being computed (a visitor while the start-up precompute runs) waits for that run instead of starting its own."""
    remembered: dict[tuple, object] = {}
    running: dict[tuple, Future] = {}
    lock = threading.Lock()

    def run(*values):
        key = memo_key(values)
        with lock:
            if key in remembered:
                return remembered[key]
            pending = running.get(key)
            owner = pending is None
            if owner:
                pending = running[key] = Future()
        if not owner:
            return pending.result()
        try:
            result = tab.handler(*values)
        except BaseException as error:
            with lock:
                running.pop(key, None)
            pending.set_exception(error)
            raise
        with lock:
            running.pop(key, None)
            if len(remembered) < 8:
                remembered[key] = result
        pending.set_result(result)
        return result

    run.__name__ = f"{name}_example"
    return run


def memo_key(values: Sequence) -> tuple[str, ...]:
    """The remembered example's key: a whole float counts as its int, because the browser sends a slider's or a
    number box's 1.0 as 1, so the key from the widgets' opening values (the start-up precompute) differed from the
    page load's and the example was computed twice."""
    return tuple(repr(int(value) if isinstance(value, float) and value.is_integer() else value) for value in values)

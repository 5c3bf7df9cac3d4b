"""The Blocks as gradio sees them: endpoints, queue settings, an in-process call, app.py and the Space front matter."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import gradio as gr
import pytest

from flagdemo import serving
from flagdemo.ui.views import text

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_ENDPOINTS = {
    "encode", "similarity", "rerank", "layer_sweep", "project", "cocktail", "compare", "compare_systems", "models",
    "unload", "project_stored", "compare_beir",
}  # fmt: skip
DATA_FOLDER_ENDPOINTS = {"project_stored", "compare_beir"}  # their lists hold what the server's data folder holds
MODEL_ENDPOINTS = PUBLIC_ENDPOINTS - {"models", "unload"}


def _fn(demo: gr.Blocks, api_name: str):
    return next(fn for fn in demo.fns.values() if fn.api_name == api_name)


def test_public_endpoints_are_the_documented_ones(tiny_demo):
    public = {fn.api_name for fn in tiny_demo.fns.values() if fn.api_visibility == "public"}
    assert public == PUBLIC_ENDPOINTS


def test_light_and_heavy_work_queue_in_their_own_groups(tiny_demo):
    light = {"encode", "similarity", "project", "models", "unload"}
    for name in PUBLIC_ENDPOINTS:
        fn = _fn(tiny_demo, name)
        kind = "light" if name in light else "heavy"
        assert (fn.concurrency_id, fn.concurrency_limit) == (f"{kind}-work", 4 if kind == "light" else 2), name
        if name in MODEL_ENDPOINTS:
            assert fn.tracks_progress, f"{name} should report progress"
    assert tiny_demo._queue.max_size == serving.QUEUE_SIZE.default


def test_every_tab_says_what_it_teaches(tiny_demo):
    markdown = [block.value for block in tiny_demo.blocks.values() if isinstance(block, gr.Markdown)]
    for tab in text.TAB_SUMMARIES:
        assert text.tab_intro(tab) in markdown, tab
    tabs = {block.label for block in tiny_demo.blocks.values() if isinstance(block, gr.Tab)}
    assert tabs == set(text.TAB_SUMMARIES)


def test_every_input_has_a_default(tiny_demo):
    for name in PUBLIC_ENDPOINTS - {"models"} - DATA_FOLDER_ENDPOINTS:
        fn = _fn(tiny_demo, name)
        for component in fn.inputs:
            if isinstance(component, gr.File):
                continue  # uploads are optional: None means "use the text box"
            assert component.value is not None, f"{name}: {component.label} has no default"


@pytest.mark.asyncio
async def test_process_api_runs_the_encode_example(tiny_demo):
    fn = _fn(tiny_demo, "encode")
    inputs = [component.value for component in fn.inputs]
    index = next(i for i, f in tiny_demo.fns.items() if f is fn)
    out = await tiny_demo.process_api(block_fn=index, inputs=inputs, state=None)
    table = out["data"][0]
    assert table["headers"][:5] == ["#", "text", "tokens", "truncated", "norm"]
    assert [row[1] for row in table["data"]] == text.ENCODE_TEXTS.splitlines()
    assert all(abs(row[4] - 1.0) < 1e-5 for row in table["data"])


def test_app_module_builds_demo_without_launching(monkeypatch):
    launched = {}
    app = importlib.import_module("app")
    assert isinstance(app.demo, gr.Blocks)
    monkeypatch.setattr(app.demo, "launch", lambda **kwargs: launched.update(kwargs))
    monkeypatch.setattr(app, "start_warm_up", lambda: None)
    started = []
    monkeypatch.setattr(app, "compute_examples_in_background", started.append)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    app.main([])
    assert isinstance(launched.pop("theme"), gr.themes.Base)  # the bundled regular and bold faces
    assert launched == {"server_name": "0.0.0.0", "server_port": 7999, "share": False}
    assert started == [app.demo]  # the examples start computing as the server starts
    app.main(["--host", "127.0.0.2", "--port", "8123", "--share"])
    assert launched.pop("theme") is not None
    assert launched == {"server_name": "127.0.0.2", "server_port": 8123, "share": True}
    monkeypatch.delenv("GRADIO_SERVER_NAME")
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    app.main([])
    assert launched.pop("theme") is not None
    assert launched == {"server_name": "127.0.0.1", "server_port": 7860, "share": False}


def test_readme_space_front_matter_pins_the_installed_gradio():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", readme, flags=re.DOTALL)
    assert match, "README.md must start with the Hugging Face Space front matter"
    fields = dict(re.findall(r"^([A-Za-z_]+):\s*(.+?)\s*$", match.group(1), flags=re.MULTILINE))
    assert fields["sdk"] == "gradio"
    assert fields["sdk_version"].strip("\"'") == gr.__version__
    assert fields["app_file"] == "app.py"


def _load_link(demo: gr.Blocks):
    return next(fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "apply")


def test_a_link_selects_its_tab_and_fills_its_inputs(tiny_demo):
    from types import SimpleNamespace

    link = _load_link(tiny_demo)
    request = SimpleNamespace(query_params={"tab": "similarity", "queries": "Why do prices rise?", "top_k": "2"})
    selected, *values = link.fn(request)
    assert selected.selected == "similarity"
    filled = {link.outputs[i + 1].elem_id: value for i, value in enumerate(values) if not isinstance(value, dict)}
    assert filled == {"similarity-queries": "Why do prices rise?", "similarity-top-k": 2}
    untouched, *_ = link.fn(SimpleNamespace(query_params={"tab": "nowhere"}))
    assert not hasattr(untouched, "selected") or untouched.selected is None


def test_a_failed_run_clears_its_tab_and_says_so(tiny_demo):
    from flagdemo.ui.common import FAILED_NOTE

    for name in MODEL_ENDPOINTS:
        index = next(i for i, fn in tiny_demo.fns.items() if fn.api_name == name)
        after = [fn for fn in tiny_demo.fns.values() if fn.trigger_after == index and fn.trigger_only_on_failure]
        assert len(after) == 1, name
        cleared = after[0].fn()
        notes = [value for value in cleared if value is not None]
        assert notes == [FAILED_NOTE], name
        assert [c._id for c in after[0].outputs] == [c._id for c in _fn(tiny_demo, name).outputs]


def test_an_example_is_computed_once_per_process():
    from flagdemo.ui.blocks import first_run
    from flagdemo.ui.common import TabParts

    calls = []
    parts = TabParts(handler=lambda *values: calls.append(values) or ("result", *values), inputs=[], outputs=[],
                     note=gr.Markdown())  # fmt: skip
    run = first_run("demo", parts)
    assert run("a", 1) == run("a", 1) == ("result", "a", 1)
    assert run("b", 1) == ("result", "b", 1)
    assert calls == [("a", 1), ("b", 1)]


def test_the_browser_s_whole_numbers_find_the_example_the_start_up_computed():
    """A slider opening at 1.0 arrives from the browser as 1 (JavaScript writes whole floats without ".0"); the
    start-up precompute used 1.0. Both must be one example, or the page load computes it again."""
    from flagdemo.ui.blocks import first_run
    from flagdemo.ui.common import TabParts

    calls = []
    run = first_run("demo", TabParts(handler=lambda *values: calls.append(values) or len(calls), inputs=[],
                                     outputs=[], note=gr.Markdown()))  # fmt: skip
    assert run("a", 1.0, 5.0, True, 0.3) == run("a", 1, 5, True, 0.3) == 1
    assert run("a", 1, 5, False, 0.3) == 2  # a changed input is another example
    assert len(calls) == 2


def test_examples_computed_in_advance_are_what_the_page_load_gets(tiny_engine, engine_copy, monkeypatch):
    from flagdemo.ui import build_demo
    from flagdemo.ui.blocks import _EXAMPLES, compute_examples_in_background

    engine = engine_copy(tiny_engine)  # no result cache: only the example's memory can spare a second encode
    calls = []
    encode = engine.encode
    monkeypatch.setattr(engine, "encode", lambda *args, **kwargs: calls.append(args) or encode(*args, **kwargs))
    demo = build_demo(engine, only="encode")
    compute_examples_in_background(demo).join(120)
    assert len(calls) == 1
    ((example, inputs),) = _EXAMPLES[demo]
    opened = example(*(component.value for component in inputs))  # the page load's call, with the same values
    assert len(calls) == 1 and all(Path(file).is_file() for file in opened[-1])  # the download files
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # a GPU is lent only inside a visitor's request
    assert compute_examples_in_background(demo) is None


def test_a_visitor_arriving_while_the_example_runs_waits_for_that_run():
    import threading

    from flagdemo.ui.blocks import first_run
    from flagdemo.ui.common import TabParts

    calls, release = [], threading.Event()

    def slow(*values):
        calls.append(values)
        release.wait(10)
        return ("result", *values)

    run = first_run("demo", TabParts(handler=slow, inputs=[], outputs=[], note=gr.Markdown()))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(run("a", 1))) for _ in range(3)]
    for thread in threads:
        thread.start()
    while not calls:  # the first call is computing; the other two arrive meanwhile
        threading.Event().wait(0.01)
    threading.Event().wait(0.1)
    release.set()
    for thread in threads:
        thread.join(10)
    assert calls == [("a", 1)] and answers == [("result", "a", 1)] * 3


def test_one_tab_alone_for_a_notebook(tiny_engine):
    from flagdemo.ui import build_demo

    demo = build_demo(tiny_engine, only="similarity")
    assert [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)] == ["Similarity"]
    assert {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"} == {"similarity"}
    with pytest.raises(ValueError, match="No tab 'nowhere'"):
        build_demo(tiny_engine, only="nowhere")


def test_projection_dims_accepts_the_documented_text(tiny_demo):
    dims = next(c for c in _fn(tiny_demo, "project").inputs if getattr(c, "label", "") == "Dimensions")
    assert dims.preprocess("3") == 3 and dims.preprocess(2) == 2  # view_api documents '2' / '3'
    with pytest.raises(gr.Error):
        dims.preprocess("4")


def test_the_cocktail_tab_opens_without_fine_tuning(tiny_demo):
    from flagdemo.ui.tabs import cocktail

    opening = next(fn for fn in tiny_demo.fns.values() if getattr(fn.fn, "__name__", "") == "cocktail_example")
    *results, note = opening.fn(*[component.value for component in opening.inputs])
    assert results == [None, None, None, None] and note == cocktail.opening_note("x/bert-embedder")
    assert "Nothing has run yet" in note and "0.521" in note  # MiniLM's measured result, labelled as such
    assert "Its base here is bert-embedder, larger" in note and "one run on all-MiniLM-L6-v2 measured" in note
    minilm = cocktail.opening_note("all-MiniLM-L6-v2")
    assert "one run of these defaults measured" in minilm and "Its base here" not in minilm
    assert cocktail.opening_note("sentence-transformers/all-MiniLM-L6-v2") == minilm

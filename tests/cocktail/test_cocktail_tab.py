"""The Cocktail tab's handler (called directly) and its /cocktail endpoint (gradio_client), on the tiny BERT."""

from __future__ import annotations

import json
import zipfile

import gradio as gr
import plotly.graph_objects as go
import pytest

from flagdemo.ui.tabs import cocktail as tab


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FLAGDEMO_PUBLIC", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    return tmp_path / "cache"


def small_upload(tmp_path, n: int = 12) -> str:
    path = tmp_path / "train.jsonl"
    rows = [
        {"query": f"how do I cook dish {i}", "pos": [f"Dish {i} is simmered for {i + 5} minutes."],
         "neg": [f"Dish {i + 1} is served cold.", f"Shop {i} sells pans.", "Travel light."]}
        for i in range(n)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return str(path)


def test_the_handler_fine_tunes_blends_and_cleans_up(tiny_engine, tmp_path, cache):
    loss, curve, table, download, note = tab.cocktail(
        tiny_engine, None, tab.UPLOAD, small_upload(tmp_path), ["cooking"], 1, 1e-4, 5.0, progress=lambda *a, **k: None
    )
    assert isinstance(loss, go.Figure) and len(loss.data[0].y) == 1  # (12 - 8 held back) examples = 1 step of 8
    assert isinstance(curve, go.Figure) and [trace.name for trace in curve.data] == [
        "in-domain nDCG@10",
        "out-of-domain nDCG@10",
    ]
    marked = table[table["data-derived"]]["weight"].tolist()
    assert len(marked) == 1 and 0 < marked[0] < 1
    assert "LM-Cocktail's weight from data" in curve.layout.annotations[0].text
    assert {0.0, 0.5, 1.0} <= set(table["weight"])
    assert table["in-domain queries"].iloc[0] == 6 and table["out-of-domain queries"].iloc[0] == 42
    assert table["in-domain nDCG@10"].between(0, 1).all()
    assert "4 examples for 1 steps; 8 examples were held back" in note
    with zipfile.ZipFile(download) as archive:
        names = set(archive.namelist())
    assert {"model.safetensors", "cocktail.json", "modules.json", "1_Pooling/config.json"} <= names
    assert [p for p in (cache / "cocktail").iterdir()] == []  # the checkpoint folder is gone


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((None, tab.UPLOAD, None, ["cooking"]), "Upload a .jsonl training file first"),
        ((None, tab.UPLOAD, "UPLOAD", []), "Tick the labelled-set topics"),
        ((None, "secret.jsonl", None, ["cooking"]), "Unknown training file 'secret.jsonl'"),
        ((None, tab.BUNDLED, None, None, 9), "Epochs must be between 1 and 5"),
        ((None, tab.BUNDLED, None, None, 1, "fast"), "The learning rate must be a number"),
    ],
)
def test_bad_inputs_get_sentences(tiny_engine, tmp_path, cache, arguments, message):
    arguments = tuple(small_upload(tmp_path) if value == "UPLOAD" else value for value in arguments)
    with pytest.raises(gr.Error, match=message):
        tab.cocktail(tiny_engine, *arguments, progress=lambda *a, **k: None)


def test_too_many_steps_and_public_mode_paths_are_refused(tiny_engine, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_FINETUNE_STEPS", "1")
    with pytest.raises(gr.Error, match="make 16 fine-tuning steps; this server allows 1"):
        tab.cocktail(tiny_engine, None, tab.BUNDLED, None, None, 1, progress=lambda *a, **k: None)
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.raises(gr.Error, match="This public demo loads only the embedders in its list"):
        tab.cocktail(tiny_engine, "/etc", tab.BUNDLED, None, None, 1, progress=lambda *a, **k: None)


@pytest.mark.e2e
def test_the_endpoint_answers_with_its_defaults_through_gradio_client(tiny_engine, cache):
    from gradio_client import Client

    with gr.Blocks() as demo, gr.Tab(tab.TITLE):
        tab.render(tiny_engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        loss, curve, table, download, note = Client(url, verbose=False).predict(api_name="/cocktail")
        assert loss is not None and curve is not None
    finally:
        demo.close()
    rows = table["data"]
    assert len(rows) in (11, 12) and table["headers"][0] == "weight"
    assert "Fine-tuned" in note and "127 examples for 16 steps" in note
    assert download is not None and str(download).endswith(".zip")


@pytest.mark.e2e
def test_the_tab_runs_and_shows_its_errors_in_a_real_browser(tiny_engine, cache):
    from pathlib import Path

    from playwright.sync_api import expect, sync_playwright

    chromium = "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail(f"{chromium} is missing: install Debian's chromium (apt-get install -y chromium).")
    with gr.Blocks() as demo, gr.Tab(tab.TITLE):
        tab.render(tiny_engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        with sync_playwright() as playwright:
            flags = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=flags)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            page.goto(url)
            page.locator("#cocktail-run").click()
            expect(page.locator("#cocktail-table")).to_contain_text("out-of-domain nDCG@10", timeout=180_000)
            expect(page.locator("#cocktail-curve .js-plotly-plot")).to_be_visible(timeout=30_000)
            expect(page.locator("#cocktail-loss .js-plotly-plot")).to_be_visible(timeout=30_000)
            expect(page.locator("#cocktail-note")).to_contain_text("LM-Cocktail's weight for the fine", timeout=30_000)
            assert page.evaluate("document.documentElement.scrollWidth") <= 1400  # no sideways scrolling
            training = page.locator("#cocktail-file input")
            training.fill(tab.UPLOAD)
            training.press("Enter")
            page.locator("#cocktail-run").click()
            expect(page.get_by_text("Upload a .jsonl training file first").first).to_be_visible(timeout=60_000)
            browser.close()
    finally:
        demo.close()

"""LLM-Embedder's Task and Visualized-BGE's images through a launched app: gradio_client calls and a real browser.

One app per module, on the tiny models plus the family's seeded random weights (``family_models``); the numbers
are compared with LLMEmbedder and Visualized_BGE called directly.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from flagdemo import LLMEmbedder, Visualized_BGE
from flagdemo.models.embedders.llm_embedder import task_instruction
from flagdemo.models.visual.drawing import BUNDLED_DIR
from flagdemo.ui.family import NOT_LLM_EMBEDDER

pytestmark = pytest.mark.e2e

VISUAL = "bge-visualized-base-en-v1.5"
PASSAGES = ["a red circle", "a blue square"]
CHROMIUM = "/usr/bin/chromium"
RUN_MS = 120_000


@pytest.fixture(scope="module")
def app_urls(family_engine):
    """Encode and Similarity, each served on its own (a page load computes only its tab's example: no reranker
    loads in this module's servers while later modules load theirs)."""
    from flagdemo.ui import build_demo

    demos = {tab: build_demo(family_engine, only=tab) for tab in ("encode", "similarity")}
    urls = {tab: demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)[1]
            for tab, demo in demos.items()}  # fmt: skip
    yield urls
    settle()
    for demo in demos.values():
        demo.close()


@pytest.fixture(scope="module")
def client(app_urls) -> dict[str, Client]:
    return {tab: Client(url, verbose=False) for tab, url in app_urls.items()}


@pytest.fixture(scope="module")
def direct_visual(family_models):
    folder = family_models / VISUAL
    return Visualized_BGE("bge-base-en-v1.5", str(folder / "Visualized_base_en_v1.5.pth"), from_pretrained=str(folder))


@pytest.fixture(scope="module")
def image_scores(direct_visual) -> np.ndarray:
    """The red circle against PASSAGES, as Visualized_BGE's own encode gives them."""
    import torch

    image = direct_visual.encode(image=str(BUNDLED_DIR / "red-circle.png"))
    texts = torch.cat([direct_visual.encode(text=line) for line in PASSAGES])
    return (image @ texts.T).numpy()


def _z(plot: dict) -> np.ndarray:
    """The heatmap's values: a plain list, or plotly's typed array {"dtype", "bdata" (base64), "shape"}."""
    import base64

    z = json.loads(plot["plot"])["data"][0]["z"]
    if isinstance(z, dict):
        flat = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        return flat.reshape([int(n) for n in z["shape"].split(",")]) if z.get("shape") else flat
    return np.asarray(z, dtype=float)


# ---- gradio_client ---------------------------------------------------------------------------------------------


def test_an_uploaded_image_query_gives_visualized_bge_numbers(client, image_scores):
    heatmap, top, _, _, note = client["similarity"].predict(
        queries="",
        passages="\n".join(PASSAGES),
        model=VISUAL,
        top_k=2,
        query_images=[handle_file(str(BUNDLED_DIR / "red-circle.png"))],
        api_name="/similarity",
    )
    np.testing.assert_allclose(_z(heatmap), image_scores, rtol=0, atol=1e-6)
    assert top["data"][0][0].endswith("red-circle.png") and "1 image" in note


def test_a_bad_upload_gets_its_sentence_through_the_api(client, tmp_path):
    from gradio_client.exceptions import AppError

    fake = tmp_path / "holiday.png"
    fake.write_text("these are words, not pixels")
    with pytest.raises(AppError, match=r"Image 1 \(holiday.png\) is not an image PIL can read"):
        client["encode"].predict(texts="", model=VISUAL, images=[handle_file(str(fake))], api_name="/encode")


def test_llm_embedder_task_through_the_api(client, family_models):
    direct = LLMEmbedder(str(family_models / "llm-embedder"))
    for task in ("qa", "convsearch"):
        *_, note, files = client["encode"].predict(texts="where is the bank", model="llm-embedder", mode="query",
                                         instruction="", task=task, api_name="/encode")  # fmt: skip
        vectors = np.load(next(f for f in files if f.endswith(".npy")))
        np.testing.assert_allclose(vectors, direct.encode_queries(["where is the bank"], task=task), atol=1e-6)
        assert task_instruction(task, "query") in note


# ---- a real browser --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        yield browser
        browser.close()


def settle(quiet_seconds: float = 3.0, limit_seconds: float = 240.0) -> None:
    """Wait until no model work has run in this process for ``quiet_seconds``: a page load computes every tab's
    example in the server's threads, and that work must not still be loading models when the next tests begin."""
    from flagdemo.models import threads

    deadline = time.monotonic() + limit_seconds
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if threads.JOB_THREADS.running:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            return
        time.sleep(0.05)
    raise AssertionError("the server's example work did not finish")


def open_page(browser, url: str, note: str):
    """A page once its tab's note shows the opening example, and the other tabs' examples are done."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(RUN_MS)
    page.goto(url)
    expect(page.locator(f"#{note}")).to_contain_text(re.compile(r"\w"), timeout=RUN_MS)
    settle()
    return page


def test_browser_image_query_shows_thumbnails_and_the_same_numbers(browser, app_urls, image_scores):
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_urls['similarity']}?tab=similarity&model={VISUAL}", "similarity-note")
    try:
        picker = page.locator("#similarity-query-images").first
        expect(picker).to_be_visible(timeout=RUN_MS)  # the link's model shows the image pickers
        expect(page.locator("#similarity-task")).to_contain_text(NOT_LLM_EMBEDDER)
        page.locator("#similarity-queries textarea").fill("")
        page.locator("#similarity-passages textarea").fill("\n".join(PASSAGES))
        page.locator("#similarity-top-k input").fill("2")
        picker.get_by_label("a red circle").check()
        page.locator("#similarity-run").click()
        page.locator("#similarity-table [role=gridcell]").filter(has_text="red-circle.png").first.wait_for()
        thumbnail = page.locator("#similarity-pictures img")
        expect(thumbnail).to_have_count(1, timeout=RUN_MS)
        assert thumbnail.get_attribute("src").startswith("data:image/png;base64,")
        assert thumbnail.evaluate("img => img.naturalWidth") > 0  # the browser decoded it
        cells = page.locator("#similarity-table [role=gridcell]").all_inner_texts()
        shown = [float(m) for cell in cells for m in re.findall(r"-?\d+\.\d+", cell)]
        for expected in image_scores[0]:
            assert any(abs(value - expected) < 6e-4 for value in shown), (shown, image_scores)
    finally:
        page.close()


def test_browser_bad_image_and_llm_embedder_task(browser, app_urls, tmp_path):
    from playwright.sync_api import expect

    page = open_page(browser, f"{app_urls['encode']}?tab=encode&model={VISUAL}", "encode-timing")
    try:
        expect(page.locator("#encode-images").first).to_be_visible(timeout=RUN_MS)
        dot = tmp_path / "dot.png"
        from PIL import Image

        Image.new("RGB", (1, 1), "red").save(dot)
        page.locator("#encode-images-upload input[type=file]").set_input_files(str(dot))
        page.locator("#encode-run").click()
        expect(page.get_by_text("Image 1 (dot.png) is 1 x 1 pixels").first).to_be_visible()
        expect(page.locator("#encode-timing")).to_contain_text("stopped with an error")
    finally:
        page.close()
    page = open_page(browser, f"{app_urls['encode']}?tab=encode&model=llm-embedder&mode=query", "encode-timing")
    try:
        task = page.locator("#encode-task input")
        expect(task).to_be_enabled(timeout=RUN_MS)
        task.click()
        page.get_by_role("option", name="chat: chat memory").click()
        expect(page.locator("#encode-instruction textarea")).to_have_value(task_instruction("chat", "query"))
        page.locator("#encode-run").click()
        expect(page.locator("#encode-timing")).to_contain_text(f"«{task_instruction('chat', 'query')}»")
    finally:
        page.close()

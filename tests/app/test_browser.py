"""The app in a real browser (Debian's chromium driven by playwright), on the real offline default models.

Visits every tab, runs its prefilled example, checks that the plotly chart and the table rendered, switches a model,
triggers an error and reads its message, and saves a screenshot per tab (and checks it is a real image). The
screenshots go to a temporary folder, or to $FLAGDEMO_SCREENSHOTS: `make screenshots` points it at docs/screenshots/
to refresh the README's pictures, so an ordinary test run leaves the working tree clean.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
]
RUN_TIMEOUT_MS = 180_000  # the first SmolLM2 load converts its GGUF file (about 20 s on 2 cores)

# tab label, its id prefix, a text its table must show once the example ran
TABS = [
    ("Encode", "encode", "The cat sat quietly on the warm windowsill."),
    ("Similarity", "similarity", "Photosynthesis"),
    ("Rerankers", "rerank", "Paris is the capital and largest city of France."),
    ("Layer sweep", "sweep", "Paris is the capital"),
    ("Projection", "project", "Q1: Which pets are playful?"),
    ("Compare", "compare", "nDCG@10"),
    ("Models", "models", "all-MiniLM-L6-v2"),
]
TABLE_OF = {"sweep": "sweep-ranking", "compare": "compare-summary", "models": "models-catalog"}
PLOT_OF = {"sweep": "sweep-plot", "compare": "compare-plot"}


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("FLAGDEMO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screenshot(page, path: Path, *, full_page: bool) -> None:
    """A PNG of the page, checked to be one (signature and a plausible size)."""
    page.screenshot(path=str(path), full_page=full_page)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, path


@pytest.fixture(scope="module")
def default_app_url():
    """The app as `make run` builds it: MiniLM, SmolLM2, UMAP warmed up in the background."""
    from flagdemo.projection import start_warm_up
    from flagdemo.ui import build_demo

    start_warm_up()
    demo = build_demo()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(default_app_url):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(RUN_TIMEOUT_MS)
        page.goto(default_app_url)
        yield page
        context.close()
        browser.close()


def _open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()


@pytest.mark.parametrize(("label", "prefix", "expected"), TABS, ids=[t[1] for t in TABS])
def test_every_tab_runs_its_example(page, screenshots, label, prefix, expected):
    from playwright.sync_api import expect

    _open_tab(page, label)
    button = page.locator(f"#{prefix}-run" if prefix != "models" else "#models-refresh")
    button.click()
    table = page.locator(f"#{TABLE_OF.get(prefix, prefix + '-table')}")
    expect(table).to_contain_text(expected, timeout=RUN_TIMEOUT_MS)
    if prefix != "models":
        plot = page.locator(f"#{PLOT_OF.get(prefix, prefix + '-plot')} .js-plotly-plot")
        expect(plot).to_be_visible(timeout=RUN_TIMEOUT_MS)
        expect(plot.locator(".main-svg").first).to_be_attached()
    save_screenshot(page, screenshots / f"{prefix}.png", full_page=True)


def test_switching_the_sweep_to_an_embedder(page):
    from playwright.sync_api import expect

    _open_tab(page, "Layer sweep")
    model = page.locator("#sweep-model input")
    model.fill("all-MiniLM-L6-v2")
    model.press("Enter")
    page.locator("#sweep-run").click()
    expect(page.locator("#sweep-note")).to_contain_text("cosine of query and passage embeddings", timeout=60_000)
    expect(page.locator("#sweep-ranking")).to_contain_text("L6")


def test_an_unknown_model_shows_its_error_message(page, screenshots):
    from playwright.sync_api import expect

    _open_tab(page, "Encode")
    model = page.locator("#encode-model input")
    model.fill("bge-smal-en")
    model.press("Enter")
    page.locator("#encode-run").click()
    expect(page.get_by_text("Did you mean 'bge-small-en'").first).to_be_visible(timeout=60_000)
    save_screenshot(page, screenshots / "error.png", full_page=False)

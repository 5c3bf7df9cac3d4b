"""The app in a real browser (Debian's chromium driven by playwright, 1400×900), on the real offline default models.

Reads what a person reads: every tab opens with its example computed (no button pressed), and one number per tab
is checked against the same call through the engine; no chart shows the failsafe's "could not draw"; result tables
do not scroll sideways for ordinary passages; a CSV with a wrong column names the columns it has; an error clears
the tab and says so, and a rerun brings results back; a link opens a tab with its inputs. Screenshots go to a
temporary folder, or to $FLAGDEMO_SCREENSHOTS (`make screenshots` points it at docs/screenshots/).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from flagdemo.analysis import scoring
from flagdemo.engine import NO_MODEL, Engine, clean_lines
from flagdemo.models import catalog
from flagdemo.ui.common import FAILED_NOTE
from flagdemo.ui.inputs import parse_labelled_lines
from flagdemo.ui.views import text
from tools.rehearse_app import scrolls_sideways

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
]
LOAD_TIMEOUT_MS = 420_000  # the first page load computes every tab's example (SmolLM2, UMAP, the labelled set)
RUN_TIMEOUT_MS = 120_000
NUMBER = re.compile(r"−?-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
ORDINARY_PASSAGES = [
    "Paris is the capital and largest city of France, on the Seine.",
    "France is a country in Western Europe with many famous cities and a long coastline.",
    "The Eiffel Tower was built in Paris for the 1889 World's Fair and is now its best-known landmark.",
    "Berlin is the capital of Germany.",
    "Lyon is known for its cuisine and its silk industry.",
    "Marseille is a port city in the south of France, founded by Greek sailors about 600 BC.",
    "The French government sits in Paris, where the president lives in the Élysée Palace.",
    "Madrid is the capital of Spain.",
]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("FLAGDEMO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screenshot(page, path: Path, *, full_page: bool) -> None:
    """A PNG of the page, checked to be one (signature and a plausible size), taken once the web fonts have loaded
    (before that, chromium draws some glyphs of a bold heading in the fallback font)."""
    page.evaluate("document.fonts.ready.then(() => document.fonts.status)")
    page.screenshot(path=str(path), full_page=full_page)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, path


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def default_app_url(engine):
    """The app as `make run` builds it: MiniLM, SmolLM2, UMAP and ranx warmed up in the background."""
    from flagdemo.analysis.warm_up import start_warm_up
    from flagdemo.ui import build_demo
    from flagdemo.ui.blocks import theme

    start_warm_up()
    demo = build_demo(engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, theme=theme())
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(RUN_TIMEOUT_MS)
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def page(browser, default_app_url):
    """One visit: the page as it opens, every example computed by the page load alone."""
    page = new_page(browser, default_app_url)
    page.locator("#encode-table [role=gridcell]").filter(has_text=NUMBER).first.wait_for(timeout=LOAD_TIMEOUT_MS)
    yield page
    page.close()


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()


def rows(page, elem_id: str, *, timeout: int = RUN_TIMEOUT_MS) -> list[list[str]]:
    """The body rows of a table as a person sees them (cell texts), once it shows at least one."""
    page.locator(f"#{elem_id}").scroll_into_view_if_needed()
    page.locator(f"#{elem_id} [role=gridcell]").filter(has_text=re.compile(r"\S")).first.wait_for(timeout=timeout)
    columns = page.locator(f"#{elem_id} [role=columnheader]").count()
    cells = page.locator(f"#{elem_id} [role=gridcell]").all_inner_texts()
    table = [[cell.strip() for cell in cells[i : i + columns]] for i in range(0, len(cells), columns)]
    return [row for row in table if any(row)]  # the grid keeps one empty row for measuring widths


def numbers(cells: list[str]) -> list[float]:
    return [float(m.replace("−", "-")) for cell in cells for m in NUMBER.findall(cell)]


def shows(cells: list[str], expected: float, tolerance: float = 6e-4) -> bool:
    """Whether the row shows ``expected`` as displayed (3–4 significant digits, or 4 decimals)."""
    return any(abs(value - expected) <= max(tolerance, abs(expected) * 1e-3) for value in numbers(cells))


def test_every_tab_opens_with_its_example_matching_the_engine(page, engine, screenshots):
    minilm, smollm2 = catalog.MINILM_KEY, catalog.SMOLLM2_KEY
    checks = {}
    lines = clean_lines(text.ENCODE_TEXTS)
    checks["Encode"] = ("encode-table", 0, engine.encode(lines, model=minilm).embeddings[0, 0])
    queries, passages = clean_lines(text.SIMILARITY_QUERIES), clean_lines(text.SIMILARITY_PASSAGES)
    checks["Similarity"] = ("similarity-table", 0, engine.similarity(queries, passages, model=minilm).dense[0].max())
    rerank = clean_lines(text.RERANK_PASSAGES)
    bi = engine.rerank_methods(
        text.RERANK_QUERY, rerank, bi_encoder=minilm, cross_encoder=NO_MODEL, llm_reranker=NO_MODEL,
        layerwise_reranker=NO_MODEL, cutoff_layer=None,
    )[0]  # fmt: skip
    checks["Rerankers"] = ("rerank-table", 0, bi.scores[0])
    grades = [float(g) for g in text.RERANK_RELEVANCE.split(",")]
    sweep = engine.layer_sweep(smollm2, text.RERANK_QUERY, rerank, grades=grades, k=5)
    checks["Layer sweep"] = ("sweep-metrics", 0, sweep.metrics["nDCG@5"][0])
    _, corpus = parse_labelled_lines(text.PROJECTION_CORPUS)
    map_queries = clean_lines(text.PROJECTION_QUERIES)
    cosines = scoring.cosine(
        engine.embeddings(map_queries, model=minilm, mode="query"), engine.embeddings(corpus, model=minilm)
    )
    checks["Projection"] = ("project-table", 0, cosines[0].max())
    compared = engine.compare(minilm, minilm, layer_a=-1, layer_b=3, k=10).comparison.summary
    checks["Compare"] = ("compare-summary", 0, float(compared.select_dtypes("number").iloc[0, 0]))
    for label, (table, row, expected) in checks.items():
        open_tab(page, label)
        shown = rows(page, table, timeout=LOAD_TIMEOUT_MS)[row]  # a tab's contents appear once it is opened
        assert shows(shown, float(expected)), (label, shown, expected)
        save_screenshot(page, screenshots / f"{table.split('-')[0]}.png", full_page=True)
    open_tab(page, "Models")
    page.locator("#models-refresh").click()  # the tab opened before the other tabs had loaded their models
    cache = {r[0]: r for r in rows(page, "models-cache")}
    held = {row["model"]: row["MB"] for row in engine.cache_rows()}
    assert any(name in cache and shows(cache[name], mb, 0.5) for name, mb in held.items()), (cache, held)
    assert "Could not draw this chart" not in page.locator("body").inner_text()  # no failsafe figure anywhere
    save_screenshot(page, screenshots / "models.png", full_page=True)


def test_bold_text_is_drawn_from_a_complete_bold_font(page):
    """Gradio's default theme asks for a semi-bold file of a few dozen glyphs, so offline a bold heading mixed two
    weights; the app's theme uses the full bold file, and the page's bold heading is drawn with it."""
    faces = page.evaluate(
        """async () => { await document.fonts.ready;
            return [...document.fonts].filter(f => f.family.includes('Source Sans Pro'))
                .map(f => `${f.weight}:${f.status}`); }"""
    )
    assert "700:loaded" in faces and not any(face.startswith("600") for face in faces), faces


def test_ordinary_passages_fit_without_sideways_scrolling(page):
    open_tab(page, "Rerankers")
    page.locator("#rerank-passages textarea").fill("\n".join(ORDINARY_PASSAGES))
    page.locator("#rerank-run").click()
    page.locator("#rerank-table [role=gridcell]").filter(has_text="Madrid is the capital of Spain.").wait_for()
    for table in ("rerank-table", "rerank-tau", "rerank-timing"):
        assert scrolls_sideways(page, table) == 0, f"{table} scrolls sideways"
    open_tab(page, "Models")
    page.locator("#models-refresh").click()
    page.locator("#models-catalog [role=gridcell]").filter(has_text="bge-m3").first.wait_for()
    for table in ("models-catalog", "models-cache", "models-memory"):
        assert scrolls_sideways(page, table) == 0, f"{table} scrolls sideways"
    page.locator("#models-memory [role=gridcell]").filter(has_text="resident in all").first.wait_for()
    assert scrolls_down(page, "models-memory") == 0, "the memory account hides its total below a scroll"


def scrolls_down(page, elem_id: str) -> int:
    """How many elements of a table hide rows below a vertical scroll bar."""
    return page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} *`)].filter(e => e.scrollHeight > e.clientHeight + 1
            && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY)).length""",
        elem_id,
    )


def test_an_error_clears_the_tab_and_a_rerun_brings_results_back(page, screenshots):
    from playwright.sync_api import expect

    open_tab(page, "Similarity")
    top_k = page.locator("#similarity-top-k input")
    top_k.fill("0")
    page.locator("#similarity-run").click()
    expect(page.get_by_text("Top-k must be between 1 and 512, not 0.").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#similarity-note")).to_contain_text(FAILED_NOTE.split("**")[1])
    expect(page.locator("#similarity-table [role=gridcell]").filter(has_text=NUMBER)).to_have_count(0)
    save_screenshot(page, screenshots / "error.png", full_page=False)
    top_k.fill("2")
    page.locator("#similarity-run").click()
    expect(page.locator("#similarity-note")).not_to_contain_text("stopped with an error")
    assert len(rows(page, "similarity-table")) == 2 * len(clean_lines(text.SIMILARITY_QUERIES))


def test_a_csv_with_a_wrong_column_names_its_columns(page, tmp_path):
    from playwright.sync_api import expect

    upload = tmp_path / "sentences.csv"
    upload.write_text("sentence,score\nA first sentence.,1\nA second sentence.,2\n", encoding="utf-8")
    open_tab(page, "Encode")
    page.locator("#encode-upload input[type=file]").set_input_files(str(upload))
    expect(page.get_by_text("no column 'text': its columns are 'sentence', 'score'").first).to_be_visible(
        timeout=RUN_TIMEOUT_MS
    )
    column = page.locator("#encode-column textarea, #encode-column input").first
    column.fill("sentence")
    column.press("Enter")  # the kept upload is read again with the corrected column
    expect(page.locator("#encode-texts textarea")).to_have_value("A first sentence.\nA second sentence.")
    page.locator("#encode-run").click()
    page.locator("#encode-table [role=gridcell]").filter(has_text="A second sentence.").wait_for()
    assert [r[1] for r in rows(page, "encode-table")] == ["A first sentence.", "A second sentence."]


def test_a_link_opens_a_tab_with_its_inputs(browser, default_app_url, engine):
    from playwright.sync_api import expect

    query = "Why do prices rise?"
    page = new_page(browser, f"{default_app_url}?{urlencode({'tab': 'similarity', 'queries': query, 'top_k': 2})}")
    try:
        expect(page.get_by_role("tab", name="Similarity", exact=True)).to_have_attribute("aria-selected", "true")
        expect(page.locator("#similarity-queries textarea")).to_have_value(query)
        page.locator("#similarity-table [role=gridcell]").filter(has_text=query).first.wait_for(
            timeout=LOAD_TIMEOUT_MS
        )
        shown = rows(page, "similarity-table")
        assert len(shown) == 2
        passages = clean_lines(text.SIMILARITY_PASSAGES)
        best = engine.similarity([query], passages, model=catalog.MINILM_KEY).dense[0].max()
        assert shows(shown[0], best), (shown, best)
    finally:
        page.close()


def test_the_layer_sweep_shows_its_rank_heatmap_and_long_csv_and_cocktail_waits(page, screenshots):
    from playwright.sync_api import expect

    open_tab(page, "Layer sweep")
    expect(page.locator("#sweep-rank-plot .js-plotly-plot")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.locator("#sweep-file")).to_contain_text("layer-scores")  # shown as "layer-scores .csv"
    headers = page.locator("#sweep-ranking [role=columnheader]").all_inner_texts()
    assert len(headers) == 7 and "settled at layer" in " ".join(headers), headers  # not one column per layer
    open_tab(page, "Cocktail")
    expect(page.locator("#cocktail-note")).to_contain_text("Nothing has run yet")
    save_screenshot(page, screenshots / "cocktail.png", full_page=True)


def test_compare_six_systems_with_a_pipeline_and_a_fusion(page, engine, screenshots):
    """The N-system view opens with its example computed, and a person who adds a reranking pipeline sees six
    systems whose means, pipeline counts and side-by-side columns are the engine's, in tables that fit 1400 px."""
    from playwright.sync_api import expect

    from flagdemo.ui.tabs.compare import example_systems

    open_tab(page, "Compare")
    example = example_systems(engine)
    opened = engine.benchmark(example.splitlines(), baseline="bm25")
    first = rows(page, "systems-means", timeout=LOAD_TIMEOUT_MS)[0]
    best = opened.means["nDCG@10"].idxmax()
    assert first[0] == best and shows(first, opened.means.loc[best, "nDCG@10"]), (first, best)
    systems = f"{example}\nreranked=embedder>>{catalog.SMOLLM2_KEY}@3"
    page.locator("#systems-box textarea").fill(systems)
    page.locator("#systems-max input").fill("8")
    page.locator("#systems-run").click()
    page.locator("#systems-pipelines [role=gridcell]").filter(has_text="reranked").first.wait_for()
    expect(page.locator("#systems-note")).to_contain_text("8 labelled queries")
    expected = engine.benchmark(systems.splitlines(), baseline="bm25", max_queries=8)
    shown = {row[0]: row for row in rows(page, "systems-means")}
    assert set(shown) == set(expected.systems) and len(shown) == 6
    for system, row in shown.items():
        assert shows(row, expected.means.loc[system, "nDCG@10"]), (system, row)
    pipeline = rows(page, "systems-pipelines")[0]
    summary = expected.pipelines["reranked"]["summary"]
    assert pipeline[:3] == ["reranked", expected.descriptions["embedder"], "3"]
    assert [int(c) for c in pipeline[3:7]] == [summary["gain"], summary["loss"], summary["same"], summary["ceiling"]]
    side_header = page.locator("#systems-side [role=columnheader]").all_inner_texts()
    assert [h.strip() for h in side_header] == ["rank", "bm25", "embedder", "layer3", "rrf", "combmnz", "reranked"]
    expect(page.locator("#systems-note")).to_contain_text("On nDCG@10, ")
    for table in ("systems-means", "systems-pairs", "systems-costs", "systems-pipelines", "systems-groups",
                  "systems-disagree", "systems-side", "systems-passages"):  # fmt: skip
        assert scrolls_sideways(page, table) == 0, f"{table} scrolls sideways"
    assert "Could not draw this chart" not in page.locator("#systems-plot").inner_text()
    save_screenshot(page, screenshots / "compare-systems.png", full_page=True)

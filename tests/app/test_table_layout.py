"""The table views and the similarity heatmap in a real browser at 1400 px (Debian's chromium via playwright).

No model is needed: the views are built from ordinary inputs (eight one- or two-line passages, three queries, 30
layers, 48 compared queries, see test_tables.py), laid out full width or two to a row as TABLE_WIDTH says, with the
gr.DataFrame settings that dataframe_settings recommends. The page must not scroll sideways, no header may break
inside a word, no cell text may be hidden by its column, long cells are cut with their full text one click away,
and 30 heatmap labels must not overlap. A 13-column table without those settings is checked too, to show that the
checks do catch a table that does not fit.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
from test_tables import METHODS, PASSAGES, _raw_and_sigmoid, ordinary_views

from flagdemo.ui.views import figures, tables

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]

# Per table: does its body scroll sideways, and which header words are wider than their column.
MEASURE_TABLES = """() => [...document.querySelectorAll('[id^=layout-]')]
  .filter(el => el.querySelector('.virtual-table-viewport')).map(el => {
    const viewport = el.querySelector('.virtual-table-viewport');
    const canvas = document.createElement('canvas').getContext('2d');
    const broken = [];
    for (const th of el.querySelectorAll('thead th')) {
        const wrap = th.querySelector('.cell-wrap') || th;
        const textEl = wrap.querySelector('span, div') || wrap;
        const style = getComputedStyle(textEl);
        canvas.font = style.font;
        const pad = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
        const room = wrap.clientWidth - pad;
        for (const word of th.innerText.trim().split(/\\s+|(?<=-)/)) {
            if (word && canvas.measureText(word).width > room + 1) broken.push(word);
        }
    }
    const bodyCells = [...el.querySelectorAll('.virtual-row .body-cell')];
    const longest = Math.max(...bodyCells.map(c => c.innerText.trim().length));
    // a cell whose text is wider than the cell is cut off unseen (gradio hides overflow in fixed-width columns)
    const clipped = bodyCells.filter(c => {
        const span = c.querySelector('span') || c;
        return span.scrollWidth > c.clientWidth + 1;
    }).map(c => c.innerText.trim().slice(0, 30));
    return {id: el.id, scroll: viewport.scrollWidth - viewport.clientWidth, broken, clipped, longest};
})"""

# Tick labels of the heatmap: bounding boxes, to find overlaps and labels cut by the plot's edge.
MEASURE_TICKS = """(axis) => {
    const plot = document.querySelector('#layout-heatmap .js-plotly-plot');
    const frame = plot.getBoundingClientRect();
    return [...plot.querySelectorAll('.' + axis + 'tick text')].map(t => {
        const r = t.getBoundingClientRect();
        const size = parseFloat(getComputedStyle(t).fontSize);
        return [r.left - frame.left, r.top - frame.top, r.right - frame.left, r.bottom - frame.top, frame.width, size];
    });
}"""


@pytest.fixture(scope="module")
def layout_page():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    import gradio as gr
    from playwright.sync_api import sync_playwright

    views = ordinary_views()
    raw, sigmoid = _raw_and_sigmoid(METHODS)
    too_wide = tables.for_display(tables.rerank_table(PASSAGES, raw, sigmoid))
    long_texts = [f"Passage {i}: " + "a sentence of ordinary length about one more topic " * 2 for i in range(30)]
    heatmap = figures.similarity_heatmap(np.random.default_rng(0).random((30, 30)), long_texts, long_texts)
    with gr.Blocks() as demo:
        half = [name for name, (_, width) in views.items() if width == "half"]
        for name, (table, width) in views.items():
            if width == "full":
                gr.DataFrame(table, elem_id=f"layout-{name}", **tables.dataframe_settings(table, width=width))
        for pair in (half[i : i + 2] for i in range(0, len(half), 2)):
            with gr.Row():
                for name in pair:
                    table = views[name][0]
                    gr.DataFrame(table, elem_id=f"layout-{name}", **tables.dataframe_settings(table, width="half"))
        gr.DataFrame(too_wide, elem_id="layout-control", wrap=True)
        gr.Plot(heatmap, elem_id="layout-heatmap")
        gr.Plot(figures.similarity_heatmap(np.zeros((2, 3)), ["a"], ["b"]), elem_id="layout-broken")
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("#layout-heatmap .js-plotly-plot .xtick text")
            page.wait_for_selector("#layout-control .virtual-row")
            page.wait_for_selector("#layout-broken .js-plotly-plot")
            yield page, views
            browser.close()
    finally:
        demo.close()


def test_no_table_scrolls_sideways_or_breaks_a_header_word(layout_page):
    page, views = layout_page
    measured = {m["id"].removeprefix("layout-"): m for m in page.evaluate(MEASURE_TABLES)}
    assert set(views) <= set(measured)
    for name in views:
        assert measured[name]["scroll"] <= 0, (name, measured[name])
        assert measured[name]["broken"] == [], (name, measured[name])
        assert measured[name]["clipped"] == [], (name, measured[name])
        assert measured[name]["longest"] <= tables.CELL_CHARS + 3, (name, measured[name])  # cut cells end in "..."
    # the checks catch a table that does not fit: 13 columns without the recommended settings
    control = measured["control"]
    assert control["scroll"] > 0 or control["broken"] or control["clipped"], control


def test_a_cut_cell_shows_its_full_text_on_a_click(layout_page):
    page, _ = layout_page
    long_passage = PASSAGES[1]
    assert len(long_passage) > tables.CELL_CHARS
    cell = page.locator("#layout-encode-table .virtual-row .body-cell").filter(has_text=long_passage[:40]).first
    assert long_passage not in cell.inner_text()
    cell.click()
    assert long_passage in " ".join(cell.inner_text().split())


def test_thirty_heatmap_labels_neither_overlap_nor_leave_the_plot(layout_page):
    page, _ = layout_page
    rows = sorted(page.evaluate(MEASURE_TICKS, "y"), key=lambda box: box[1])
    columns = sorted(page.evaluate(MEASURE_TICKS, "x"), key=lambda box: box[2])
    assert len(rows) == len(columns) == 30
    for upper, lower in itertools.pairwise(rows):
        assert lower[1] >= upper[3] - 1, ("row labels overlap", upper, lower)
    # x labels are slanted 60°: two neighbours stay apart when their spacing across the slant exceeds the font size
    for left, right in itertools.pairwise(columns):
        assert (right[2] - left[2]) * math.sin(math.radians(60)) >= right[5], ("column labels overlap", left, right)
    for box in rows + columns:
        assert box[0] >= 0 and box[2] <= box[4], ("label cut at the plot's edge", box)


def test_the_failsafe_figure_is_recognisable_in_the_page(layout_page):
    page, _ = layout_page
    meta = "(id) => document.querySelector('#' + id + ' .js-plotly-plot').layout.meta ?? null"
    assert page.evaluate(meta, "layout-broken") == figures.FAILSAFE_META
    assert page.evaluate(meta, "layout-heatmap") is None

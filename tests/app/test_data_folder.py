"""Projection and Compare opening the server's data folder (FLAGDEMO_DATA_DIR, private mode only), by listed name.

The folder is made here: a stored set embedded (``flagdemo embed``) from a JSON Lines file inside it, a small BEIR
folder and a stored set of it, a set embedded from a file outside the folder, a damaged set, and ways out (a link
to a folder outside, ``..``, absolute paths). Handlers are called in-process; the same endpoints through
gradio_client against a launched app.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from flagdemo.cli import main
from flagdemo.corpus import beir
from flagdemo.ui import data_folder
from tests.corpus.test_eval import ir_measures_of

TOPICS = ["bread", "comets", "budgets", "tomatoes"]
ESCAPES = ["../outside", "escape", "/etc", "docs/../docs", "", "nope"]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _embed(source: Path, model: str, out: Path) -> None:
    assert main(["embed", str(source), "--model", model, "--out", str(out), "--shard-rows", "16"]) == 0


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, tiny_dir) -> Path:
    model = str(tiny_dir / "bert-embedder")
    root = tmp_path_factory.mktemp("data")
    docs = [{"id": f"d{i:02d}", "text": f"Passage {i} is about {TOPICS[i % 4]}.", "topic": TOPICS[i % 4]}
            for i in range(40)]  # fmt: skip
    _jsonl(root / "docs.jsonl", docs)
    _embed(root / "docs.jsonl", model, root / "docs")
    beir_dir = root / "beir-mini"
    (beir_dir / "qrels").mkdir(parents=True)
    _jsonl(beir_dir / "corpus.jsonl", [{"_id": f"p{i}", "title": f"Note {i}", "text": f"All about {TOPICS[i % 4]}, "
                                        f"part {i}.", "topic": TOPICS[i % 4]} for i in range(36)])  # fmt: skip
    _jsonl(beir_dir / "queries.jsonl", [{"_id": f"q{t}", "text": f"Tell me about {topic}"} for t, topic in
                                        enumerate(TOPICS)])  # fmt: skip
    qrels = ["query-id\tcorpus-id\tscore"] + [f"q{t}\tp{i}\t1" for t in range(4) for i in range(t, 36, 4)]
    (beir_dir / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    (beir_dir / "qrels" / "dev.tsv").write_text("\n".join(qrels[:10]) + "\n")
    _embed(beir_dir, model, root / "beir-mini-vectors")
    outside = tmp_path_factory.mktemp("outside")
    _jsonl(outside / "corpus.jsonl", [{"_id": "s", "text": "a secret outside the data folder"}] * 1)
    _jsonl(outside / "elsewhere.jsonl", docs[:30])
    _embed(outside / "elsewhere.jsonl", model, root / "from-elsewhere")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    shutil.copytree(root / "docs", root / "damaged")
    (root / "damaged" / "part-00001.parquet").write_bytes(b"not parquet")
    return root


@pytest.fixture
def private(data_root, monkeypatch) -> Path:
    monkeypatch.setenv("FLAGDEMO_DATA_DIR", str(data_root))
    monkeypatch.delenv("FLAGDEMO_PUBLIC", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    return data_root


def _points(figure) -> int:
    return sum(len(trace.x) for trace in figure.data)


def test_the_list_names_the_entries_inside_and_nothing_else(private, tiny_dir):
    choices, empty = data_folder.entry_choices()
    assert [name for _, name in choices] == ["beir-mini", "beir-mini-vectors", "damaged", "docs", "from-elsewhere"]
    assert empty == "" and dict((name, label) for label, name in choices)["docs"].startswith("docs (40 × 16, ")
    assert data_folder.entry_choices("beir")[0] == [("beir-mini (BEIR folder)", "beir-mini")]
    assert str(private) not in repr(choices)
    assert data_folder.refreshed("beir")().choices == [("beir-mini (BEIR folder)", "beir-mini")]
    assert data_folder.split_choices("beir-mini").choices == [("dev", "dev"), ("test", "test")]


def test_a_stored_set_maps_with_hover_texts_and_colours(private, tiny_engine):
    figure, note = data_folder.project_stored(tiny_engine, "docs", None, "topic", 200_000, 25, 1)
    assert {trace.type for trace in figure.data} == {"scattergl"}
    assert sorted(trace.name for trace in figure.data) == sorted(TOPICS) and _points(figure) == 40
    bread = next(trace for trace in figure.data if trace.name == "bread")
    assert "d00: Passage 0 is about bread." in bread.text and len(bread.text) == 10
    assert (
        "UMAP was fitted on a random sample of 25 of 40 points; the other 15 were placed with its transform." in note
    )
    figure, note = data_folder.project_stored(tiny_engine, "docs", None, data_folder.ONE_COLOUR, 30, 5000, 1)
    assert _points(figure) == 30 and len(figure.data) == 1
    assert "Showing the first 30 of 40 rows." in note and "UMAP was fitted on all 30 points." in note
    assert data_folder.colour_choices("docs").choices == [(c, c) for c in (data_folder.ONE_COLOUR, "topic")]


def test_a_beir_folder_is_embedded_with_the_chosen_model(private, tiny_engine, tiny_dir):
    model = str(tiny_dir / "bert-embedder")
    figure, note = data_folder.project_stored(tiny_engine, "beir-mini", model, "topic", 1000, 20, 1)
    assert _points(figure) == 36 and "p0: Note 0 All about bread, part 0." in figure.data[0].text
    assert "fitted on a random sample of 20 of 36" in note
    with pytest.raises(gr.Error, match="'title' has 36 different values; a map colours by at most 20"):
        data_folder.project_stored(tiny_engine, "beir-mini", model, "title", 1000, 20, 1)


def test_a_set_whose_texts_lie_outside_shows_ids_and_says_why(private, tiny_engine):
    figure, note = data_folder.project_stored(tiny_engine, "from-elsewhere", None, data_folder.ONE_COLOUR, 100, 20, 1)
    assert _points(figure) == 30 and figure.data[0].text[0] == "d00"
    assert "Hover shows ids only: the file this set was embedded from is not in the data folder." in note
    with pytest.raises(gr.Error, match="cannot colour by 'topic': the file this set was embedded from is not in"):
        data_folder.project_stored(tiny_engine, "from-elsewhere", None, "topic", 100, 20, 1)


@pytest.mark.parametrize("name", ESCAPES)
def test_names_that_are_not_listed_never_open(private, tiny_engine, name):
    with pytest.raises(gr.Error) as refused:
        data_folder.project_stored(tiny_engine, name, None, data_folder.ONE_COLOUR, 100, 20, 1)
    assert "choose one from the list" in refused.value.message or "from the list first" in refused.value.message
    with pytest.raises(gr.Error, match="from the list"):
        data_folder.compare_beir(tiny_engine, name, "test", None, None)
    with pytest.raises(gr.Error, match="choose one from the list"):
        data_folder.project_stored(tiny_engine, str(private / "docs"), None, data_folder.ONE_COLOUR, 100, 20, 1)


def test_a_damaged_set_is_refused_without_server_paths(private, tiny_engine):
    with pytest.raises(gr.Error) as refused:
        data_folder.project_stored(tiny_engine, "damaged", None, data_folder.ONE_COLOUR, 1000, 20, 1)
    assert "The shard part-00001.parquet in damaged is damaged" in refused.value.message
    assert str(private) not in refused.value.message


def test_public_mode_and_no_folder_refuse(private, tiny_engine, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    assert data_folder.entry_choices() == ([], "Opening stored sets is switched off on this public app.")
    for call in (lambda: data_folder.project_stored(tiny_engine, "docs"),
                 lambda: data_folder.compare_beir(tiny_engine, "beir-mini"),
                 lambda: data_folder.project_stored(tiny_engine),  # nothing chosen: the reason there is no list
                 lambda: data_folder.compare_beir(tiny_engine, None)):  # fmt: skip
        with pytest.raises(gr.Error, match="switched off on this public app"):
            call()
    monkeypatch.delenv("FLAGDEMO_PUBLIC")
    monkeypatch.delenv("FLAGDEMO_DATA_DIR")
    with pytest.raises(gr.Error) as refused:
        data_folder.project_stored(tiny_engine, "docs")
    assert (
        refused.value.message
        == "No data folder is configured: set the server's setting for it to a folder of stored sets."
    )


def test_compare_on_a_beir_folder_gives_ir_measures_numbers(private, tiny_engine, tiny_dir, tmp_path):
    model, other = str(tiny_dir / "bert-embedder"), str(tiny_dir / "xlmr-m3")
    table, note = data_folder.compare_beir(tiny_engine, "beir-mini", "test", model, other)
    assert table["embedder"].tolist() == [model, other]
    assert table["passage vectors"].tolist() == ["stored set beir-mini-vectors", "embedded now"]
    run_file = tmp_path / "run.trec"
    beir.evaluate(private / "beir-mini", model=model, run_out=run_file, say=lambda _: None)
    expected = ir_measures_of(run_file, private / "beir-mini" / "qrels" / "test.tsv")
    for name, value in expected.items():
        assert table[name].iloc[0] == pytest.approx(value, rel=1e-3), name
    assert note.startswith("4 judged queries of the test split of beir-mini")
    table, note = data_folder.compare_beir(tiny_engine, "beir-mini", "dev", model, model)
    assert len(table) == 1 and "evaluated once" in note and note.startswith("1 judged query of the dev split")
    with pytest.raises(gr.Error, match="docs is a stored set; choose a BEIR folder"):
        data_folder.compare_beir(tiny_engine, "docs", "test", model, model)
    with pytest.raises(gr.Error, match="The split must be one of dev, test"):
        data_folder.compare_beir(tiny_engine, "beir-mini", "../train", model, model)


@pytest.fixture(scope="module")
def data_app(data_root, tiny_engine):
    """The whole app launched with the data folder set before it is built (the lists are read then)."""
    from flagdemo.ui import build_demo

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLAGDEMO_DATA_DIR", str(data_root))
        patch.delenv("FLAGDEMO_PUBLIC", raising=False)
        patch.delenv("SPACE_ID", raising=False)
        demo = build_demo(tiny_engine)
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        yield url
        demo.close()


@pytest.mark.e2e
def test_the_endpoints_through_gradio_client(data_app, data_root, tiny_dir, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_DATA_DIR", str(data_root))
    client = Client(data_app, verbose=False)
    plot, note = client.predict(entry="docs", colour_by="topic", sample=20, api_name="/project_stored")
    traces = json.loads(plot["plot"])["data"]
    assert {trace["type"] for trace in traces} == {"scattergl"} and len(traces) == 4
    assert "fitted on a random sample of 20 of 40 points" in note
    table, note = client.predict(folder="beir-mini", model_a=str(tiny_dir / "bert-embedder"),
                                 model_b=str(tiny_dir / "bert-embedder"), api_name="/compare_beir")  # fmt: skip
    assert table["headers"][:3] == ["embedder", "passage vectors", "nDCG@10"] and len(table["data"]) == 1
    for name in ("../outside", "escape", str(data_root / "docs")):
        with pytest.raises(AppError) as refused:
            client.predict(entry=name, api_name="/project_stored")
        assert "secret" not in str(refused.value)
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.raises(AppError, match="switched off on this public app"):
        client.predict(entry="docs", api_name="/project_stored")


@pytest.fixture(scope="module")
def projection_url(data_root, tiny_engine):
    """The Projection tab alone (its page load computes only its own example), with the data folder set."""
    from flagdemo.ui import build_demo

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLAGDEMO_DATA_DIR", str(data_root))
        patch.delenv("FLAGDEMO_PUBLIC", raising=False)
        patch.delenv("SPACE_ID", raising=False)
        demo = build_demo(tiny_engine, only="project")
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        yield url
        demo.close()


@pytest.mark.e2e
def test_the_map_draws_with_webgl_in_chromium(projection_url, data_root, monkeypatch):
    """A visitor opens the accordion, picks the stored set by its label, and the map arrives as WebGL traces."""
    from playwright.sync_api import expect, sync_playwright

    from tests.app.test_browser import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    monkeypatch.setenv("FLAGDEMO_DATA_DIR", str(data_root))
    webgl = ["--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=webgl)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(projection_url)
        page.get_by_text("Open a stored set or a BEIR folder from the server's data folder").click()
        page.locator("#project-stored-entry input").click()
        page.get_by_role("option", name="docs (40 × 16,", exact=False).click()
        page.locator("#project-stored-colour input").click()
        page.get_by_role("option", name="topic", exact=True).click()
        page.locator("#project-stored-run").click()
        expect(page.locator("#project-stored-note")).to_contain_text(
            "UMAP was fitted on all 40 points.", timeout=120_000
        )
        plot = page.locator("#project-stored-plot .js-plotly-plot")
        plot.wait_for()
        traces = plot.evaluate("gd => gd._fullData.map(t => [t.type, t.name, t.x.length])")
        canvases = page.locator("#project-stored-plot canvas").count()
        browser.close()
    assert sorted(traces) == sorted(["scattergl", topic, 10] for topic in TOPICS)
    assert canvases >= 1  # drawn with WebGL, not as SVG markers

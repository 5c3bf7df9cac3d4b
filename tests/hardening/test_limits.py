"""Request limits from environment variables, blank-line notices, odd characters, and numeric widget checks."""

from __future__ import annotations

import dataclasses

import gradio as gr
import numpy as np
import pytest
from internal_failures import endpoint

from flagdemo import limits
from flagdemo.errors import InvalidInputError, ResourceLimitError


def _message(call) -> str:
    with pytest.raises(gr.Error) as caught:
        call()
    return caught.value.message


@pytest.fixture(scope="module")
def fresh_app(tiny_engine):
    """The app on its own Engine with the tiny models' names: the same weights (model cache), its own wrappers."""
    from flagdemo.ui import build_demo

    engine = dataclasses.replace(tiny_engine)
    return engine, build_demo(engine)


@pytest.fixture
def loads(fresh_app, monkeypatch):
    """``(call, attempts)``: the fresh app's endpoints by api_name, and every model load they attempt.

    The engine starts each test holding no wrapper, so any use of a model goes through load_embedder /
    load_reranker, whatever ran before: a refusal that comes after a load cannot pass by reusing one.
    """
    engine, app = fresh_app
    engine.wrappers.clear()
    attempts = []
    for kind in ("embedder", "reranker"):
        load = getattr(engine.access, f"load_{kind}")  # the one road to a model (flagdemo.engine.access)

        def recorded(name, *args, kind=kind, load=load, **kwargs):
            attempts.append((kind, getattr(name, "name", name)))  # a ModelSpec by the name it resolved
            return load(name, *args, **kwargs)

        monkeypatch.setattr(engine.access, f"load_{kind}", recorded)
    return lambda api_name, **kwargs: endpoint(app, api_name)(**kwargs), attempts


def test_the_load_guard_sees_a_load_and_a_kept_wrapper(loads, tiny_engine):
    """The control for the refusals below: a valid request does load (once; the wrapper is then kept)."""
    call, attempts = loads
    for _ in range(2):
        table, *_ = call("encode", texts="a\nb")
        assert table["text"].tolist() == ["a", "b"]
    assert attempts == [("embedder", tiny_engine.embedder)]


def test_defaults_are_the_documented_ones(monkeypatch):
    for setting in limits.ALL_SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    assert limits.MAX_TEXTS.value() == 512
    assert limits.MAX_CHARS.value() == 8000
    assert limits.MAX_UPLOAD_MB.value() == 10
    assert limits.MAX_UPLOAD_ROWS.value() == 2000
    assert limits.MAX_PASSAGES.value() == 100
    assert limits.MAX_POINTS.value() == 2000


@pytest.mark.parametrize("raw", ["0", "-3", "lots", "1.5"])
def test_a_bad_limit_in_the_environment_is_a_sentence(monkeypatch, raw):
    monkeypatch.setenv("FLAGDEMO_MAX_TEXTS", raw)
    with pytest.raises(InvalidInputError, match="FLAGDEMO_MAX_TEXTS"):
        limits.MAX_TEXTS.value()


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf", "1e999"])
def test_a_non_finite_float_setting_is_a_sentence(monkeypatch, raw):
    monkeypatch.setenv("FLAGDEMO_MAX_UPLOAD_MB", raw)
    with pytest.raises(InvalidInputError, match=f"FLAGDEMO_MAX_UPLOAD_MB must be a number above 0, not '{raw}'"):
        limits.MAX_UPLOAD_MB.value()
    monkeypatch.setenv("FLAGDEMO_EMBED_CACHE_MB", raw)
    with pytest.raises(InvalidInputError, match="FLAGDEMO_EMBED_CACHE_MB must be a number of at least 0"):
        limits.env_number("FLAGDEMO_EMBED_CACHE_MB", 1.0, integer=False, allow_zero=True)


def test_split_lines_counts_the_dropped_blank_lines():
    assert limits.split_lines("a\n\n  \n\t\nb \n") == (["a", "b"], 3)
    assert limits.split_lines(None) == ([], 0)
    assert limits.split_lines([" x", "", "y"]) == (["x", "y"], 1)


def test_too_many_texts_is_refused_before_any_model_loads(loads, monkeypatch):
    call, attempts = loads
    monkeypatch.setenv("FLAGDEMO_MAX_TEXTS", "3")
    message = _message(lambda: call("encode", texts="a\nb\nc\nd"))
    assert message == "There are 4 texts; one request takes at most 3. Send fewer at a time."
    assert "4 queries" in _message(lambda: call("similarity", queries="a\nb\nc\nd", passages="x"))
    assert attempts == []


def test_a_too_long_text_is_refused_before_loading_and_names_the_variable(loads, monkeypatch):
    call, attempts = loads
    monkeypatch.setenv("FLAGDEMO_MAX_CHARS", "50")
    message = _message(lambda: call("encode", texts="short\n" + "x" * 51))
    assert message.startswith("Text 2 has 51 characters; the limit is 50 per text.")
    assert "Instruction 1 has 60" in _message(lambda: call("encode", texts="ok", mode="query", instruction="i" * 60))
    assert "Query 1 has 80" in _message(lambda: call("rerank", query="q" * 80))
    assert attempts == []


def test_rerank_and_sweep_passages_have_their_own_limit(handlers, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_PASSAGES", "2")
    passages = "one\ntwo\nthree"
    assert "at most 2. Send fewer" in _message(lambda: handlers.rerank(passages=passages))
    assert "at most 2. Send fewer" in _message(lambda: handlers.layer_sweep(passages=passages, relevance=""))


def test_projection_points_count_texts_and_queries(handlers, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_POINTS", "4")
    message = _message(lambda: handlers.project(corpus="a\nb\nc", queries="q1\nq2", method="pca"))
    assert message.startswith("There are 5 points (texts and queries); one request takes at most 4")


def test_an_upload_above_the_size_limit_is_refused_unread(handlers, tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_UPLOAD_MB", "0.001")
    upload = tmp_path / "big.txt"
    upload.write_text("a line of text\n" * 200)
    message = _message(lambda: handlers.encode(upload=str(upload)))
    assert message == "The uploaded file has 0.0 MB; the limit is 0.001 MB."


def test_upload_rows_beyond_the_limit_are_refused_not_cut(handlers, tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_UPLOAD_ROWS", "3")
    upload = tmp_path / "rows.csv"
    upload.write_text("text\n" + "".join(f"row {i}\n" for i in range(10)))
    message = _message(lambda: handlers.encode(upload=str(upload)))
    assert message == "There are 10 texts in the upload; one request takes at most 3. Send fewer at a time."
    monkeypatch.setenv("FLAGDEMO_MAX_UPLOAD_ROWS", "20")
    monkeypatch.setenv("FLAGDEMO_MAX_TEXTS", "2")  # the tab's own limit is smaller: it refuses too
    assert _message(lambda: handlers.encode(upload=str(upload))).startswith("There are 10 texts; one request takes")


def test_blank_lines_are_dropped_with_a_notice(handlers):
    table, *_, note, _ = handlers.encode(texts="first\n\n   \nsecond\n\t")
    assert table["text"].tolist() == ["first", "second"]
    assert "Skipped 3 empty lines." in note


ODD_TEXTS = [
    "tab\tinside and a bell \x07 and escape \x1b[31m",
    "zero\u200bwidth\u200cjoiner\u200dand\ufeffBOM",
    "right-to-left \u202eevil\u202c and \u200f mark: مرحبا بالعالم",
    "emoji 🧪🔬👩🏽‍🔬 and flags 🇫🇷",
    "中文句子，日本語の文、한국어 문장",
    "\u200b",  # only a zero-width space: not whitespace to Python, so it is a text of its own
]


def test_odd_characters_encode_and_rerank(handlers, tiny_engine):
    table, *_ = handlers.encode(texts="\n".join(ODD_TEXTS))
    expected = tiny_engine.encode(ODD_TEXTS, model=tiny_engine.embedder)
    assert table["text"].tolist() == ODD_TEXTS
    assert table["tokens"].tolist() == expected.token_counts
    assert np.isfinite(expected.embeddings).all()
    rerank_table, *_ = handlers.rerank(query="🧪 中文?", passages="\n".join(ODD_TEXTS))
    assert len(rerank_table) == len(ODD_TEXTS)


def test_a_max_length_beyond_the_model_is_a_sentence(handlers):
    message = _message(lambda: handlers.encode(texts="word " * 1500, max_length=600))
    assert message == "The maximum length 600 is more than this model can read: choose at most 512 tokens."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": float("nan")}, "The layer must be a finite number, not nan."),
        ({"layer": 2.5}, "The layer must be a whole number, not 2.5."),
        ({"layer": -7}, "The layer must be between -1 and 1000, not -7."),
        ({"layer": None}, "The layer is empty or not a number: type a number."),
        ({"max_length": float("inf")}, "The maximum length must be a finite number, not inf."),
        ({"token_row": "three"}, "The text whose tokens are shown must be a number, not 'three'."),
        ({"token_row": 9}, "The text whose tokens are shown must be between 1 and 4, not 9."),
        ({"texts": 42}, "The texts must be text, one item per line."),
        ({"model": ["a", "list"]}, "The model must be a name from the list, a hub id or a folder."),
    ],
)
def test_malformed_widget_values_are_sentences(handlers, kwargs, message):
    assert _message(lambda: handlers.encode(**kwargs)) == message


def test_projection_hyperparameters_are_checked_before_loading(loads):
    call, attempts = loads
    assert "UMAP n_neighbors must be between 2 and 10000" in _message(lambda: call("project", n_neighbors=1))
    assert "UMAP min_dist must be a number between 0 and 1, not -1" in _message(lambda: call("project", min_dist=-1))
    assert "Relevance labels must be finite numbers" in _message(lambda: call("layer_sweep", relevance="1, nan, 2"))
    assert attempts == []


def test_limits_refuse_with_the_typed_error(monkeypatch):
    monkeypatch.setenv("FLAGDEMO_MAX_PASSAGES", "1")
    with pytest.raises(ResourceLimitError):
        limits.check_texts(["a", "b"], "passage", setting=limits.MAX_PASSAGES)


@pytest.mark.parametrize(
    ("public", "space_id", "expected"),
    [("", "", False), ("", "someone/flagdemo", True), ("0", "someone/flagdemo", False), ("1", "", True)],
)
def test_public_mode_is_on_by_default_on_a_space(monkeypatch, public, space_id, expected):
    monkeypatch.setenv("FLAGDEMO_PUBLIC", public)
    monkeypatch.setenv("SPACE_ID", space_id)
    assert limits.public_mode() is expected

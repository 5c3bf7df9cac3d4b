"""Parsing what people type or upload (flagdemo.ui.inputs): one rule for numbers, uploads that must hold their
column, and the vector maths of flagdemo.analysis.scoring."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from flagdemo.analysis import scoring
from flagdemo.engine import clean_lines
from flagdemo.errors import InvalidInputError
from flagdemo.ui.common import for_visitors
from flagdemo.ui.inputs import (
    choice,
    parse_labelled_lines,
    parse_relevance,
    read_table_upload,
    real_number,
    whole_number,
)


def test_clean_lines_drops_blank_lines_and_spaces():
    assert clean_lines("  a \n\n b\n   ") == ["a", "b"]
    assert clean_lines(None) == []
    assert clean_lines([" x ", ""]) == ["x"]


def test_labelled_lines_accept_tabs_and_bars():
    labels, texts = parse_labelled_lines("pets\tA cat.\nmoney | A bank.\nNo label here.\nx\t\tTwo tabs.")
    assert labels == ["pets", "money", "text", "x"]
    assert texts == ["A cat.", "A bank.", "No label here.", "Two tabs."]


def test_relevance_parsing():
    assert parse_relevance("2, 0 1", 3) == [2.0, 0.0, 1.0]
    assert parse_relevance("  ", 3) is None
    with pytest.raises(InvalidInputError, match="3 passages but 2 labels"):
        parse_relevance("1 2", 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "Top-k must be between 1 and 5, not 0"),
        (1e9, "Top-k must be between 1 and 5, not 1000000000"),
        (-5, "Top-k must be between 1 and 5, not -5"),
        (2.5, "Top-k must be a whole number, not 2.5"),
        ("abc", "Top-k must be a number, not 'abc'"),
        (None, "Top-k is empty or not a number"),
        ("", "Top-k is empty or not a number"),
        (float("inf"), "Top-k must be a finite number"),
    ],
)
def test_numbers_out_of_range_are_refused_never_clamped(value, message):
    with pytest.raises(InvalidInputError, match=message):
        whole_number(value, "Top-k", minimum=1, maximum=5)


def test_numbers_in_range_pass_through():
    assert whole_number("3", "Top-k", minimum=1, maximum=5) == 3
    assert whole_number(5.0, "Top-k", minimum=1, maximum=5) == 5
    assert real_number(0.25, "min_dist", maximum=1.0) == 0.25
    with pytest.raises(InvalidInputError, match="between 0 and 1, not 2"):
        real_number(2, "min_dist", maximum=1.0)
    assert choice(" pca ", "Method", ("umap", "pca")) == "pca"
    with pytest.raises(InvalidInputError, match="one of umap, pca"):
        choice("mds", "Method", ("umap", "pca"))


def test_read_upload_txt_and_non_utf8(tmp_path):
    good = tmp_path / "texts.txt"
    good.write_text("first\n\nsecond\n", encoding="utf-8")
    assert read_table_upload(str(good)) == (["first", "second"], [])
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_table_upload(str(bad))
    assert read_table_upload(None) == ([], [])


def test_a_csv_without_the_column_names_the_columns_it_has(tmp_path):
    upload = tmp_path / "t.csv"
    upload.write_text("sentence,score\nhello,1\nworld,2\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="no column 'text': its columns are 'sentence', 'score'"):
        read_table_upload(str(upload))
    assert read_table_upload(str(upload), column="sentence") == (["hello", "world"], [])


def test_a_csv_label_column_gives_the_labels(tmp_path):
    upload = tmp_path / "t.csv"
    upload.write_text("text,label\nA cat.,pets\n,pets\nA bank.,\n", encoding="utf-8")
    assert read_table_upload(str(upload), "text", "label") == (["A cat.", "A bank."], ["pets", "text"])


def test_visitor_messages_lose_setting_names():
    assert for_visitors("at most 3 (FLAGDEMO_MAX_TEXTS). Send fewer.") == "at most 3. Send fewer."
    said = for_visitors("set the environment variable FLAGDEMO_ALLOW_REMOTE_CODE=1.")
    assert "FLAGDEMO" not in said and said.endswith("setting for it.")


def test_m3_score_formulas_by_hand():
    assert scoring.lexical_score({"a": 0.5, "b": 0.2}, {"a": 0.4, "c": 1.0}) == pytest.approx(0.2)
    query = [[1.0, 0.0], [0.0, 1.0]]
    passage = [[0.6, 0.8], [1.0, 0.0]]
    assert scoring.colbert_score(query, passage) == pytest.approx((1.0 + 0.8) / 2)
    np.testing.assert_allclose(scoring.cosine([[3.0, 4.0]], [[4.0, 3.0], [0.0, 0.0]]), [[24 / 25, 0.0]])
    assert scoring.colbert_tokens(["[CLS]", "a", "b"], 3) == ["a", "b", "[2]"]


def test_gradio_error_carries_the_sentence():
    assert gr.Error("A sentence.").message == "A sentence."

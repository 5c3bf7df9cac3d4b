"""Parsing what people type or upload, and choosing the FlagEmbedding class for models outside the catalog."""

from __future__ import annotations

import gradio as gr
import pytest

from flagdemo.engine import Engine, clean_lines, colbert_score, guess_model_class, lexical_score
from flagdemo.errors import InvalidInputError
from flagdemo.ui import parse_labelled_lines, parse_relevance, read_upload


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


def test_read_upload_txt_and_non_utf8(tmp_path):
    good = tmp_path / "texts.txt"
    good.write_text("first\n\nsecond\n", encoding="utf-8")
    assert read_upload(str(good)) == ["first", "second"]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_upload(str(bad))
    assert read_upload(None) == []


def test_read_upload_csv_falls_back_to_the_first_column(tmp_path):
    upload = tmp_path / "t.csv"
    upload.write_text("sentence,score\nhello,1\nworld,2\n", encoding="utf-8")
    assert read_upload(str(upload), column="missing") == ["hello", "world"]


def test_model_class_for_local_folders(tiny_dir):
    assert guess_model_class(str(tiny_dir / "bert-embedder"), "embedder") == "encoder-only-base"
    assert guess_model_class(str(tiny_dir / "xlmr-m3"), "embedder") == "encoder-only-m3"
    assert guess_model_class(str(tiny_dir / "llama-decoder"), "reranker") == "decoder-only-base"
    assert guess_model_class(str(tiny_dir / "minicpm-layerwise"), "reranker") == "decoder-only-layerwise"
    assert guess_model_class(str(tiny_dir / "bert-cross-encoder"), "reranker") == "encoder-only-base"
    assert guess_model_class("bge-m3", "embedder") is None  # the catalog decides


def test_model_kind(tiny_dir):
    engine = Engine()
    assert engine.model_kind("all-MiniLM-L6-v2") == "embedder"
    assert engine.model_kind("SmolLM2-135M-Instruct") == "reranker"
    assert engine.model_kind(str(tiny_dir / "llama-decoder")) == "reranker"
    assert engine.model_kind(str(tiny_dir / "bert-cross-encoder")) == "reranker"
    assert engine.model_kind(str(tiny_dir / "bert-embedder")) == "embedder"


def test_m3_score_formulas_by_hand():
    assert lexical_score({"a": 0.5, "b": 0.2}, {"a": 0.4, "c": 1.0}) == pytest.approx(0.2)
    query = [[1.0, 0.0], [0.0, 1.0]]
    passage = [[0.6, 0.8], [1.0, 0.0]]
    assert colbert_score(query, passage) == pytest.approx((1.0 + 0.8) / 2)


def test_engine_requires_a_model_name():
    with pytest.raises(InvalidInputError, match="Choose an embedder"):
        Engine().load_embedder("(none)")


def test_gradio_error_carries_the_sentence():
    assert gr.Error("A sentence.").message == "A sentence."

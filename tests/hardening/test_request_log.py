"""One structured log line per request: endpoint, model, number of inputs, duration, outcome; texts only in debug."""

from __future__ import annotations

import json
import logging

import gradio as gr
import pytest

SECRET = "my private note about patient 4711"


def _request_lines(caplog) -> list[dict]:
    records = [r for r in caplog.records if r.name == "flagdemo.requests"]
    for record in records:
        assert json.loads(record.getMessage()) == record.request  # the message is the JSON of the payload
    return [r.request for r in records]


def test_one_line_per_request_without_user_text(handlers, tiny_engine, caplog, monkeypatch):
    monkeypatch.delenv("FLAGDEMO_DEBUG", raising=False)
    caplog.set_level(logging.INFO, logger="flagdemo.requests")
    handlers.encode(texts=f"{SECRET}\nsecond text\n\nthird")
    (line,) = _request_lines(caplog)
    assert line["event"] == "request"
    assert line["endpoint"] == "encode"
    assert line["model"] == tiny_engine.embedder
    assert line["inputs"] == 3
    assert line["outcome"] == "ok"
    assert 0 < line["seconds"] < 60
    assert "texts" not in line
    assert SECRET not in caplog.text


@pytest.mark.internal_failure_expected
def test_refused_and_failed_requests_say_so(handlers, tiny_engine, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="flagdemo.requests")
    with pytest.raises(gr.Error):
        handlers.encode(texts="   ")
    with pytest.raises(gr.Error):
        handlers.rerank(query=SECRET, passages="a\nb", cross_encoder="(none)", llm_reranker="", layerwise_reranker="",
                        bi_encoder="")  # fmt: skip

    def broken(*args, **kwargs):
        raise RuntimeError(f"internal failure mentioning {SECRET}")

    monkeypatch.setattr(tiny_engine, "similarity", broken)
    with pytest.raises(gr.Error):
        handlers.similarity(queries="q", passages="p", top_k=1)
    empty, no_method, failed = _request_lines(caplog)
    assert (empty["endpoint"], empty["inputs"], empty["outcome"]) == ("encode", 0, "refused:EmptyInputError")
    assert (no_method["endpoint"], no_method["inputs"]) == ("rerank", 3)
    assert no_method["outcome"] == "refused:InvalidInputError"
    assert (failed["endpoint"], failed["outcome"]) == ("similarity", "failed:RuntimeError")
    request_lines = "\n".join(r.getMessage() for r in caplog.records if r.name == "flagdemo.requests")
    assert SECRET not in request_lines


def test_rerank_lists_every_model_it_used(handlers, tiny_engine, caplog):
    caplog.set_level(logging.INFO, logger="flagdemo.requests")
    handlers.rerank(query="which?", passages="one\ntwo")
    (line,) = _request_lines(caplog)
    assert line["model"].split(",") == [
        tiny_engine.embedder,
        tiny_engine.cross_encoder,
        tiny_engine.llm_reranker,
        tiny_engine.layerwise_reranker,
    ]
    assert line["inputs"] == 3


def test_debug_flag_adds_the_texts(handlers, caplog, monkeypatch):
    monkeypatch.setenv("FLAGDEMO_DEBUG", "1")
    caplog.set_level(logging.INFO, logger="flagdemo.requests")
    handlers.encode(texts=f"{SECRET}\nanother")
    (line,) = _request_lines(caplog)
    assert line["texts"] == [SECRET, "another"]


def test_models_and_unload_log_one_line_each(handlers, caplog, monkeypatch):
    monkeypatch.delenv("FLAGDEMO_PUBLIC", raising=False)
    caplog.set_level(logging.INFO, logger="flagdemo.requests")
    handlers.models()
    handlers.unload("no such key")
    assert [line["endpoint"] for line in _request_lines(caplog)] == ["models", "unload"]

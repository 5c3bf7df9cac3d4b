"""Faults seen from the app: out of memory while encoding, cache eviction past FLAGDEMO_MAX_MODELS, and corrupt
model files sent to a launched server (it answers with a sentence and keeps serving)."""

from __future__ import annotations

import shutil

import gradio as gr
import numpy as np
import pytest
import torch

from flagdemo.models.cache import MODEL_CACHE

TEXTS = "the first text\na second one\nand a third\nfourth\nfifth and last"


def test_out_of_memory_shrinks_the_batch_then_says_so(handlers, tiny_engine, monkeypatch):
    expected = tiny_engine.encode(TEXTS.splitlines(), model=tiny_engine.embedder).embeddings
    embedder_class = type(tiny_engine.load_embedder(tiny_engine.embedder))
    original = embedder_class._forward
    sizes = []

    def small_memory(self, batch, all_layers):
        sizes.append(batch["input_ids"].shape[0])
        if sizes[-1] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch, all_layers)

    monkeypatch.setattr(embedder_class, "_forward", small_memory)
    *_, files = handlers.encode(texts=TEXTS)
    np.testing.assert_allclose(np.load(files[0]), expected, atol=1e-6)
    assert sizes[0] == 5 and sizes[-1] == 1

    def no_memory(self, batch, all_layers):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(embedder_class, "_forward", no_memory)
    with pytest.raises(gr.Error) as caught:
        handlers.encode(texts=TEXTS)
    assert "one text at a time" in caught.value.message
    monkeypatch.setattr(embedder_class, "_forward", original)
    table, *_ = handlers.encode(texts=TEXTS)  # the next request is served normally
    assert len(table) == 5


def test_models_past_the_cache_bound_are_evicted_and_reload_identically(handlers, tiny_dir, tmp_path, monkeypatch):
    copies = []
    for i in range(3):  # three distinct model folders: three cache keys
        copies.append(str(tmp_path / f"embedder-{i}"))
        shutil.copytree(tiny_dir / "bert-embedder", copies[-1])
    monkeypatch.setattr(MODEL_CACHE, "max_models", 2)
    first = np.load(handlers.encode(texts=TEXTS, model=copies[0])[-1][0])
    for name in copies[1:]:
        handlers.encode(texts=TEXTS, model=name)
    cached = {entry.key[0] for entry in MODEL_CACHE.entries()}
    assert len(MODEL_CACHE) <= 2
    assert copies[0] not in cached and copies[2] in cached  # least recently used went first
    shown = handlers.models()[1]
    assert len(shown) == len(MODEL_CACHE)
    loads = MODEL_CACHE.load_count
    again = np.load(handlers.encode(texts=TEXTS, model=copies[0])[-1][0])
    assert MODEL_CACHE.load_count == loads + 1
    np.testing.assert_array_equal(again, first)


@pytest.mark.e2e
def test_a_launched_app_answers_corrupt_models_with_sentences_and_keeps_serving(tiny_engine, broken_models):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from flagdemo.ui import build_demo

    demo = build_demo(tiny_engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(url, verbose=False)
        expected = {
            "truncated-weights": "Loading the model of",
            "missing-config": "has no config.json",
            "garbage-tokenizer": "Loading the tokenizer of",
            "missing-weights": "files are missing",
        }
        for name, folder in broken_models.items():
            with pytest.raises(AppError, match=expected[name]):
                client.predict(texts="hello", model=str(folder), api_name="/encode")
            table, *_ = client.predict(texts="still serving", api_name="/encode")
            assert [row[1] for row in table["data"]] == ["still serving"]
        *_, messages = client.predict(
            passages="one\ntwo", cross_encoder=str(broken_models["truncated-weights"]), api_name="/rerank"
        )
        assert "could not run" in messages and "Loading the model of" in messages
    finally:
        demo.close()

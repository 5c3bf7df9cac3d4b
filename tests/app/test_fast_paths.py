"""The app's fast paths: the embedding cache and the labelled approximate precisions.

Correctness only (identical numbers, cache hits, labels, memory bounds kept); timings belong in the benchmarks.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from flagdemo.engine import Engine
from flagdemo.models.embedders import FlagModel
from flagdemo.serving.embedding_cache import EmbeddingCache
from flagdemo.ui import endpoints
from flagdemo.ui.inputs import PRECISION_CHOICES

QUERIES = ["what do cats eat", "how fast is a car", "where do birds sleep"]
PASSAGES = ["Cats eat fish and meat.", "A fast car drives at 200 km/h.", "Birds sleep in nests.", "Rain is wet."]


@pytest.fixture
def engine(tiny_engine, engine_copy) -> Engine:
    """The tiny-model engine with its own empty embedding cache, so hit counts belong to this test alone."""
    return engine_copy(tiny_engine, embedding_cache=EmbeddingCache())


def test_repeated_similarity_is_identical_and_served_from_the_embedding_cache(engine, monkeypatch):
    first = engine.similarity(QUERIES, PASSAGES, model=engine.embedder)
    cache = engine.embedding_cache
    assert (cache.hits, cache.misses) == (0, len(QUERIES) + len(PASSAGES))

    embedder_class = type(engine.load_embedder(engine.embedder))

    def must_not_encode(*args, **kwargs):
        raise AssertionError("a cached text was encoded again")

    monkeypatch.setattr(embedder_class, "encode_detailed", must_not_encode)
    second = engine.similarity(QUERIES, PASSAGES, model=engine.embedder)
    assert cache.hits == len(QUERIES) + len(PASSAGES)
    assert cache.misses == len(QUERIES) + len(PASSAGES)
    np.testing.assert_array_equal(second.dense, first.dense)


def test_fp32_similarity_equals_flagmodel_encode(engine):
    outcome = engine.similarity(QUERIES, PASSAGES, model=engine.embedder, precision="fp32")
    direct = FlagModel(engine.embedder)
    expected = direct.encode_queries(QUERIES).astype(np.float64) @ direct.encode_corpus(PASSAGES).astype(np.float64).T
    assert outcome.dense.shape == (len(QUERIES), len(PASSAGES))
    np.testing.assert_allclose(outcome.dense, expected, rtol=0, atol=1e-6)


def test_precisions_are_cached_apart(engine):
    exact = engine.similarity(QUERIES, PASSAGES, model=engine.embedder, precision="fp32")
    approximate = engine.similarity(QUERIES, PASSAGES, model=engine.embedder, precision="int8")
    assert engine.embedding_cache.hits == 0  # an int8 vector is never served for an fp32 request, nor the reverse
    assert not np.array_equal(exact.dense, approximate.dense)


@pytest.mark.parametrize("label", ["bf16 (approximate)", "int8 (approximate, fastest on CPU)"])
def test_approximate_precision_is_labelled(tiny_engine, label):
    handlers = endpoints(tiny_engine)
    *_, note = handlers.similarity(precision=label)
    assert "Approximate" in note and PRECISION_CHOICES[label] in note
    *_, timing_md, _ = handlers.encode(precision=label)
    assert "Approximate" in timing_md


def test_exact_precision_is_the_default_and_unlabelled(tiny_engine, monkeypatch):
    monkeypatch.delenv("FLAGDEMO_PRECISION", raising=False)
    handlers = endpoints(tiny_engine)
    *_, note = handlers.similarity()
    assert "Approximate" not in note
    monkeypatch.setenv("FLAGDEMO_PRECISION", "int8")
    *_, note = handlers.similarity()
    assert "Approximate" in note


def test_unknown_precision_is_refused_with_a_sentence(tiny_engine):
    handlers = endpoints(tiny_engine)
    with pytest.raises(gr.Error, match="precision must be one of"):
        handlers.similarity(precision="fp8")


def test_the_engine_stays_exact_whatever_flagdemo_precision_says(engine, monkeypatch):
    exact = engine.similarity(QUERIES, PASSAGES, model=engine.embedder)
    monkeypatch.setenv("FLAGDEMO_PRECISION", "int8")  # only the UI's Precision choice follows it, visibly labelled
    np.testing.assert_array_equal(engine.similarity(QUERIES, PASSAGES, model=engine.embedder).dense, exact.dense)
    assert engine.embedding_cache.hits == len(QUERIES) + len(PASSAGES)


def test_projection_vectors_come_from_the_cache_and_match_encode(engine):
    vectors = engine.embeddings(PASSAGES, model=engine.embedder, mode="passage")
    expected = engine.encode(PASSAGES, model=engine.embedder, mode="passage").embeddings
    np.testing.assert_allclose(vectors, expected, rtol=0, atol=1e-6)
    again = engine.embeddings(PASSAGES, model=engine.embedder, mode="passage")
    assert engine.embedding_cache.hits == len(PASSAGES)
    np.testing.assert_array_equal(again, vectors)
    layer_one = engine.embeddings(PASSAGES, model=engine.embedder, mode="passage", layer=1)
    full = engine.encode(PASSAGES, model=engine.embedder, mode="passage", all_layers=True)
    np.testing.assert_array_equal(layer_one, full.layer_embeddings[1])

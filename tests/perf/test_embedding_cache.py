"""The embedding cache: hits return the stored values, only new texts are encoded, settings split keys, bounds hold."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from flagdemo.errors import InvalidInputError
from flagdemo.models.embedders import FlagModel
from flagdemo.serving.embedding_cache import EmbeddingCache

INSTRUCTION = "Represent this sentence for searching relevant passages: "


@pytest.fixture(scope="module")
def embedder(tiny_dir):
    return FlagModel(
        str(tiny_dir / "bert-embedder"), use_fp16=False, query_instruction_for_retrieval=INSTRUCTION, batch_size=4
    )


def CountingEmbedder(embedder):
    """A copy of ``embedder`` that records the texts reaching ``encode_detailed``, to prove hits are not re-encoded."""
    counting = copy.copy(embedder)
    counting.encoded = []

    def encode_detailed(texts, **kwargs):
        counting.encoded.extend(texts)
        return embedder.encode_detailed(texts, **kwargs)

    counting.encode_detailed = encode_detailed
    return counting


def test_repeated_request_returns_identical_arrays_without_encoding(embedder):
    cache = EmbeddingCache()
    counting = CountingEmbedder(embedder)
    texts = ["alpha beta", "gamma delta epsilon", "zeta"]
    first = cache.encode(counting, texts, mode="passage")
    assert counting.encoded == texts
    second = cache.encode(counting, texts, mode="passage")
    assert counting.encoded == texts  # nothing new was encoded
    assert second.dtype == np.float32 and second.shape == first.shape
    np.testing.assert_array_equal(second, first)
    assert (cache.hits, cache.misses) == (3, 3)


def test_values_are_the_embedders_own(embedder):
    texts = ["one small text", "another, somewhat longer text about caching"]
    cached = EmbeddingCache().encode(embedder, texts, mode="query")
    direct = embedder.encode_queries(texts)
    np.testing.assert_allclose(cached, direct, atol=1e-6, rtol=0)


def test_only_new_and_distinct_texts_are_encoded(embedder):
    cache = EmbeddingCache()
    counting = CountingEmbedder(embedder)
    cache.encode(counting, ["a", "b"], mode="raw")
    result = cache.encode(counting, ["b", "c", "c", "a"], mode="raw")
    assert counting.encoded == ["a", "b", "c"]
    np.testing.assert_array_equal(result[1], result[2])
    assert result.shape[0] == 4


def test_mode_max_length_and_precision_are_part_of_the_key(embedder):
    cache = EmbeddingCache()
    counting = CountingEmbedder(embedder)
    text = ["the same words every time, long enough to be cut by a short max length"]
    query = cache.encode(counting, text, mode="query")
    passage = cache.encode(counting, text, mode="passage")
    assert not np.allclose(query, passage)  # the instruction changes the vector, so it must not be a hit
    cache.encode(counting, text, mode="passage", max_length=4)
    cache.encode(counting, text, mode="passage", precision="int8")
    assert len(counting.encoded) == 4 and len(cache) == 4 and (cache.hits, cache.misses) == (0, 4)


def test_single_string_and_bad_arguments(embedder):
    cache = EmbeddingCache()
    assert cache.encode(embedder, "just one").shape[0] == 1
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        cache.encode(embedder, ["x"], mode="document")
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        cache.encode(embedder, ["x"], precision="fp8")


def test_entry_and_byte_bounds_evict_least_recently_used(embedder):
    by_entries = EmbeddingCache(max_entries=2)
    by_entries.encode(embedder, ["a", "b"], mode="raw")
    by_entries.encode(embedder, ["a"], mode="raw")  # "a" is now the most recent
    by_entries.encode(embedder, ["c"], mode="raw")
    assert len(by_entries) == 2
    counting = CountingEmbedder(embedder)
    by_entries.encode(counting, ["a", "c"], mode="raw")
    assert counting.encoded == []  # "b" was evicted, "a" and "c" kept

    one_vector = EmbeddingCache().encode(embedder, ["a"], mode="raw").nbytes
    by_bytes = EmbeddingCache(max_bytes=3 * one_vector)
    by_bytes.encode(embedder, [f"text {i}" for i in range(10)], mode="raw")
    assert len(by_bytes) == 3 and by_bytes.nbytes == 3 * one_vector


def test_zero_bound_disables_storage_but_still_answers(embedder):
    cache = EmbeddingCache(max_entries=0)
    assert cache.encode(embedder, ["a", "b"], mode="raw").shape[0] == 2
    assert len(cache) == 0 and cache.nbytes == 0


def test_stored_vectors_cannot_be_changed_through_a_result(embedder):
    cache = EmbeddingCache()
    first = cache.encode(embedder, ["a"], mode="raw")
    first[:] = 0
    np.testing.assert_array_equal(cache.encode(embedder, ["a"], mode="raw") == 0, False)


def test_env_bounds(monkeypatch):
    monkeypatch.setenv("FLAGDEMO_EMBED_CACHE_ENTRIES", "10")
    monkeypatch.setenv("FLAGDEMO_EMBED_CACHE_MB", "0.5")
    cache = EmbeddingCache.from_env()
    assert (cache.max_entries, cache.max_bytes) == (10, 2**19)
    monkeypatch.setenv("FLAGDEMO_EMBED_CACHE_MB", "lots")
    with pytest.raises(InvalidInputError, match="FLAGDEMO_EMBED_CACHE_MB must be a number"):
        EmbeddingCache.from_env()

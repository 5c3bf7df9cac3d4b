"""The engine keeps model wrappers between calls: same numbers as a freshly built wrapper, built once, and never
holding weights the model cache has let go.

Correctness only (identity, build and call counts, identical arrays); timings belong in the benchmarks.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from flagdemo.data import datasets
from flagdemo.engine import Engine
from flagdemo.errors import UnknownModelError
from flagdemo.models.cache import MODEL_CACHE
from flagdemo.models.rerankers.lens import LogitLens
from flagdemo.serving.embedding_cache import EmbeddingCache
from flagdemo.ui import endpoints

TEXTS = ["the cat sat on the mat", "a kitten rests on a ledge", "markets fell sharply"]
QUERY = "where does the cat sit?"


@pytest.fixture
def engine(tiny_engine, engine_copy) -> Engine:
    """The tiny-model engine with its own (empty) wrapper and embedding caches, so counts belong to this test."""
    return engine_copy(tiny_engine, embedding_cache=EmbeddingCache())


@pytest.fixture
def own_embedder(tiny_dir, tmp_path) -> str:
    """A private copy of the tiny embedder: its own model-cache key, which a test may unload or evict."""
    folder = tmp_path / "embedder-copy"
    shutil.copytree(tiny_dir / "bert-embedder", folder)
    return str(folder)


def _loaded_keys_of(folder: str) -> list[tuple]:
    return [entry.key for entry in MODEL_CACHE.entries() if entry.key[0] == folder]


def _warm_then_count_builds(engine: Engine, call) -> int:
    """Run ``call`` twice and return the builds so far: the first run's loads may evict (the session's model cache
    is full) and a wrapper whose build evicted is not kept, so only from the second run on are all of them kept."""
    call()
    call()
    return engine.wrappers.builds


def _encode_until_kept(engine: Engine, model: str) -> np.ndarray:
    """Encode twice: a first load may evict another model (the session's cache is full), and a wrapper whose build
    evicted is not kept; the second call finds the weights cached and keeps its wrapper."""
    engine.encode(TEXTS, model=model)
    vectors = engine.encode(TEXTS, model=model).embeddings
    assert len(engine.wrappers) == 1
    return vectors


def test_a_repeated_encode_reuses_the_wrapper_and_matches_a_fresh_one(engine):
    first = engine.encode(TEXTS, model=engine.embedder, mode="query")
    built = _warm_then_count_builds(engine, lambda: engine.encode(TEXTS, model=engine.embedder, mode="query"))
    second = engine.encode(TEXTS, model=engine.embedder, mode="query")
    assert engine.wrappers.builds == built
    assert len(engine.wrappers) == 1
    fresh = engine.load_embedder(engine.embedder).encode_detailed(TEXTS, mode="query")
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    np.testing.assert_array_equal(second.embeddings, fresh.embeddings)
    assert second.tokens == fresh.tokens
    assert second.timings.load_seconds == 0.0  # nothing was loaded for the second call, and it says so


def test_every_embedder_operation_shares_one_wrapper(engine, monkeypatch):
    built = _warm_then_count_builds(engine, lambda: engine.num_layers(engine.embedder))

    def must_not_build(*args, **kwargs):
        raise AssertionError("a kept wrapper was built again")

    monkeypatch.setattr(engine.access, "load_embedder", must_not_build)
    engine.encode(TEXTS, model=engine.embedder)
    engine.embeddings(TEXTS, model=engine.embedder)
    engine.similarity([QUERY], TEXTS, model=engine.embedder)
    engine.embedder_layer_sweep(engine.embedder, QUERY, TEXTS, None)
    assert engine.wrappers.builds == built


def test_normalisation_gets_its_own_wrapper(engine):
    unit = engine.encode(TEXTS, model=engine.embedder, normalize=True).embeddings
    raw = engine.encode(TEXTS, model=engine.embedder, normalize=False).embeddings
    with (
        engine.embedder_for(engine.embedder) as normalising,
        engine.embedder_for(engine.embedder, normalize=False) as plain,
    ):
        assert normalising is not plain
        assert normalising.normalize_embeddings and not plain.normalize_embeddings
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_the_logit_lens_is_checked_once_and_sweeps_stay_identical(engine, monkeypatch):
    checks = []
    original = LogitLens.check_against_forward

    def counted(self, *args, **kwargs):
        checks.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LogitLens, "check_against_forward", counted)
    first = engine.reranker_layer_sweep(engine.llm_reranker, QUERY, TEXTS, [1, 2])
    assert checks  # a new wrapper checks its lens against the model's own forward
    engine.reranker_layer_sweep(engine.llm_reranker, QUERY, TEXTS, [1, 2])  # kept now, if the first load evicted
    checks.clear()
    second = engine.reranker_layer_sweep(engine.llm_reranker, QUERY, TEXTS, [1, 2])
    assert checks == []  # the kept wrapper's lens was checked once, when it was built
    np.testing.assert_array_equal(np.asarray(second.scores), np.asarray(first.scores))
    from flagdemo.models.rerankers import layer_sweep

    fresh = layer_sweep(engine.load_reranker(engine.llm_reranker), [(QUERY, t) for t in TEXTS], layers=[1, 2])
    np.testing.assert_array_equal(np.asarray(second.scores), np.asarray(fresh.scores))


def test_rerank_methods_reuse_their_wrappers_with_identical_scores(engine):
    chosen = {
        "bi_encoder": engine.embedder,
        "cross_encoder": engine.cross_encoder,
        "llm_reranker": engine.llm_reranker,
        "layerwise_reranker": engine.layerwise_reranker,
        "cutoff_layer": 3,
    }
    first = engine.rerank_methods(QUERY, TEXTS, **chosen)
    built = _warm_then_count_builds(engine, lambda: engine.rerank_methods(QUERY, TEXTS, **chosen))
    assert len(engine.wrappers) == 4  # the bi-encoder, the cross-encoder, the LLM and the layer-wise reranker
    second = engine.rerank_methods(QUERY, TEXTS, **chosen)
    assert engine.wrappers.builds == built
    assert [o.error for o in second] == [""] * 4
    assert [o.scores for o in second] == [o.scores for o in first]
    assert [o.normalized for o in second] == [o.normalized for o in first]
    assert all(o.load_seconds == 0.0 for o in second)
    direct = engine.load_reranker(engine.cross_encoder).compute_score_detailed([(QUERY, t) for t in TEXTS])
    assert second[1].scores == [float(s) for s in direct.scores]


def test_a_busy_wrapper_is_not_shared_between_callers(engine):
    with engine.embedder_for(engine.embedder) as outer:
        with engine.embedder_for(engine.embedder) as inner:
            assert inner is not outer  # the second caller gets a private wrapper, as before the cache
            np.testing.assert_array_equal(
                inner.encode_detailed(TEXTS).embeddings, outer.encode_detailed(TEXTS).embeddings
            )
    with engine.embedder_for(engine.embedder) as again:
        assert again is outer
    assert len(engine.wrappers) == 1


def test_a_wrapper_is_dropped_when_its_weights_leave_the_model_cache(engine, own_embedder):
    first = _encode_until_kept(engine, own_embedder)
    (key,) = _loaded_keys_of(own_embedder)
    assert MODEL_CACHE.unload(key)
    loads, built = MODEL_CACHE.load_count, engine.wrappers.builds
    again = engine.encode(TEXTS, model=own_embedder).embeddings
    assert engine.wrappers.builds == built + 1  # the kept wrapper held weights the cache had dropped: built anew
    assert MODEL_CACHE.load_count == loads + 1
    np.testing.assert_array_equal(again, first)


def test_unloading_through_the_models_tab_releases_the_wrappers(engine, own_embedder):
    _encode_until_kept(engine, own_embedder)
    (key,) = _loaded_keys_of(own_embedder)
    assert engine.unload(" | ".join(map(str, key)))
    assert len(engine.wrappers) == 0


def test_no_wrapper_outlives_an_eviction(engine, own_embedder, monkeypatch):
    _encode_until_kept(engine, engine.embedder)
    monkeypatch.setattr(MODEL_CACHE, "max_models", 1)
    engine.encode(TEXTS, model=own_embedder)  # loading it evicts every other model
    assert _loaded_keys_of(engine.embedder) == []
    assert len(engine.wrappers) == 0  # neither the evicted model's wrapper nor one whose build evicted is kept


def test_public_mode_still_refuses_a_folder_whose_wrapper_is_kept(engine, own_embedder, monkeypatch):
    _encode_until_kept(engine, own_embedder)
    monkeypatch.setenv("FLAGDEMO_PUBLIC", "1")
    with pytest.raises(UnknownModelError, match="loads only the embedders in its list"):
        engine.encode(TEXTS, model=own_embedder)


def test_repeated_similarity_clicks_build_the_embedder_once(engine):
    handlers = endpoints(engine)
    first = handlers.similarity(queries=QUERY, passages="\n".join(TEXTS))
    built = _warm_then_count_builds(engine, lambda: handlers.similarity(queries=QUERY, passages="\n".join(TEXTS)))
    second = handlers.similarity(queries=QUERY, passages="\n".join(TEXTS))
    assert engine.wrappers.builds == built
    assert first[1].equals(second[1])
    np.testing.assert_array_equal(np.asarray(first[0].data[0].z), np.asarray(second[0].data[0].z))


def test_a_repeated_comparison_reuses_the_labelled_encodings_with_identical_metrics(engine, engine_copy, monkeypatch):
    labelled = datasets.load_retrieval_set().subset(max_queries=4)
    specs = [(engine.embedder, -1, "final"), (engine.embedder, 2, "layer 2")]
    first = engine.retrieval_runs(specs, labelled, 5)
    engine.retrieval_runs(specs, labelled, 5)  # kept now, if the first load evicted
    embedder_class = type(engine.load_embedder(engine.embedder))

    def must_not_encode(*args, **kwargs):
        raise AssertionError("the labelled set was encoded again")

    monkeypatch.setattr(embedder_class, "encode_detailed", must_not_encode)
    again = engine.retrieval_runs(specs, labelled, 5)
    for before, after in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(after.per_query, before.per_query)
    monkeypatch.undo()
    fresh = engine_copy(engine, embedding_cache=EmbeddingCache())  # its own wrappers: encodes anew
    for before, after in zip(first, fresh.retrieval_runs(specs, labelled, 5), strict=True):
        pd.testing.assert_frame_equal(after.per_query, before.per_query)


def test_other_texts_or_layers_are_encoded_not_reused(engine):
    labelled = datasets.load_retrieval_set()
    queries, passages = labelled.queries["text"].tolist()[:3], labelled.passages["text"].tolist()[:5]
    final = engine.labelled_encodings(engine.embedder, queries, passages, all_layers=False)
    layered = engine.labelled_encodings(engine.embedder, queries, passages, all_layers=True)
    other = engine.labelled_encodings(engine.embedder, queries[:2], passages, all_layers=False)
    assert final[0].layer_embeddings is None and layered[0].layer_embeddings is not None
    assert len(other[0].embeddings) == 2
    np.testing.assert_array_equal(layered[0].layer_embeddings[-1], final[0].embeddings)

"""Resolving a model name once per request (flagdemo.models.resolve): the spec, and what is refused before loading."""

from __future__ import annotations

import pytest

from flagdemo.engine import Engine
from flagdemo.errors import InvalidInputError, UnknownModelError
from flagdemo.models import catalog
from flagdemo.models.resolve import ModelNotDownloadedError, WrongRoleError, guess_model_class, resolve


def test_model_class_for_local_folders(tiny_dir):
    assert guess_model_class(str(tiny_dir / "bert-embedder"), "embedder") == "encoder-only-base"
    assert guess_model_class(str(tiny_dir / "xlmr-m3"), "embedder") == "encoder-only-m3"
    assert guess_model_class(str(tiny_dir / "llama-decoder"), "reranker") == "decoder-only-base"
    assert guess_model_class(str(tiny_dir / "minicpm-layerwise"), "reranker") == "decoder-only-layerwise"
    assert guess_model_class(str(tiny_dir / "bert-cross-encoder"), "reranker") == "encoder-only-base"


def test_a_spec_is_the_cache_key_and_carries_the_catalog_settings():
    spec = resolve("all-MiniLM-L6-v2", "embedder")
    assert spec == resolve("all-MiniLM-L6-v2", "embedder") and hash(spec) == hash(resolve("all-MiniLM-L6-v2"))
    assert (spec.kind, spec.model_class, spec.source.origin) == ("embedder", "encoder-only-base", "bundled")
    assert spec.kwargs()["pooling_method"] == "mean"
    reranker = resolve(catalog.SMOLLM2_KEY, "llm-reranker")
    assert reranker.kind == "reranker" and "prompt" in reranker.kwargs()  # the few-shot preset


def test_the_kind_of_a_model_for_the_layer_sweep(tiny_dir):
    assert resolve("all-MiniLM-L6-v2").kind == "embedder"
    assert resolve(catalog.SMOLLM2_KEY).kind == "reranker"
    assert resolve(str(tiny_dir / "llama-decoder")).kind == "reranker"
    assert resolve(str(tiny_dir / "bert-embedder")).kind == "embedder"


def test_a_model_in_a_role_it_cannot_play_is_refused(tiny_dir):
    with pytest.raises(WrongRoleError, match="causal language model, not a cross-encoder"):
        resolve(catalog.SMOLLM2_KEY, "cross-encoder")
    with pytest.raises(WrongRoleError, match=r"is a reranker .* cannot be used as an embedder"):
        resolve(catalog.SMOLLM2_KEY, "embedder")
    with pytest.raises(WrongRoleError, match="cross-encoder, not a language model"):
        resolve(str(tiny_dir / "bert-cross-encoder"), "llm-reranker")
    with pytest.raises(WrongRoleError, match="classifier"):
        resolve(str(tiny_dir / "bert-cross-encoder"), "embedder")


def test_a_catalog_model_that_is_not_downloaded_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotDownloadedError) as caught:
        resolve("bge-m3", "embedder")
    message = str(caught.value)
    assert "not downloaded on this machine" in message and "BAAI/bge-m3" in message
    assert "not known" not in message and "Did you mean" not in message


def test_suggestions_only_for_names_outside_the_catalog(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnknownModelError, match="Did you mean 'bge-small-en'") as caught:
        resolve("bge-smal-en", "embedder")
    assert "'bge-smal-en'" in str(caught.value)


def test_an_unsupported_class_is_refused_with_its_reason():
    with pytest.raises(Exception, match="does not implement FlagEmbedding's FlagICLModel"):
        resolve("bge-en-icl", "embedder")


def test_an_empty_name_asks_for_a_model():
    with pytest.raises(InvalidInputError, match="Choose a model to use as an embedder"):
        Engine().load_embedder("(none)")


def test_dropdowns_list_every_catalog_model_marking_the_missing(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = Engine()
    menu = dict((name, label) for label, name in engine.model_menu("embedder"))
    assert {entry.key for entry in catalog.ALL_ENTRIES if entry.kind == "embedder"} <= set(menu)
    assert menu["all-MiniLM-L6-v2"] == "all-MiniLM-L6-v2"
    assert menu["bge-m3"] == "bge-m3 (needs download)"
    assert menu["bge-en-icl"].endswith("(not supported by flagdemo)")
    cross = [name for _, name in engine.model_menu("cross-encoder")]
    assert catalog.SMOLLM2_KEY not in cross and "bge-reranker-base" in cross
    assert "not downloaded" in engine.unavailable("bge-m3") and engine.unavailable("all-MiniLM-L6-v2") == ""

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


def test_catalog_keys_are_unique_across_kinds():
    """resolve reads a name's entries once per kind and takes either for role 'any': only sound if keys are unique."""
    keys = [entry.key for entry in catalog.ALL_ENTRIES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("folder", "model_class"),
    [("bert-embedder", "encoder-only-base"), ("xlmr-m3", "encoder-only-m3"), ("llama-decoder", "decoder-only-base")],
)
def test_the_app_and_flag_auto_model_build_an_embedder_by_one_policy(tiny_dir, folder, model_class):
    """FlagAutoModel.from_finetuned (with FlagEmbedding's explicit class) and the app's resolve → build_embedder
    arrive at the same class, pooling, instruction format and remote-code setting for a folder outside the catalog."""
    from flagdemo.models.embedders import FlagAutoModel
    from flagdemo.models.resolve import build_embedder

    path = str(tiny_dir / folder)
    auto = FlagAutoModel.from_finetuned(path, model_class=model_class, devices="cpu")
    app = build_embedder(resolve(path, "embedder"))
    assert type(app) is type(auto)
    for attribute in ("pooling_method", "query_instruction_format", "trust_remote_code"):
        assert getattr(app, attribute) == getattr(auto, attribute), attribute


def test_the_app_and_flag_auto_model_read_the_catalog_alike():
    """A catalog embedder and the offline LLM reranker: the app's spec carries exactly what the auto classes pass."""
    from flagdemo.models.embedders.auto import embedder_recipe
    from flagdemo.models.rerankers.auto import reranker_recipe

    embedder = resolve(catalog.MINILM_KEY, "embedder")
    recipe = embedder_recipe(catalog.MINILM_KEY, catalog.lookup(catalog.MINILM_KEY, "embedder"))
    assert (embedder.model_class, embedder.kwargs()) == (recipe.model_class, recipe.settings)
    reranker = resolve(catalog.SMOLLM2_KEY, "llm-reranker")
    recipe = reranker_recipe(catalog.SMOLLM2_KEY, catalog.lookup(catalog.SMOLLM2_KEY, "reranker"))
    assert (reranker.model_class, reranker.kwargs()) == (recipe.model_class, recipe.settings)
    assert recipe.settings["trust_remote_code"] is False and "prompt" in recipe.settings


def test_resolve_reads_a_folders_config_once(tiny_dir, monkeypatch):
    import flagdemo.models.resolve as resolving

    reads = []
    read = resolving.config_architectures
    monkeypatch.setattr(resolving, "config_architectures", lambda name: reads.append(name) or read(name))
    for folder in ("llama-decoder", "bert-embedder", "minicpm-layerwise"):
        reads.clear()
        resolve(str(tiny_dir / folder))  # role 'any': the kind, the role check and the class all need the config
        assert len(reads) == 1, folder

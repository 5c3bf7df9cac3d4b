from __future__ import annotations

import pytest

from flagdemo.errors import RemoteCodeNotAllowedError, UnknownModelError
from flagdemo.models import catalog


def test_registries_are_complete():
    assert len(catalog.EMBEDDERS) == 47
    assert len(catalog.RERANKERS) == 10
    keys = [entry.key for entry in catalog.ALL_ENTRIES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("name", "model_class", "pooling", "fmt"),
    [
        ("BAAI/bge-m3", "BGEM3FlagModel", "cls", "{}{}"),
        ("bge-base-en-v1.5", "FlagModel", "cls", "{}{}"),
        ("intfloat/e5-large-v2", "FlagModel", "mean", "{}{}"),
        ("Qwen/Qwen3-Embedding-0.6B", "FlagLLMModel", "last_token", "Instruct: {}\nQuery:{}"),
        ("intfloat/multilingual-e5-large-instruct", "FlagModel", "mean", "Instruct: {}\nQuery: {}"),
        ("BAAI/bge-en-icl", "FlagICLModel", "last_token", "<instruct>{}\n<query>{}"),
    ],
)
def test_embedder_entries_copy_flagembedding(name, model_class, pooling, fmt):
    entry = catalog.get(name, "embedder")
    assert (entry.model_class_name, entry.pooling, entry.query_instruction_format) == (model_class, pooling, fmt)


def test_registry_trust_remote_code_and_instructions():
    assert catalog.get("gte-base-en-v1.5").trust_remote_code is True
    assert catalog.get("gte-large").trust_remote_code is False
    assert catalog.get("bge-small-en-v1.5").query_instruction == catalog.EN_INSTRUCTION
    assert catalog.get("bge-small-zh-v1.5").query_instruction == catalog.ZH_INSTRUCTION
    assert catalog.get("bge-m3").query_instruction is None


def test_lookup_is_by_basename_and_case_sensitive():
    assert catalog.lookup("/models/finetuned/bge-m3").key == "bge-m3"
    assert catalog.lookup("/models/bge-m3/checkpoint-500").key == "bge-m3"
    assert catalog.lookup("/models/bge-m3/checkpoint-500/").key == "bge-m3"
    assert catalog.lookup("BGE-M3") is None
    assert catalog.lookup("bge-m3", kind="reranker") is None


@pytest.mark.parametrize(
    "name",
    [
        "jinaai/jina-reranker-v2-base-multilingual",
        "Alibaba-NLP/gte-multilingual-reranker-base",
        "maidalun1020/bce-reranker-base_v1",
        "jinaai/jina-reranker-v1-turbo-en",
    ],
)
def test_org_prefixed_reranker_keys_are_reachable(name):
    entry = catalog.lookup(name, kind="reranker")
    assert entry is not None and entry.hub_id == name and entry.model_class_name == "FlagReranker"


def test_unknown_names_suggest_near_ones():
    with pytest.raises(UnknownModelError, match=r"bge-small-en-v1\.5"):
        catalog.get("bge-smal-en-v1.5")
    with pytest.raises(UnknownModelError, match="bge-reranker-v2-m3"):
        catalog.get("bge-reranker-v2m3", kind="reranker")


def test_offline_availability_lists_the_bundled_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.delenv("FLAGDEMO_MODELS_DIR", raising=False)
    assert [entry.key for entry in catalog.available_models("embedder")] == [catalog.DEFAULT_EMBEDDER]
    assert [entry.key for entry in catalog.available_models("reranker")] == [catalog.DEFAULT_RERANKER]
    assert catalog.location(catalog.get("bge-m3")) is None
    assert catalog.location(catalog.get("all-MiniLM-L6-v2")) == "bundled"


def test_models_dir_makes_entries_local(monkeypatch, tmp_path, bert_path):
    import shutil

    for name in ("bge-small-en-v1.5", "bge-en-icl"):
        shutil.copytree(bert_path, tmp_path / name)
    monkeypatch.setenv("FLAGDEMO_MODELS_DIR", str(tmp_path))
    entry = catalog.get("bge-small-en-v1.5")
    assert catalog.location(entry) == "local"
    assert entry in catalog.available_models("embedder")
    icl = catalog.get("bge-en-icl")
    assert catalog.location(icl) == "local" and not icl.supported
    assert icl not in catalog.available_models("embedder")


def test_remote_code_needs_catalog_opt_in_and_env(monkeypatch):
    needs = catalog.get("gte-base-en-v1.5")
    plain = catalog.get("bge-m3")
    monkeypatch.delenv("FLAGDEMO_ALLOW_REMOTE_CODE", raising=False)
    catalog.ensure_remote_code_allowed("bge-m3", plain, False)
    with pytest.raises(RemoteCodeNotAllowedError, match="trust_remote_code=True"):
        catalog.ensure_remote_code_allowed("gte-base-en-v1.5", needs, False)
    with pytest.raises(RemoteCodeNotAllowedError, match="FLAGDEMO_ALLOW_REMOTE_CODE=1"):
        catalog.ensure_remote_code_allowed("gte-base-en-v1.5", needs, True)
    with pytest.raises(RemoteCodeNotAllowedError, match="not a catalog model"):
        catalog.ensure_remote_code_allowed("bge-m3", plain, True)
    with pytest.raises(RemoteCodeNotAllowedError):
        catalog.ensure_remote_code_allowed("./some-folder", None, True)
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    catalog.ensure_remote_code_allowed("gte-base-en-v1.5", needs, True)
    with pytest.raises(RemoteCodeNotAllowedError):
        catalog.ensure_remote_code_allowed("bge-m3", plain, True)

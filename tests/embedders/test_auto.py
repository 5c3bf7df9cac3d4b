from __future__ import annotations

import numpy as np
import pytest

from flagdemo import FlagAutoModel as LazyFlagAutoModel
from flagdemo.errors import InvalidInputError, RemoteCodeNotAllowedError, UnknownModelError
from flagdemo.models.embedders import BGEM3FlagModel, EmbedderModelClass, FlagAutoModel, FlagLLMModel, FlagModel


def test_package_exports_the_same_class():
    assert LazyFlagAutoModel is FlagAutoModel


def test_cannot_instantiate_directly():
    with pytest.raises(OSError, match="from_finetuned"):
        FlagAutoModel()


def test_catalog_lookup_by_folder_basename_and_checkpoint_rule(m3_path, bert_path, copy_model):
    m3_folder = copy_model(m3_path, "runs/bge-m3/checkpoint-100")
    model = FlagAutoModel.from_finetuned(m3_folder, use_fp16=False)
    assert isinstance(model, BGEM3FlagModel)
    assert model.query_instruction_format == "{}{}" and model.pooling_method == "cls"
    e5_folder = copy_model(bert_path, "e5-small-v2")
    e5 = FlagAutoModel.from_finetuned(e5_folder, use_fp16=False)
    assert isinstance(e5, FlagModel) and e5.pooling_method == "mean"


def test_llm_entry_gets_the_registry_format(llama_path, copy_model):
    folder = copy_model(llama_path, "Qwen3-Embedding-0.6B")
    model = FlagAutoModel.from_finetuned(folder, use_fp16=False, query_instruction_for_retrieval="Task")
    assert isinstance(model, FlagLLMModel)
    assert model.encode_detailed(["q"], mode="query").input_texts == ["Instruct: Task\nQuery:q"]


def test_explicit_model_class_resets_the_format_even_for_decoders(llama_path):
    model = FlagAutoModel.from_finetuned(
        llama_path, model_class="decoder-only-base", use_fp16=False, query_instruction_for_retrieval="Task: "
    )
    assert isinstance(model, FlagLLMModel)
    assert model.query_instruction_format == "{}{}"
    assert model.encode_detailed(["q"], mode="query").input_texts == ["Task: q"]
    direct = FlagLLMModel(llama_path, use_fp16=False)
    assert direct.query_instruction_format == "Instruct: {}\nQuery: {}"


def test_model_class_values(bert_path, m3_path):
    assert isinstance(FlagAutoModel.from_finetuned(bert_path, model_class="encoder-only-base"), FlagModel)
    m3 = FlagAutoModel.from_finetuned(m3_path, model_class=EmbedderModelClass.ENCODER_ONLY_M3, use_fp16=False)
    assert isinstance(m3, BGEM3FlagModel)
    with pytest.raises(InvalidInputError, match="not supported by flagdemo"):
        FlagAutoModel.from_finetuned(bert_path, model_class="decoder-only-icl")
    with pytest.raises(InvalidInputError, match="not one of"):
        FlagAutoModel.from_finetuned(bert_path, model_class="encoder-only")


def test_unknown_folder_without_model_class(bert_path):
    with pytest.raises(UnknownModelError, match="model_class"):
        FlagAutoModel.from_finetuned(bert_path)


def test_offline_hub_names_suggest_alternatives(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UnknownModelError, match=r"bge-base-en-v1\.5"):
        FlagAutoModel.from_finetuned("BAAI/bge-base-en-v1.5")
    with pytest.raises(UnknownModelError, match=r"Did you mean 'bge-base-en-v1\.5'"):
        FlagAutoModel.from_finetuned("BAAI/bge-base-en-v15")


def test_remote_code_models_are_refused_unless_opted_in(bert_path, copy_model, monkeypatch):
    folder = copy_model(bert_path, "gte-base-en-v1.5")
    monkeypatch.delenv("FLAGDEMO_ALLOW_REMOTE_CODE", raising=False)
    with pytest.raises(RemoteCodeNotAllowedError, match="trust_remote_code=True"):
        FlagAutoModel.from_finetuned(folder)
    with pytest.raises(RemoteCodeNotAllowedError, match="FLAGDEMO_ALLOW_REMOTE_CODE"):
        FlagAutoModel.from_finetuned(folder, trust_remote_code=True)
    with pytest.raises(RemoteCodeNotAllowedError, match="not a catalog model"):
        FlagModel(bert_path, trust_remote_code=True)
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    model = FlagAutoModel.from_finetuned(folder, trust_remote_code=True, use_fp16=False)
    assert model.trust_remote_code is True
    assert model.encode(["ok"]).shape == (1, 16)


def test_seed_article_code_runs_with_the_import_changed():
    model = FlagAutoModel.from_finetuned(
        "all-MiniLM-L6-v2",
        query_instruction_for_retrieval="Represent this sentence for searching relevant passages: ",
        use_fp16=True,
    )
    sentences_1 = ["I love NLP", "I love machine learning"]
    sentences_2 = ["I love BGE", "I love text retrieval"]
    similarity = model.encode(sentences_1) @ model.encode(sentences_2).T
    assert similarity.shape == (2, 2)
    assert np.all((similarity > 0) & (similarity <= 1.0 + 1e-6))

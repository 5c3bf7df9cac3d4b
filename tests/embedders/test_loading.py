from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from flagdemo.errors import MissingModelFilesError, UnknownModelError
from flagdemo.models import sources as loading


def test_local_folder_wins(bert_path):
    source = loading.resolve_source(bert_path)
    assert source.origin == "local"
    assert Path(source.path) == Path(bert_path).resolve()


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_minilm_aliases_resolve_to_the_bundled_package(name):
    source = loading.resolve_source(name)
    assert source.origin == "bundled"
    assert Path(source.path) == loading.bundled_minilm_dir()
    assert (Path(source.path) / "model.safetensors").is_file()
    assert source.entry.pooling == "mean"


@pytest.mark.parametrize(
    ("name", "hub_id"),
    [("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
     ("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")],
)  # fmt: skip
def test_bundled_defaults_fall_back_to_the_hub_without_their_package(monkeypatch, name, hub_id):
    """A Space installs requirements.txt only: without the model packages the defaults load from the hub."""
    monkeypatch.setattr(loading.catalog, "package_dir", lambda package: None)
    monkeypatch.setattr(loading.catalog, "hub_offline", lambda: False)
    source = loading.resolve_source(name)
    assert (source.origin, source.path) == ("hub", hub_id)
    assert loading.catalog.location(source.entry) == "hub"


def test_offline_unknown_hub_id_is_refused_with_suggestions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UnknownModelError, match=r"bge-small-en-v1\.5"):
        loading.resolve_source("BAAI/bge-smal-en-v1.5")
    with pytest.raises(UnknownModelError, match="hub is offline"):
        loading.resolve_source("bge-m3")


def test_missing_folders_and_files(tmp_path):
    with pytest.raises(UnknownModelError, match="does not exist"):
        loading.resolve_source(str(tmp_path / "nope" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingModelFilesError, match=r"config\.json"):
        loading.resolve_source(str(tmp_path / "empty"))
    with pytest.raises(UnknownModelError):
        loading.resolve_source("")


@pytest.fixture(scope="session")
def smollm2_folder():
    return loading.smollm2_dir()


def test_smollm2_gguf_is_converted_once_to_float_safetensors(smollm2_folder):
    weights = smollm2_folder / "model.safetensors"
    assert weights.is_file()
    config = json.loads((smollm2_folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["num_hidden_layers"] == 30
    stamp = weights.stat().st_mtime_ns
    assert loading.smollm2_dir() == smollm2_folder
    assert weights.stat().st_mtime_ns == stamp
    for alias in ("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        assert loading.resolve_source(alias).path == str(smollm2_folder)


def test_smollm2_loads_as_a_causal_lm(smollm2_folder):
    from transformers import AutoModelForCausalLM

    source = loading.resolve_source("SmolLM2-135M-Instruct")
    model = loading.load_pretrained(source, AutoModelForCausalLM, dtype=torch.float32, device="cpu")
    tokenizer = loading.load_tokenizer(source)
    assert not model.training
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    assert torch.isfinite(logits).all()
    assert tokenizer.decode(logits.argmax()).strip() == "Paris"


def test_tokenizer_keeps_the_normalizer_written_in_tokenizer_json(m3_path):
    """transformers 5 drops the tiny XLM-R tokenizer's NFKC normalizer; FlagEmbedding (transformers 4.x) applies it,
    so the full-width "？" must become "?" (id 12) instead of vanishing."""
    from transformers import AutoTokenizer

    text = "我们喜欢学习什么？"
    plain = AutoTokenizer.from_pretrained(m3_path)(text)["input_ids"]
    ours = loading.load_tokenizer(loading.resolve_source(m3_path))(text)["input_ids"]
    assert ours == [0, 4, 268, 167, 3, 12, 2]
    assert plain != ours  # documents why the restoration exists; if transformers fixes this, drop the workaround


def test_broken_model_folders_raise_flagdemo_errors(bert_path, copy_model):
    from flagdemo.errors import ModelLoadError
    from flagdemo.models.embedders import FlagModel

    no_weights = copy_model(bert_path, "no-weights", without=("model.safetensors",))
    with pytest.raises(MissingModelFilesError, match="files are missing"):
        FlagModel(no_weights, use_fp16=False)
    bad_config = copy_model(bert_path, "bad-config")
    (Path(bad_config) / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelLoadError, match="bad-config"):
        FlagModel(bad_config, use_fp16=False)

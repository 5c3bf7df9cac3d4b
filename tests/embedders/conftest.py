"""Session-scoped embedders on the committed tiny models (tests/assets/tiny, built by golden/make_tiny_models.py)."""

from __future__ import annotations

import shutil

import pytest

from flagdemo.models.embedders import BGEM3FlagModel, FlagLLMModel, FlagModel


@pytest.fixture(scope="session")
def bert_path(tiny_dir):
    return str(tiny_dir / "bert-embedder")


@pytest.fixture(scope="session")
def m3_path(tiny_dir):
    return str(tiny_dir / "xlmr-m3")


@pytest.fixture(scope="session")
def llama_path(tiny_dir):
    return str(tiny_dir / "llama-decoder")


@pytest.fixture(scope="session")
def llama_left_path(tiny_dir):
    return str(tiny_dir / "llama-decoder-left")


@pytest.fixture(scope="session")
def bert(bert_path):
    return FlagModel(bert_path, use_fp16=False, query_instruction_for_retrieval="Represent: ")


@pytest.fixture(scope="session")
def bert_mean(bert_path):
    return FlagModel(bert_path, use_fp16=False, pooling_method="mean")


@pytest.fixture(scope="session")
def m3(m3_path):
    return BGEM3FlagModel(m3_path, use_fp16=False)


@pytest.fixture(scope="session")
def llama(llama_path):
    return FlagLLMModel(llama_path, use_fp16=False, query_instruction_for_retrieval="Find the answer")


@pytest.fixture(scope="session")
def llama_left(llama_left_path):
    return FlagLLMModel(llama_left_path, use_fp16=False)


@pytest.fixture
def copy_model(tmp_path):
    """Copy a tiny model folder to tmp_path/<relative>, optionally leaving files out."""

    def copy(source: str, relative: str, *, without: tuple[str, ...] = ()) -> str:
        target = tmp_path / relative
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*without) if without else None)
        return str(target)

    return copy

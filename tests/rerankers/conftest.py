"""Session-scoped rerankers on the committed tiny models (tests/assets/tiny) and on the bundled SmolLM2."""

from __future__ import annotations

import pytest

from flagdemo.models.rerankers import FlagLLMReranker, FlagReranker, LayerWiseFlagLLMReranker

PAIRS = [
    ("what is a panda?", "The giant panda is a bear species endemic to China. " * 3),
    ("hi", "hello there"),
    ("q " * 50, "p " * 80),
    ("capital of France", "Paris is the capital and largest city of France."),
]


def layerwise(path: str, **kwargs) -> LayerWiseFlagLLMReranker:
    return LayerWiseFlagLLMReranker(path, devices="cpu", **kwargs)


@pytest.fixture(scope="session")
def make_layerwise():
    return layerwise


@pytest.fixture(scope="session")
def pairs():
    return list(PAIRS)


@pytest.fixture(scope="session")
def tiny_path(tiny_dir):
    return lambda name: str(tiny_dir / name)


@pytest.fixture(scope="session")
def bert_ce(tiny_path):
    return FlagReranker(tiny_path("bert-cross-encoder"), devices="cpu")


@pytest.fixture(scope="session")
def xlmr_ce(tiny_path):
    return FlagReranker(tiny_path("xlmr-cross-encoder"), devices="cpu")


@pytest.fixture(scope="session")
def llama_llm(tiny_path):
    return FlagLLMReranker(tiny_path("llama-decoder"), devices="cpu")


@pytest.fixture(scope="session")
def llama_left_llm(tiny_path):
    return FlagLLMReranker(tiny_path("llama-decoder-left"), devices="cpu")


@pytest.fixture(scope="session")
def llama_lens(tiny_path):
    return layerwise(tiny_path("llama-decoder"))


@pytest.fixture(scope="session")
def llama_left_lens(tiny_path):
    return layerwise(tiny_path("llama-decoder-left"))


@pytest.fixture(scope="session")
def minicpm(tiny_path):
    return layerwise(tiny_path("minicpm-layerwise"))


@pytest.fixture(scope="session")
def smollm2_llm():
    return FlagLLMReranker("SmolLM2-135M-Instruct", devices="cpu")


@pytest.fixture(scope="session")
def smollm2_lens():
    return layerwise("SmolLM2-135M-Instruct")

"""FlagAutoReranker.from_finetuned: class by model_class or by registry name, FlagEmbedding's defaults."""

from __future__ import annotations

import pytest

from flagdemo.errors import InvalidInputError, ModelLoadError, UnknownModelError
from flagdemo.models.rerankers import (
    FlagAutoReranker,
    FlagLLMReranker,
    FlagReranker,
    LayerWiseFlagLLMReranker,
    RerankerModelClass,
)


def test_the_class_itself_cannot_be_instantiated():
    with pytest.raises(OSError, match="from_finetuned"):
        FlagAutoReranker()


@pytest.mark.parametrize(
    ("folder", "model_class", "expected"),
    [
        ("bert-cross-encoder", "encoder-only-base", FlagReranker),
        ("xlmr-cross-encoder", RerankerModelClass.ENCODER_ONLY_BASE, FlagReranker),
        ("llama-decoder", "decoder-only-base", FlagLLMReranker),
        ("minicpm-layerwise", "decoder-only-layerwise", LayerWiseFlagLLMReranker),
    ],
)
def test_model_class_picks_the_class_for_local_folders(tiny_path, folder, model_class, expected):
    reranker = FlagAutoReranker.from_finetuned(tiny_path(folder), model_class=model_class, devices=["cpu"])
    assert type(reranker) is expected
    assert reranker.use_fp16 is (expected is LayerWiseFlagLLMReranker)  # reranker default False; layer-wise forces
    assert str(reranker.device) == "cpu"


def test_kwargs_reach_the_class(tiny_path):
    reranker = FlagAutoReranker.from_finetuned(
        tiny_path("bert-cross-encoder"), model_class="encoder-only-base", devices="cpu", max_length=64,
        query_max_length=16, normalize=True, passage_max_length=512,
    )  # fmt: skip
    assert (reranker.max_length, reranker.query_max_length, reranker.normalize) == (64, 16, True)
    assert all(0 < score < 1 for score in reranker.compute_score([("q", "p")]))


def test_unknown_names_and_classes_are_refused_with_sentences(tiny_path):
    with pytest.raises(UnknownModelError, match="bge-reranker"):
        FlagAutoReranker.from_finetuned("bge-reranker-lrage")
    with pytest.raises(InvalidInputError, match="not one of"):
        FlagAutoReranker.from_finetuned(tiny_path("llama-decoder"), model_class="decoder-only-huge")
    with pytest.raises(ModelLoadError, match="lightweight"):
        FlagAutoReranker.from_finetuned(tiny_path("llama-decoder"), model_class="decoder-only-lightweight")

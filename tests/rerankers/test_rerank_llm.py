"""FlagLLMReranker on the tiny Llama: the "Yes" logit at the last real token, either padding side."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from flagdemo.errors import InvalidInputError
from flagdemo.models.rerankers import FlagLLMReranker
from flagdemo.models.rerankers.inputs import DEFAULT_PROMPT


def unpadded_yes_logit(path: str, query: str, passage: str, prompt: str = DEFAULT_PROMPT) -> float:
    """The score built by hand from FlagEmbedding's recipe, one pair at a time (no padding at all)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    sequence = [tokenizer.bos_token_id, *ids("A: " + query), *ids("\n"), *ids("B: " + passage), *ids("\n")]
    sequence += ids(prompt)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([sequence])).logits
    return logits[0, -1, ids("Yes")[0]].item()


@pytest.mark.parametrize("fixture", ["llama_llm", "llama_left_llm"])
def test_batched_scores_equal_the_hand_built_unpadded_score(request, fixture, tiny_path, pairs):
    reranker = request.getfixturevalue(fixture)
    short = [pair for pair in pairs if len(pair[0]) < 40]
    expected = [unpadded_yes_logit(tiny_path("llama-decoder"), q, p) for q, p in short]
    assert reranker.compute_score(short) == pytest.approx(expected, abs=1e-5)


def test_left_and_right_padding_agree(llama_llm, llama_left_llm, pairs):
    assert llama_llm.tokenizer.padding_side == "right" and llama_left_llm.tokenizer.padding_side == "left"
    assert llama_left_llm.compute_score(pairs) == pytest.approx(llama_llm.compute_score(pairs), abs=1e-5)


@pytest.mark.parametrize("fixture", ["llama_llm", "llama_left_llm"])
def test_batches_are_padded_to_a_multiple_of_eight_on_the_tokenizers_side(request, fixture, pairs):
    reranker = request.getfixturevalue(fixture)
    batches, order, _ = reranker.padded_batches(reranker.get_detailed_inputs(pairs), reranker._settings({}))
    assert sorted(order.tolist()) == list(range(len(pairs)))
    for input_ids, attention_mask, positions in batches:
        assert input_ids.shape[1] % 8 == 0
        real = attention_mask.sum(dim=1)
        pad_column = 0 if reranker.tokenizer.padding_side == "left" else -1
        assert attention_mask[real.argmin(), pad_column] == 0
        assert (attention_mask[torch.arange(len(positions)), positions] == 1).all()


def test_prompt_and_instructions_change_the_input(llama_llm):
    default = llama_llm.compute_score(["q", "p"])
    other = llama_llm.compute_score(["q", "p"], prompt="Is B relevant to A?")
    assert default != other
    assert other == pytest.approx(
        [unpadded_yes_logit(llama_llm.model_name, "q", "p", "Is B relevant to A?")], abs=1e-5
    )


def test_long_texts_are_cut_before_the_prompt_is_appended(llama_llm):
    pair = llama_llm.get_detailed_inputs([("q " * 60, "p " * 60)])
    sep = llama_llm.tokenizer("\n", add_special_tokens=False)["input_ids"]
    prompt = llama_llm.tokenizer(DEFAULT_PROMPT, add_special_tokens=False)["input_ids"]
    # query cut to 3/4 of max_length (12), passage to max_length (16); BOS + q + sep + p fits the pair budget
    features, _ = llama_llm.build_inputs(pair, llama_llm._settings({"max_length": 16}))
    assert features[0][-len(prompt) :] == prompt
    assert len(features[0]) == 1 + 12 + len(sep) + 16 + len(sep) + len(prompt)
    # a 40-token query: only the passage side is cut so BOS + q + sep + p = max_length + len(sep) + len(prompt)
    features, _ = llama_llm.build_inputs(pair, llama_llm._settings({"max_length": 16, "query_max_length": 40}))
    assert len(features[0]) == (16 + len(sep) + len(prompt)) + len(sep) + len(prompt)
    assert features[0][1:41] == llama_llm.tokenizer(pair[0][0], add_special_tokens=False)["input_ids"][:40]


def test_normalize_and_detailed(llama_llm, pairs):
    raw = llama_llm.compute_score(pairs)
    result = llama_llm.compute_score_detailed(pairs)
    assert result.method == "yes-logit"
    assert result.scores == pytest.approx(raw, abs=1e-6)
    assert result.normalized == pytest.approx(llama_llm.compute_score(pairs, normalize=True), abs=1e-9)


def test_a_cross_encoder_is_refused_with_a_sentence(tiny_path):
    with pytest.raises(InvalidInputError, match="not a causal language model"):
        FlagLLMReranker(tiny_path("bert-cross-encoder"), devices="cpu")


def test_a_layerwise_minicpm_checkpoint_points_to_the_layerwise_class(tiny_path):
    with pytest.raises(InvalidInputError, match="LayerWiseFlagLLMReranker"):
        FlagLLMReranker(tiny_path("minicpm-layerwise"), devices="cpu")

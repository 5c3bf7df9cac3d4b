"""The logit lens on other decoder families: embeddings scaling, sliding windows, soft-capping, grouped KV heads.

Tiny random models of each family are built in a temporary folder with the tiny Llama's tokenizer; at the last layer
the lens must give FlagLLMReranker's score, and every layer must come from one pass.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GemmaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from flagdemo.models.rerankers import FlagLLMReranker, LayerWiseFlagLLMReranker

COMMON = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 512,
}
FAMILIES = {
    "gemma": (GemmaConfig, GemmaForCausalLM, {}),
    "gemma2-sliding-softcap": (
        Gemma2Config,
        Gemma2ForCausalLM,
        {"sliding_window": 8, "final_logit_softcapping": 5.0, "attn_logit_softcapping": 20.0},
    ),
    "gemma3-local-global": (
        Gemma3TextConfig,
        Gemma3ForCausalLM,
        {"sliding_window": 8, "sliding_window_pattern": 2, "final_logit_softcapping": 5.0},
    ),
    "qwen3-sliding": (
        Qwen3Config,
        Qwen3ForCausalLM,
        {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 2},
    ),
    "mistral-window": (MistralConfig, MistralForCausalLM, {"sliding_window": 8}),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_folder(request, tmp_path_factory, tiny_path):
    config_class, model_class, extra = FAMILIES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(f"{tiny_path('llama-decoder')}/{name}", folder / name)
    torch.manual_seed(0)
    config = config_class(vocab_size=49152, **COMMON, **extra)
    model_class(config).save_pretrained(folder)
    return request.param, str(folder)


def test_lens_last_layer_equals_the_yes_logit_for_each_family(family_folder, pairs):
    family, folder = family_folder
    llm = FlagLLMReranker(folder, devices="cpu")
    lens = LayerWiseFlagLLMReranker(folder, devices="cpu")
    assert lens.method == "logit-lens", family
    expected = llm.compute_score(pairs)
    assert lens.compute_score(pairs, cutoff_layers=4) == pytest.approx(expected, abs=1e-5), family
    together = lens.compute_score(pairs, cutoff_layers=[1, 4])
    assert together[1] == pytest.approx(expected, abs=1e-5), family
    assert together[0] == pytest.approx(lens.compute_score(pairs, cutoff_layers=1), abs=1e-6), family


def test_the_self_check_refuses_a_lens_that_disagrees_with_the_forward(llama_llm):
    from flagdemo.errors import ModelLoadError
    from flagdemo.models.rerankers.lens import LogitLens

    lens = LogitLens(llama_llm.model, llama_llm.yes_loc, "tiny llama")
    batches, _, _ = llama_llm.padded_batches([("q", "p")], llama_llm._settings({}))
    input_ids, attention_mask, _ = batches[0]
    lens.check_against_forward(input_ids, attention_mask, "tiny llama")  # agrees: no error
    lens.softcap = 0.01  # a head the model does not have
    with pytest.raises(ModelLoadError, match="does not reproduce"):
        lens.check_against_forward(input_ids, attention_mask, "tiny llama")


def test_a_model_without_decoder_layers_is_refused(bert_ce):
    from flagdemo.errors import ModelLoadError
    from flagdemo.models.rerankers.lens import LogitLens

    with pytest.raises(ModelLoadError, match="not built like a transformers decoder"):
        LogitLens(bert_ce.model, 0, "tiny bert")

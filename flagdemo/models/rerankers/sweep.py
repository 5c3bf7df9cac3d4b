"""``layer_sweep``: every layer's score for a list of pairs from ONE truncated pass, with what each cutoff costs.

This backs the explorer's layer-cutoff view: how the ranking forms through the depth of the model, and how much
time stopping at a layer saves. Layer-wise MiniCPM checkpoints use their own heads; any other causal LM (through
FlagLLMReranker or LayerWiseFlagLLMReranker) uses the logit lens.
"""

from __future__ import annotations

import time
from typing import Any

from flagdemo.errors import InvalidInputError
from flagdemo.models.records import LayerSweepResult
from flagdemo.models.rerankers.layerwise import LayerWiseFlagLLMReranker
from flagdemo.models.rerankers.llm import DecoderReranker, FlagLLMReranker, check_layers


def layer_sweep(reranker_or_model: DecoderReranker | str, pairs, layers=None, **kwargs: Any) -> LayerSweepResult:
    """Raw scores of ``pairs`` at ``layers`` (default: every valid layer; a list or a ``range``), one pass per batch.

    ``reranker_or_model`` is a FlagLLMReranker / LayerWiseFlagLLMReranker, or a model name or folder (loaded as a
    LayerWiseFlagLLMReranker on the default device). Other keyword arguments are ``compute_score``'s (batch_size,
    max_length, prompt …). ``cumulative_seconds[i]`` is the time until ``layers[i]``'s scores were ready.
    """
    reranker = _as_reranker(reranker_or_model)
    scorer = reranker.scorer if isinstance(reranker, LayerWiseFlagLLMReranker) else reranker.lens
    valid = list(scorer.valid_layers)
    chosen = valid if layers is None else check_layers(layers, valid, reranker.model_name, scorer.method)
    settings = reranker._settings({key: value for key, value in kwargs.items() if key != "cutoff_layers"})
    settings["layers"] = chosen
    sentence_pairs = reranker.get_detailed_inputs(pairs)
    started = time.perf_counter()
    scores, n_tokens, cumulative = reranker.with_oom_retry(
        lambda: reranker.layer_pass(scorer, sentence_pairs, settings, timed=True), settings
    )
    seconds = time.perf_counter() - started
    return LayerSweepResult(chosen, scores, scorer.method, seconds, cumulative, int(n_tokens))


def _as_reranker(reranker_or_model: DecoderReranker | str) -> DecoderReranker:
    if isinstance(reranker_or_model, (LayerWiseFlagLLMReranker, FlagLLMReranker)):
        return reranker_or_model
    if isinstance(reranker_or_model, str):
        return LayerWiseFlagLLMReranker(reranker_or_model)
    raise InvalidInputError(
        f"layer_sweep needs an LLM reranker or a model name, not {type(reranker_or_model).__name__}; "
        "cross-encoders have no layer-cutoff score."
    )

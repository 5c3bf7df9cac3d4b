"""How many tokens a model can read, and a typed refusal before a forward pass that would read past that.

Encoders with a learned absolute position table (BERT, XLM-R, RoBERTa ...) index it with the token position, so a
longer input ends in a raw torch IndexError / RuntimeError deep inside the model. RoBERTa-style models number positions
from ``padding_idx + 1``, which leaves ``max_position_embeddings - (pad_token_id + 1)`` usable positions (XLM-R:
514 → 512). Rotary decoders (Llama, Qwen, Gemma, MiniCPM ...) have no table to run off, so they get no limit here.

The check runs on the tokenized inputs, not on the requested ``max_length``: FlagEmbedding's default ``max_length=512``
must keep working for short texts on any model, and a number is never silently clamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flagdemo.errors import InvalidInputError

# model_type → whether positions start after the padding index (RoBERTa's numbering).
ABSOLUTE_POSITION_MODELS: dict[str, bool] = {
    "bert": False,
    "distilbert": False,
    "electra": False,
    "ernie": False,
    "roberta": True,
    "xlm-roberta": True,
    "xlm-roberta-xl": True,
    "camembert": True,
    "mpnet": True,
}


def readable_tokens(config: Any) -> int | None:
    """The most tokens one input may have for this config's position table; None when there is no hard limit."""
    model_type = getattr(config, "model_type", None)
    positions = getattr(config, "max_position_embeddings", None)
    if model_type not in ABSOLUTE_POSITION_MODELS or isinstance(positions, bool) or not isinstance(positions, int):
        return None
    if ABSOLUTE_POSITION_MODELS[model_type]:
        pad_token_id = getattr(config, "pad_token_id", None)
        positions -= (1 if pad_token_id is None else int(pad_token_id)) + 1
    return positions if positions > 0 else None


def ensure_inputs_fit(
    config: Any, token_counts: Sequence[int], *, model_name: str, max_length: int, what: str = "Text"
) -> None:
    """Refuse, before any forward pass, an input whose token count runs past the model's position table."""
    limit = readable_tokens(config)
    if limit is None:
        return
    for index, count in enumerate(token_counts):
        if count > limit:
            raise InvalidInputError(
                f"{what} {index} has {count} tokens with max_length={max_length}, but {model_name!r} reads at most "
                f"{limit} tokens; choose max_length ≤ {limit}."
            )

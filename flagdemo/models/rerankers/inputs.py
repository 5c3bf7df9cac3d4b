"""Turning query–passage pairs into model inputs exactly as FlagEmbedding 1.4 does.

transformers 5.x fast tokenizers no longer have ``prepare_for_model``, which FlagEmbedding uses to join a query and
a passage (and to cut the passage only). ``PairBuilder`` reproduces it: the special-token layout of a pair
(``[CLS] q [SEP] p [SEP]`` for BERT, ``<s> q </s></s> p </s>`` for XLM-R) is read once from the tokenizer itself,
and the ``only_second`` truncation follows transformers 4.x to the token, including its quirk of leaving a pair
untouched when the passage is too short to absorb the cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from flagdemo.errors import EmptyInputError, InvalidInputError

DEFAULT_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a "
    "prediction of either 'Yes' or 'No'."
)
LLM_SEPARATOR = "\n"


def as_pair_list(sentence_pairs: object) -> list[tuple[str, str]]:
    """One ``[query, passage]`` or a list of them, checked, as a list of tuples (FlagEmbedding's accepted shapes)."""
    if isinstance(sentence_pairs, str):
        raise InvalidInputError(
            "compute_score needs [query, passage] pairs, not a single string; pass e.g. [['what is a panda?', "
            "'The giant panda is a bear.']]."
        )
    if not isinstance(sentence_pairs, Sequence) or isinstance(sentence_pairs, bytes):
        raise InvalidInputError(
            f"compute_score needs a [query, passage] pair or a list of pairs, not {type(sentence_pairs).__name__}."
        )
    if len(sentence_pairs) == 0:
        raise EmptyInputError("The list of [query, passage] pairs is empty; give at least one pair to score.")
    if isinstance(sentence_pairs[0], str):
        sentence_pairs = [sentence_pairs]
    pairs: list[tuple[str, str]] = []
    for index, pair in enumerate(sentence_pairs):
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            shape = f"a string {pair!r:.40}" if isinstance(pair, str) else f"{pair!r:.60}"
            raise InvalidInputError(
                f"Pair {index} is {shape}; every item must be a [query, passage] pair of exactly two strings."
            )
        query, passage = pair
        if not isinstance(query, str) or not isinstance(passage, str):
            raise InvalidInputError(
                f"Pair {index} holds {type(query).__name__} and {type(passage).__name__}; query and passage must "
                "both be strings."
            )
        pairs.append((query, passage))
    return pairs


def format_instruction(instruction_format: str, instruction: str, text: str) -> str:
    """FlagEmbedding's ``get_detailed_instruct``: a literal backslash-n in the format becomes a newline."""
    if "\\n" in instruction_format:
        instruction_format = instruction_format.replace("\\n", "\n")
    return instruction_format.format(instruction, text)


def apply_instructions(
    pairs: list[tuple[str, str]],
    query_instruction: str | None,
    query_format: str,
    passage_instruction: str | None,
    passage_format: str,
) -> list[tuple[str, str]]:
    """Prefix queries and passages with their instructions, each only when it is set (``get_detailed_inputs``)."""
    return [
        (
            query if query_instruction is None else format_instruction(query_format, query_instruction, query),
            passage
            if passage_instruction is None
            else format_instruction(passage_format, passage_instruction, passage),
        )
        for query, passage in pairs
    ]


def tokenize_texts(
    tokenizer, texts: list[str], max_length: int, batch_size: int, **tokenizer_kwargs
) -> list[list[int]]:
    """Token ids without special tokens, cut to ``max_length``, in chunks of ``batch_size`` (the pre-tokenize step)."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), max(batch_size, 1)):
        chunk = texts[start : start + max(batch_size, 1)]
        ids.extend(
            tokenizer(
                chunk, return_tensors=None, add_special_tokens=False, max_length=max_length, truncation=True,
                **tokenizer_kwargs,
            )["input_ids"]
        )  # fmt: skip
    return ids


def truncate_only_second(first: list[int], second: list[int], max_length: int, extra: int, side: str) -> list[int]:
    """transformers 4.x ``truncate_sequences(..., 'only_second')``: cut the passage so the total fits.

    When the passage is not strictly longer than the cut, 4.x logs an error and leaves it whole; so does this.
    """
    overflow = len(first) + len(second) + extra - max_length
    if overflow <= 0 or len(second) <= overflow:
        return second
    return second[overflow:] if side == "left" else second[:-overflow]


@dataclass(frozen=True)
class _Slot:
    kind: str  # "special", "first" or "second"
    token_id: int
    type_id: int


class PairBuilder:
    """``tokenizer.prepare_for_model(first, second, truncation='only_second', max_length=...)`` for any tokenizer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.with_token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        self.truncation_side = getattr(tokenizer, "truncation_side", "right")
        self.slots = self._read_pair_layout(tokenizer)
        self.num_special = sum(slot.kind == "special" for slot in self.slots)

    @staticmethod
    def _read_pair_layout(tokenizer) -> list[_Slot]:
        """Encode a probe pair and note where the special tokens and the two texts sit, with their type ids."""
        first_ids = tokenizer("a", add_special_tokens=False)["input_ids"]
        second_ids = tokenizer("b", add_special_tokens=False)["input_ids"]
        encoded = tokenizer("a", "b", add_special_tokens=True, return_token_type_ids=True)
        ids = encoded["input_ids"]
        type_ids = encoded.get("token_type_ids") or [0] * len(ids)
        if encoded.encodings:
            sequence_ids = encoded.sequence_ids(0)
        else:  # a slow tokenizer: locate the two texts by their ids
            start = _find(ids, first_ids, 0)
            second_start = _find(ids, second_ids, start + len(first_ids))
            sequence_ids = [None] * len(ids)
            for offset in range(len(first_ids)):
                sequence_ids[start + offset] = 0
            for offset in range(len(second_ids)):
                sequence_ids[second_start + offset] = 1
        slots: list[_Slot] = []
        for position, (token_id, sequence_id) in enumerate(zip(ids, sequence_ids, strict=True)):
            if sequence_id is None:
                slots.append(_Slot("special", token_id, type_ids[position]))
            else:
                kind = "first" if sequence_id == 0 else "second"
                if not slots or slots[-1].kind != kind:
                    slots.append(_Slot(kind, -1, type_ids[position]))
        return slots

    def build(self, first: list[int], second: list[int], max_length: int) -> dict[str, list[int]]:
        """Special tokens added, passage cut so the total is at most ``max_length``, no padding."""
        second = truncate_only_second(first, second, max_length, self.num_special, self.truncation_side)
        input_ids: list[int] = []
        type_ids: list[int] = []
        for slot in self.slots:
            piece = [slot.token_id] if slot.kind == "special" else first if slot.kind == "first" else second
            input_ids.extend(piece)
            type_ids.extend([slot.type_id] * len(piece))
        features = {"input_ids": input_ids, "attention_mask": [1] * len(input_ids)}
        if self.with_token_types:
            features["token_type_ids"] = type_ids
        return features


def _find(haystack: list[int], needle: list[int], start: int) -> int:
    for index in range(start, len(haystack) - len(needle) + 1):
        if haystack[index : index + len(needle)] == needle:
            return index
    raise InvalidInputError("The tokenizer's pair encoding does not contain the two texts; it cannot score pairs.")


def llm_pair_ids(
    query_ids: list[int],
    passage_ids: list[int],
    *,
    bos_id: int | None,
    sep_ids: list[int],
    prompt_ids: list[int],
    encode_max_length: int,
    truncation_side: str = "right",
) -> list[int]:
    """``[BOS] A: q \\n B: p \\n prompt``: the passage side cut to ``encode_max_length``, then sep + prompt added."""
    first = ([bos_id] if bos_id is not None else []) + query_ids
    second = truncate_only_second(first, sep_ids + passage_ids, encode_max_length, 0, truncation_side)
    return first + second + sep_ids + prompt_ids


def llm_bos(tokenizer, *, always: bool) -> int | None:
    """The BOS to prepend: FlagLLMReranker only if it exists and differs from PAD; the layer-wise class always."""
    bos = tokenizer.bos_token_id
    if always:
        return bos
    return bos if bos is not None and bos != tokenizer.pad_token_id else None


def pad_batch(
    features: list[dict[str, list[int]]],
    *,
    pad_token_id: int,
    padding_side: str,
    pad_to_multiple_of: int | None = None,
    pad_token_type_id: int = 0,
) -> dict[str, torch.Tensor]:
    """``tokenizer.pad(padding=True, ...)``: pad to the longest (rounded up to a multiple) on the given side."""
    longest = max(len(item["input_ids"]) for item in features)
    if pad_to_multiple_of:
        longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    fill = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": pad_token_type_id}
    batch: dict[str, list[list[int]]] = {key: [] for key in features[0]}
    for item in features:
        missing = longest - len(item["input_ids"])
        for key, values in item.items():
            padding = [fill[key]] * missing
            batch[key].append(padding + values if padding_side == "left" else values + padding)
    return {key: torch.tensor(rows, dtype=torch.long) for key, rows in batch.items()}


def last_real_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token per row, by FlagEmbedding's test: a full last column means left padding."""
    batch_size, length = attention_mask.shape
    if int(attention_mask[:, -1].sum()) == batch_size:
        return torch.full((batch_size,), length - 1, dtype=torch.long, device=attention_mask.device)
    return attention_mask.sum(dim=1) - 1


def length_order(lengths: list[int]) -> np.ndarray:
    """FlagEmbedding's processing order: ``np.argsort(-length)`` (numpy's default, unstable, sort)."""
    return np.argsort([-length for length in lengths])


def sigmoid(score: float) -> float:
    """``1 / (1 + exp(-x))`` as a Python float, computed as FlagEmbedding does."""
    return float(1 / (1 + np.exp(-score)))

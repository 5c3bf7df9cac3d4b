"""Pair validation and the token layout FlagEmbedding builds (prepare_for_model, BOS rule, pad-to-8)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.models.rerankers.inputs import (
    PairBuilder,
    as_pair_list,
    last_real_positions,
    llm_bos,
    llm_pair_ids,
    pad_batch,
    truncate_only_second,
)


def test_one_pair_and_a_list_of_pairs_are_accepted():
    assert as_pair_list(["q", "p"]) == [("q", "p")]
    assert as_pair_list([("q1", "p1"), ["q2", "p2"]]) == [("q1", "p1"), ("q2", "p2")]


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        ([], EmptyInputError, "empty"),
        ("just a string", InvalidInputError, "single string"),
        ([("q", "p"), ("only one",)], InvalidInputError, "Pair 1"),
        ([("q", "p", "extra")], InvalidInputError, "exactly two strings"),
        ([("q", 3)], InvalidInputError, "must both be strings"),
        (42, InvalidInputError, "not int"),
    ],
)
def test_malformed_pairs_give_a_sentence(bad, error, words):
    with pytest.raises(error, match=words):
        as_pair_list(bad)


def test_xlmr_pair_layout_is_s_q_double_separator_p(tiny_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir / "xlmr-cross-encoder")
    builder = PairBuilder(tokenizer)
    query = tokenizer("hello", add_special_tokens=False)["input_ids"]
    passage = tokenizer("world", add_special_tokens=False)["input_ids"]
    built = builder.build(query, passage, 512)
    tokens = tokenizer.convert_ids_to_tokens(built["input_ids"])
    expected = ["<s>", *tokenizer.convert_ids_to_tokens(query), "</s>", "</s>"]
    expected += [*tokenizer.convert_ids_to_tokens(passage), "</s>"]
    assert tokens == expected
    assert "token_type_ids" not in built


def test_bert_pair_has_segment_ids_and_matches_the_tokenizers_own_pair_encoding(tiny_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir / "bert-cross-encoder")
    builder = PairBuilder(tokenizer)
    query, passage = "what is a panda?", "the giant panda is a bear species endemic to china. " * 4
    built = builder.build(
        tokenizer(query, add_special_tokens=False)["input_ids"],
        tokenizer(passage, add_special_tokens=False)["input_ids"],
        24,
    )
    reference = tokenizer(query, passage, truncation="only_second", max_length=24)
    assert built["input_ids"] == reference["input_ids"]
    assert built["token_type_ids"] == reference["token_type_ids"]
    assert len(built["input_ids"]) == 24


def test_only_second_truncation_leaves_a_too_short_passage_alone_like_transformers_4():
    assert truncate_only_second([1] * 10, [2] * 5, max_length=12, extra=0, side="right") == [2, 2]
    # 10 + 3 + 0 - 8 = 5 to remove, the passage has only 3: transformers 4.x logs an error and keeps it whole
    assert truncate_only_second([1] * 10, [2] * 3, max_length=8, extra=0, side="right") == [2, 2, 2]
    assert truncate_only_second([1] * 2, [2, 3, 4], max_length=4, extra=0, side="left") == [3, 4]


def test_llm_input_is_bos_query_sep_passage_sep_prompt_with_the_passage_cut():
    ids = llm_pair_ids([10, 11], [20, 21, 22, 23], bos_id=1, sep_ids=[5], prompt_ids=[7, 8], encode_max_length=6)
    # first = [1, 10, 11]; second = [5, 20, 21, 22, 23] cut to 3 tokens so first + second = 6; then sep + prompt
    assert ids == [1, 10, 11, 5, 20, 21, 5, 7, 8]


def test_bos_rule_needs_a_bos_different_from_pad(tiny_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir / "llama-decoder")
    assert tokenizer.bos_token_id is not None and tokenizer.bos_token_id != tokenizer.pad_token_id
    assert llm_bos(tokenizer, always=False) == tokenizer.bos_token_id
    tokenizer.pad_token = tokenizer.bos_token
    assert llm_bos(tokenizer, always=False) is None
    assert llm_bos(tokenizer, always=True) == tokenizer.bos_token_id


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_to_a_multiple_of_eight_on_either_side(side):
    batch = pad_batch(
        [{"input_ids": [5] * 3, "attention_mask": [1] * 3}, {"input_ids": [6] * 9, "attention_mask": [1] * 9}],
        pad_token_id=0,
        padding_side=side,
        pad_to_multiple_of=8,
    )
    assert batch["input_ids"].shape == (2, 16)
    mask = batch["attention_mask"]
    assert mask.sum(dim=1).tolist() == [3, 9]
    positions = last_real_positions(mask)
    assert positions.tolist() == ([15, 15] if side == "left" else [2, 8])
    assert (batch["input_ids"][torch.arange(2), positions] == torch.tensor([5, 6])).all()

"""A max_length beyond the position table: a sentence before any forward pass, never a torch crash or a clamp."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from flagdemo.errors import InvalidInputError
from flagdemo.models.positions import readable_tokens

LONG_TEXT = "word " * 1000


@pytest.mark.parametrize(
    ("model_type", "positions", "pad_token_id", "expected"),
    [
        ("bert", 512, 0, 512),  # bge-*-en: positions 0..511
        ("xlm-roberta", 514, 1, 512),  # bge-m3 style: positions start after padding_idx 1
        ("xlm-roberta", 8194, 1, 8192),  # bge-m3 itself
        ("roberta", 514, 1, 512),
        ("llama", 2048, 2, None),  # rotary: no table to run off
        ("qwen2", 32768, None, None),
        ("bert", None, 0, None),  # a config that does not say
    ],
)
def test_readable_tokens_follows_the_position_table(model_type, positions, pad_token_id, expected):
    config = SimpleNamespace(model_type=model_type, max_position_embeddings=positions, pad_token_id=pad_token_id)
    assert readable_tokens(config) == expected


def test_the_committed_tiny_models_read_what_their_configs_allow(bert, m3, llama):
    assert readable_tokens(bert.model.config) == 512
    assert readable_tokens(m3._backbone().config) == 512
    assert readable_tokens(llama.model.config) is None


def test_a_text_past_the_table_is_refused_before_the_forward_pass(bert_path, count_forwards):
    from flagdemo.models.embedders import FlagModel

    embedder = FlagModel(bert_path, use_fp16=False)
    calls = count_forwards(embedder.model)
    with pytest.raises(InvalidInputError) as caught:
        embedder.encode([LONG_TEXT], max_length=600)
    message = str(caught.value)
    assert "has 600 tokens with max_length=600" in message
    assert "reads at most 512 tokens; choose max_length ≤ 512." in message
    assert calls == []


def test_the_refusal_names_the_offending_text(bert):
    with pytest.raises(InvalidInputError, match=r"^Text 1 has 600 tokens"):
        bert.encode(["short", LONG_TEXT, "also short"], max_length=600)
    with pytest.raises(InvalidInputError, match="choose max_length ≤ 512"):
        bert.encode_detailed(["short", LONG_TEXT], mode="query", max_length=600)


def test_a_large_max_length_is_kept_for_texts_that_fit(bert):
    """FlagEmbedding's numbers for short texts do not depend on max_length: nothing is refused or clamped."""
    texts = ["what is a panda?", "The giant panda is a bear species endemic to China."]
    np.testing.assert_array_equal(bert.encode(texts, max_length=600), bert.encode(texts, max_length=512))


def test_the_full_table_is_usable(bert, m3):
    """512 tokens exactly: the default max_length reads the whole table on BERT and on XLM-R (514 - 2)."""
    assert np.isfinite(bert.encode([LONG_TEXT], max_length=512)).all()
    assert np.isfinite(m3.encode([LONG_TEXT], max_length=512)["dense_vecs"]).all()


def test_xlmr_counts_the_padding_offset(m3):
    with pytest.raises(InvalidInputError, match="reads at most 512 tokens"):
        m3.encode([LONG_TEXT], max_length=513)
    with pytest.raises(InvalidInputError, match="reads at most 512 tokens"):
        m3.compute_score([("q", LONG_TEXT)], max_passage_length=600)


def test_a_rotary_decoder_is_not_refused(llama):
    embedding = llama.encode(["word " * 100], max_length=4096)
    assert np.isfinite(embedding).all()

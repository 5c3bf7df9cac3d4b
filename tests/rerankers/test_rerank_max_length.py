"""Rerankers: a pair past the position table is a sentence before any forward pass; remote-code catalog models are
refused before anything is resolved, downloaded or loaded."""

from __future__ import annotations

import math
import shutil

import pytest

from flagdemo.errors import InvalidInputError, RemoteCodeNotAllowedError
from flagdemo.models.rerankers import FlagAutoReranker, FlagLLMReranker, FlagReranker

LONG_TEXT = "word " * 1000
REMOTE_CODE_RERANKER = "jina-reranker-v2-base-multilingual"  # catalog: needs_remote_code=True


# ---- max_length past the position table ------------------------------------------------------------------------


def test_a_cross_encoder_pair_past_the_table_is_refused_before_the_forward_pass(tiny_path, count_forwards):
    reranker = FlagReranker(tiny_path("bert-cross-encoder"), devices="cpu")
    calls = count_forwards(reranker.model)
    with pytest.raises(InvalidInputError) as caught:
        reranker.compute_score([("q", "short"), ("q", LONG_TEXT)], max_length=600)
    message = str(caught.value)
    assert message.startswith("Pair 1 has 600 tokens with max_length=600")
    assert message.endswith("reads at most 512 tokens; choose max_length ≤ 512.")
    assert calls == []


def test_xlmr_cross_encoder_counts_the_padding_offset(xlmr_ce):
    with pytest.raises(InvalidInputError, match="reads at most 512 tokens"):
        xlmr_ce.compute_score_detailed([("q", LONG_TEXT)], max_length=514)
    assert math.isfinite(xlmr_ce.compute_score([("q", LONG_TEXT)], max_length=512)[0])


def test_a_large_max_length_is_kept_for_pairs_that_fit(bert_ce, pairs):
    """The requested max_length is not refused or clamped when every pair fits: scores equal the 512 ones."""
    assert bert_ce.compute_score(pairs, max_length=600) == bert_ce.compute_score(pairs, max_length=512)
    assert math.isfinite(bert_ce.compute_score([("q", LONG_TEXT)], max_length=512)[0])


def test_a_constructor_max_length_is_checked_per_call(tiny_path):
    reranker = FlagReranker(tiny_path("bert-cross-encoder"), devices="cpu", max_length=1024)
    assert math.isfinite(reranker.compute_score(("q", "short passage"))[0])
    with pytest.raises(InvalidInputError, match="choose max_length ≤ 512"):
        reranker.compute_score(("q", LONG_TEXT))


def test_a_rotary_llm_reranker_is_not_refused(llama_llm):
    """The LLM budget (max_length + separator + prompt) has no hard limit on a rotary model: it scores."""
    (score,) = llama_llm.compute_score([("q", "word " * 300)], max_length=4096)
    assert math.isfinite(score)


def test_the_llm_budget_is_checked_when_the_model_has_a_table(tiny_path, monkeypatch):
    """encode_max_length = max_length + separator + prompt: refused when that reaches past a real table."""
    reranker = FlagLLMReranker(tiny_path("llama-decoder"), devices="cpu")
    monkeypatch.setattr(reranker.model.config, "model_type", "bert")  # pretend: a learned table of 2048 positions
    with pytest.raises(InvalidInputError, match="reads at most 2048 tokens; choose max_length ≤ 2048"):
        reranker.compute_score([("q", "word " * 3000)], max_length=2100)


# ---- remote code ------------------------------------------------------------------------------------------------


@pytest.fixture
def nothing_resolved(monkeypatch):
    """Fail the test if the reranker gets as far as resolving the model (the hub or its cache)."""

    def refuse(*args, **kwargs):
        raise AssertionError("resolve_source was reached; the refusal must come first")

    monkeypatch.setattr("flagdemo.models.rerankers.base.resolve_source", refuse)


@pytest.mark.parametrize(
    ("trust", "allow"),
    [(None, "1"), (False, "1"), (True, ""), (True, "true")],
)
def test_a_remote_code_reranker_is_refused_up_front(monkeypatch, nothing_resolved, trust, allow):
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", allow)
    with pytest.raises(RemoteCodeNotAllowedError, match=repr(REMOTE_CODE_RERANKER)):
        FlagAutoReranker.from_finetuned(REMOTE_CODE_RERANKER, trust_remote_code=trust)


def test_the_reranker_classes_refuse_it_too(monkeypatch, nothing_resolved):
    monkeypatch.delenv("FLAGDEMO_ALLOW_REMOTE_CODE", raising=False)
    with pytest.raises(RemoteCodeNotAllowedError, match="FLAGDEMO_ALLOW_REMOTE_CODE=1"):
        FlagReranker("jinaai/" + REMOTE_CODE_RERANKER)


def test_a_local_folder_never_runs_remote_code(tiny_path, monkeypatch, nothing_resolved):
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    with pytest.raises(RemoteCodeNotAllowedError, match="not a catalog model that needs remote code"):
        FlagReranker(tiny_path("bert-cross-encoder"), trust_remote_code=True)


def test_a_remote_code_reranker_loads_when_everything_allows_it(tmp_path, tiny_path, bert_ce, pairs, monkeypatch):
    """The tiny BERT cross-encoder under the catalog name (no auto_map inside, so no code runs): the one way in."""
    shutil.copytree(tiny_path("bert-cross-encoder"), tmp_path / REMOTE_CODE_RERANKER)
    monkeypatch.setenv("FLAGDEMO_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("FLAGDEMO_ALLOW_REMOTE_CODE", "1")
    reranker = FlagAutoReranker.from_finetuned(REMOTE_CODE_RERANKER, trust_remote_code=True, devices="cpu")
    assert isinstance(reranker, FlagReranker)
    assert reranker.trust_remote_code is True
    assert reranker.compute_score(pairs) == pytest.approx(bert_ce.compute_score(pairs), abs=1e-6)

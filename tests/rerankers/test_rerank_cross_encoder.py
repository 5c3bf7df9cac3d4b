"""FlagReranker on tiny BERT and XLM-R cross-encoders: return types, order, truncation, sigmoid."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from flagdemo.errors import EmptyInputError, InvalidInputError
from flagdemo.models.records import RerankResult


@pytest.mark.parametrize("fixture", ["bert_ce", "xlmr_ce"])
def test_scores_match_a_direct_forward_of_each_pair(request, fixture, tiny_path):
    reranker = request.getfixturevalue(fixture)
    name = "bert-cross-encoder" if fixture == "bert_ce" else "xlmr-cross-encoder"
    tokenizer = AutoTokenizer.from_pretrained(tiny_path(name))
    model = AutoModelForSequenceClassification.from_pretrained(tiny_path(name)).eval()
    pairs = [("what is a panda?", "The giant panda is a bear."), ("hi", "hello there, how are you today?")]
    scores = reranker.compute_score(pairs)
    with torch.no_grad():
        direct = [model(**tokenizer(q, p, return_tensors="pt")).logits.item() for q, p in pairs]
    assert scores == pytest.approx(direct, abs=1e-5), (scores, direct)


def test_one_pair_gives_a_one_item_list_of_float(bert_ce):
    scores = bert_ce.compute_score(["hi", "hello there"])
    assert isinstance(scores, list) and len(scores) == 1 and isinstance(scores[0], float)


def test_normalize_is_the_sigmoid_of_the_raw_logit(xlmr_ce, pairs):
    raw = xlmr_ce.compute_score(pairs)
    squashed = xlmr_ce.compute_score(pairs, normalize=True)
    assert squashed == pytest.approx([1 / (1 + math.exp(-score)) for score in raw], abs=1e-12)
    assert all(0 < score < 1 for score in squashed)


def test_input_order_is_restored_after_length_sorting(bert_ce, pairs):
    forward = bert_ce.compute_score(pairs, batch_size=2)
    backward = bert_ce.compute_score(pairs[::-1], batch_size=2)
    assert backward[::-1] == pytest.approx(forward, abs=1e-5)
    one_by_one = [bert_ce.compute_score(pair)[0] for pair in pairs]
    assert one_by_one == pytest.approx(forward, abs=1e-5)


def test_long_queries_are_cut_to_query_max_length_and_passages_fill_max_length(xlmr_ce):
    settings = xlmr_ce._settings({"max_length": 40})
    assert settings["query_max_length"] == 30  # max_length * 3 // 4
    built = xlmr_ce.build_inputs([("q " * 100, "p " * 100)], settings)[0]
    assert len(built["input_ids"]) == 40
    separators = [i for i, t in enumerate(built["input_ids"]) if t == xlmr_ce.tokenizer.sep_token_id]
    assert separators[0] == 31  # <s> + 30 query tokens, then </s></s>
    assert separators[:2] == [31, 32]


def test_passage_max_length_is_accepted_and_ignored_like_flagembedding(bert_ce, pairs, tiny_path):
    from flagdemo.models.rerankers import FlagReranker

    with_it = FlagReranker(tiny_path("bert-cross-encoder"), devices="cpu", passage_max_length=8)
    assert with_it.compute_score(pairs) == bert_ce.compute_score(pairs)
    assert bert_ce.compute_score(pairs, passage_max_length=4) == bert_ce.compute_score(pairs)


def test_detailed_result_has_raw_sigmoid_timings_and_method(bert_ce, pairs):
    result = bert_ce.compute_score_detailed(pairs)
    assert isinstance(result, RerankResult)
    assert result.scores == pytest.approx(bert_ce.compute_score(pairs), abs=1e-6)
    assert result.normalized == pytest.approx(bert_ce.compute_score(pairs, normalize=True), abs=1e-6)
    assert result.method == "cross-encoder"
    assert result.timings.n_items == len(pairs) and result.timings.n_tokens > 0 and result.timings.run_seconds > 0
    assert result.layer is None


def test_errors_are_sentences(bert_ce):
    with pytest.raises(EmptyInputError, match="empty"):
        bert_ce.compute_score([])
    with pytest.raises(InvalidInputError, match="exactly two strings"):
        bert_ce.compute_score([("q", "p"), ("q",)])
    with pytest.raises(InvalidInputError, match="batch_size"):
        bert_ce.compute_score([("q", "p")], batch_size=0)


def test_attributes_for_the_app(bert_ce, tiny_path):
    assert bert_ce.model_name == tiny_path("bert-cross-encoder")
    assert bert_ce.source.origin == "local"
    assert bert_ce.num_layers == bert_ce.model.config.num_hidden_layers
    assert bert_ce.valid_layers is None
    assert bert_ce.load_seconds > 0


def test_out_of_memory_shrinks_the_batch_by_three_quarters_and_starts_over(bert_ce, pairs, monkeypatch):
    from flagdemo.errors import ResourceLimitError

    real = type(bert_ce)._score_pairs
    seen = []

    def flaky(self, pairs, settings):
        seen.append(settings["batch_size"])
        if settings["batch_size"] > 2:
            raise torch.OutOfMemoryError("simulated")
        return real(self, pairs, settings)

    monkeypatch.setattr(type(bert_ce), "_score_pairs", flaky)
    with torch.no_grad():
        expected = real(bert_ce, bert_ce.get_detailed_inputs(pairs), bert_ce._settings({}))[0]
    assert bert_ce.compute_score(pairs, batch_size=4) == pytest.approx(expected, abs=1e-5)
    assert seen == [4, 3, 2]

    monkeypatch.setattr(type(bert_ce), "_score_pairs", lambda *_: (_ for _ in ()).throw(torch.OutOfMemoryError()))
    with pytest.raises(ResourceLimitError, match="out of memory"):
        bert_ce.compute_score(pairs, batch_size=1)

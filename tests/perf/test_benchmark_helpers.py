"""The benchmark suite measures what it says: its baselines compute the same numbers, its arithmetic is right."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.app_bench import percentile
from benchmarks.llm_precision import agreement
from benchmarks.report import Report
from benchmarks.run import (
    alternate,
    encoder_flops,
    mixed_texts,
    plain_transformers_scores,
    ranking_agreement,
)
from flagdemo.models.rerankers import FlagLLMReranker
from flagdemo.models.rerankers.inputs import DEFAULT_PROMPT


def test_alternate_rotates_the_first_contender_and_times_every_round(monkeypatch):
    """On a fake clock each call takes a known time: the medians are exact, and the warm-up is not counted."""
    import benchmarks.run

    clock = [0.0]
    monkeypatch.setattr(benchmarks.run, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    durations = {"a": iter([100.0, 3.0, 1.0, 5.0]), "b": iter([100.0, 10.0, 40.0, 20.0])}  # first: the warm-up
    calls: list[str] = []

    def contender(name: str):
        def run():
            calls.append(name)
            clock[0] += next(durations[name])

        return run

    medians = alternate({"a": contender("a"), "b": contender("b")}, runs=3, warmup=True)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert medians == {"a": 3.0, "b": 20.0}


def test_mixed_texts_are_deterministic_and_5_to_200_words():
    texts = mixed_texts(50)
    assert texts == mixed_texts(50) and texts != mixed_texts(50, seed=1)
    assert all(5 <= len(text.split()) <= 200 for text in texts)


def test_encoder_flops_counts_linear_weights_and_attention():
    class Config:
        hidden_size, num_hidden_layers, intermediate_size = 4, 2, 8

    class Model:
        config = Config()

    linear = 2 * (4 * 4 * 4 + 2 * 4 * 8)  # per token, both layers
    assert encoder_flops(Model(), [3]) == 2 * linear * 3 + 2 * 4 * 3 * 3 * 4


@pytest.mark.parametrize(("folder", "batch_size"), [("llama-decoder", 2), ("llama-decoder-left", 1)])
def test_plain_transformers_baseline_scores_like_flagllmreranker(tiny_dir, folder, batch_size):
    """Same prompt, same "Yes" logit (left padding without position ids is FlagEmbedding's own quirk: batch 1)."""
    reranker = FlagLLMReranker(str(tiny_dir / folder), devices="cpu", use_fp16=False)
    pairs = [("what is a cat", "a cat is a small animal"), ("hi", "a longer passage about nothing at all, twice")]
    expected = reranker.compute_score(pairs, batch_size=batch_size)
    plain = plain_transformers_scores(reranker.model, reranker.tokenizer, pairs, batch_size, DEFAULT_PROMPT)
    np.testing.assert_allclose(plain, expected, atol=1e-4, rtol=0)


def test_percentile_and_report_table():
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0 and percentile([1.0, 2.0], 0.95) == 2.0
    report = Report("m")
    report.add("encode", "x", "1 text/s", texts_per_second=1)
    report.skip("cuda", "no CUDA device")
    assert "| cuda | skipped | no CUDA device |" in report.table()
    assert report.data["sections"]["encode"]["x"] == {"texts_per_second": 1}


def test_ranking_agreement_counts_kept_top1_sets_and_orders():
    passages = np.eye(4)
    queries = np.array([[0.9, 0.5, 0.1, 0.0], [0.0, 0.1, 0.5, 0.9]])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    swapped = queries.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]  # query 0's first two passages trade places
    agreement = ranking_agreement((queries, passages), (swapped, passages), k=3)
    assert agreement["queries"] == 2
    assert agreement["top1_kept"] == 1 and agreement["same_topk_set"] == 2 and agreement["same_topk_order"] == 1
    assert agreement["min_topk_overlap"] == 3 and agreement["mean_topk_overlap"] == 3.0
    assert agreement["max_score_shift"] == pytest.approx(0.4 / np.sqrt(1.07))  # 0.9 and 0.5 traded, normalised
    assert agreement["min_cosine"] < 1.0 and agreement["mean_cosine"] < 1.0
    assert ranking_agreement((queries, passages), (queries, passages), k=3)["min_cosine"] == pytest.approx(1.0)


def test_umap_size_reports_its_time_and_its_own_peak_memory(capsys):
    import json

    from benchmarks.app_bench import umap_in_this_process

    measured = umap_in_this_process(60, 2)
    assert measured["runs"] == 2 and measured["seconds"] > 0
    assert measured["peak_rss_mb"] >= measured["warm_up_peak_rss_mb"] > 50
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == measured


def test_precision_agreement_counts_changed_tops_and_orders():
    import pandas as pd

    index = pd.DataFrame({"query_id": ["q1", "q1", "q1", "q2", "q2", "q2"]})
    exact = np.array([3.0, 2.0, 1.0, 0.0, 5.0, 4.0])
    rounded = np.array([3.0, 2.0, 1.0, 0.0, 4.0, 4.5])  # q2's top two swap
    found = agreement(index, exact, rounded)
    assert found["queries whose top passage changes"] == 1
    assert found["largest score difference"] == 1.0 and found["largest difference / fp32 spread"] == 0.2
    assert found["mean Kendall tau per query"] == pytest.approx((1.0 + 1 / 3) / 2, abs=1e-4)

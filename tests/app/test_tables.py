"""Table builders: columns and the numbers in them."""

from __future__ import annotations

import numpy as np
import pytest

from flagdemo import tables


def test_ranks_from_scores_is_one_based_and_stable_on_ties():
    assert tables.ranks_from_scores([0.2, 0.9, 0.5]) == [3, 1, 2]
    assert tables.ranks_from_scores([1.0, 1.0, 0.0]) == [1, 2, 3]


def test_encode_table_has_norms_and_first_dimensions():
    vectors = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    table = tables.encode_table(["a", "b"], vectors, token_counts=[3, 5], truncated=[False, True], n_dims=2)
    assert list(table.columns) == ["#", "text", "tokens", "truncated", "norm", "dim 0", "dim 1"]
    np.testing.assert_allclose(table["norm"], [5.0, 2.0])
    assert table["truncated"].tolist() == [False, True]
    assert table["dim 1"].tolist() == [4.0, 0.0]


def test_embedding_summary_mean_pairwise_cosine():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    summary = dict(zip(*tables.embedding_summary(vectors).to_dict("list").values(), strict=True))
    assert summary["texts"] == 3 and summary["dimensions"] == 2
    expected = (0.0 + 2 * np.sqrt(0.5)) / 3
    assert summary["mean pairwise cosine"] == pytest.approx(expected)
    assert summary["max norm"] == pytest.approx(np.sqrt(2))


def test_top_k_table_lists_the_best_passages_per_query():
    scores = np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.3]])
    table = tables.top_k_table(scores, ["q1", "q2"], ["a", "b", "c"], k=2)
    assert table["passage"].tolist() == ["b", "c", "a", "c"]
    assert table["rank"].tolist() == [1, 2, 1, 2]
    assert table["score"].tolist() == [0.9, 0.5, 0.8, 0.3]


def test_rerank_table_adds_score_sigmoid_and_rank_per_method():
    table = tables.rerank_table(
        ["a", "b"], {"cos": [0.2, 0.7], "llm": [3.0, -1.0]}, {"cos": None, "llm": [0.95, 0.27]}
    )
    assert list(table.columns) == ["#", "passage", "cos score", "cos rank", "llm score", "llm sigmoid", "llm rank"]
    assert table["cos rank"].tolist() == [2, 1]
    assert table["llm rank"].tolist() == [1, 2]


def test_kendall_tau_table_is_symmetric_with_ones_on_the_diagonal():
    table = tables.kendall_tau_table({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1], "c": [1, 2, 4, 3]})
    values = table.drop(columns="method").to_numpy()
    np.testing.assert_allclose(values, values.T)
    np.testing.assert_allclose(np.diag(values), 1.0)
    assert values[0, 1] == pytest.approx(-1.0)
    assert values[0, 2] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair


def test_layer_tables():
    ranking = tables.layer_ranking_table([2, 4], np.array([[0.1, 0.5], [0.9, 0.2]]), ["a", "b"])
    assert ranking["L2"].tolist() == [2, 1] and ranking["L4"].tolist() == [1, 2]
    metrics = tables.layer_metrics_table([2, 4], {"nDCG@5": [0.5, 1.0]}, [0.01, 0.02])
    assert metrics.columns.tolist() == ["layer", "nDCG@5", "ms to layer"]
    np.testing.assert_allclose(metrics["ms to layer"], [10.0, 20.0])


def test_projection_and_neighbour_tables():
    coords = tables.projection_table(["p1", "p2"], ["a", "b"], ["x", "y"], np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert coords.columns.tolist() == ["id", "kind", "group", "text", "x", "y"]
    scores = np.array([[0.1, 0.9, 0.4]])
    table, edges = tables.neighbours_table(scores, ["q"], ["p1", "p2", "p3"], ["a", "b", "c"], k=2)
    assert table["id"].tolist() == ["p2", "p3"]
    assert edges == [(0, 1), (0, 2)]

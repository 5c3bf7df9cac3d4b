"""Metrics: hand-computed cases, then agreement with ir-measures (trec_eval), scikit-learn and scipy on random runs."""

from __future__ import annotations

import math

import ir_measures
import numpy as np
import pytest
from ir_measures import AP, RR, R, nDCG
from ir_measures import P as Precision
from scipy import stats
from sklearn.metrics import ndcg_score

from flagdemo.analysis import metrics
from flagdemo.errors import InvalidInputError

JUDGED = {"d1": 2, "d2": 1, "d3": 0}
RUN = ["d3", "d2", "d9"]  # d9 is not judged: relevance 0


class TestHandComputed:
    def test_ndcg_uses_linear_gain_and_ideal_from_all_judged(self):
        # DCG = 0/log2(2) + 1/log2(3) + 0; ideal = 2/log2(2) + 1/log2(3)
        expected = (1 / math.log2(3)) / (2 + 1 / math.log2(3))
        assert metrics.ndcg_at_k(RUN, JUDGED, 10) == pytest.approx(expected)
        assert metrics.ndcg_at_k(RUN, JUDGED, 10) == pytest.approx(0.2398124666)

    def test_ndcg_cutoff_and_perfect_order(self):
        assert metrics.ndcg_at_k(["d1", "d2"], JUDGED, 2) == pytest.approx(1.0)
        assert metrics.ndcg_at_k(["d2", "d1"], JUDGED, 1) == pytest.approx(0.5)
        # the second relevant passage just outside the cutoff: 2 / (2 + 1/log2 3)
        assert metrics.ndcg_at_k(["d1", "d3", "d2"], JUDGED, 2) == pytest.approx(2 / (2 + 1 / math.log2(3)))

    def test_reciprocal_rank_recall_precision_and_ap(self):
        assert metrics.reciprocal_rank_at_k(RUN, JUDGED, 10) == 0.5
        assert metrics.reciprocal_rank_at_k(RUN, JUDGED, 1) == 0.0
        assert metrics.reciprocal_rank_at_k(RUN, JUDGED, 10, min_relevance=2) == 0.0
        assert metrics.recall_at_k(RUN, JUDGED, 10) == 0.5
        assert metrics.precision_at_k(RUN, JUDGED, 2) == 0.5
        assert metrics.precision_at_k(RUN, JUDGED, 10) == 0.1
        # one hit at rank 2 (precision 1/2), two relevant passages in all
        assert metrics.average_precision(RUN, JUDGED) == 0.25
        assert metrics.average_precision(["d1", "x", "d2"], JUDGED) == pytest.approx((1 + 2 / 3) / 2)

    def test_query_without_relevant_passages_scores_zero(self):
        judged = {"d1": 0}
        assert metrics.ndcg_at_k(["d1"], judged, 5) == 0.0
        assert metrics.recall_at_k(["d1"], judged, 5) == 0.0
        assert metrics.average_precision(["d1"], judged) == 0.0

    def test_bad_inputs_raise_readable_errors(self):
        with pytest.raises(InvalidInputError, match="positive whole number"):
            metrics.ndcg_at_k(RUN, JUDGED, 0)
        with pytest.raises(InvalidInputError, match="twice"):
            metrics.recall_at_k(["d1", "d1"], JUDGED, 3)
        with pytest.raises(InvalidInputError, match="same length"):
            metrics.kendall_tau([1, 2], [1, 2, 3])

    def test_ranking_from_scores_breaks_ties_by_descending_id(self):
        assert metrics.ranking_from_scores({"a": 1.0, "b": 2.0, "c": 1.0}) == ["b", "c", "a"]

    def test_jaccard(self):
        assert metrics.jaccard(["a", "b", "c"], ["b", "c", "d"]) == 0.5
        assert metrics.jaccard([], []) == 1.0

    def test_kendall_tau_b_by_hand(self):
        # one discordant pair of six
        assert metrics.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
        # a tie in x: S = 2, tau-b = 2 / sqrt(2 * 3)
        assert metrics.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
        assert math.isnan(metrics.kendall_tau([1, 1, 1], [1, 2, 3]))

    def test_spearman_by_hand(self):
        assert metrics.spearman_rho([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
        # y ranks (1.5, 1.5, 3): centred dot 1.5 over sqrt(2 * 1.5)
        assert metrics.spearman_rho([1, 2, 3], [1, 1, 2]) == pytest.approx(1.5 / math.sqrt(3))
        np.testing.assert_allclose(metrics.average_ranks([10, 20, 10, 5]), [2.5, 4, 2.5, 1])

    def test_ranking_positions_compares_two_id_rankings(self):
        items = ["a", "b", "c", "d"]
        same = metrics.ranking_positions(["a", "b", "c"], items)
        assert same.tolist() == [0.0, -1.0, -2.0, -3.0]
        assert metrics.kendall_tau(same, metrics.ranking_positions(["a", "b", "c"], items)) == 1.0


def random_collection(seed: int, n_queries: int = 40, with_ties: bool = False):
    """Random graded judgements and runs (with unjudged and unretrieved passages) for the reference comparisons."""
    rng = np.random.default_rng(seed)
    judgements: dict[str, dict[str, int]] = {}
    runs: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        docs = [f"d{i:03d}" for i in range(60)]
        judged = rng.choice(docs, size=rng.integers(3, 25), replace=False)
        judgements[qid] = {str(d): int(rng.choice([0, 0, 1, 2])) for d in judged}
        retrieved = rng.choice(docs, size=rng.integers(5, 50), replace=False)
        scores = rng.normal(size=retrieved.size)
        if with_ties:
            scores = np.round(scores, 1)
        runs[qid] = {str(d): float(s) for d, s in zip(retrieved, scores, strict=True)}
    return judgements, runs


@pytest.mark.parametrize(("seed", "with_ties"), [(0, False), (1, False), (2, True), (3, True)])
def test_agrees_with_ir_measures_on_random_runs(seed, with_ties):
    judgements, runs = random_collection(seed, with_ties=with_ties)
    # RR@k comes from ir-measures' msmarco provider, which breaks score ties by ascending id; trec_eval (and we) use
    # descending id, so with ties RR@k is checked through trec_eval's uncut RR instead.
    measures = [nDCG @ 10, nDCG @ 3, RR, RR @ 10, R @ 10, R @ 5, Precision @ 5, AP]
    reference: dict[tuple[str, str], float] = {}
    for result in ir_measures.iter_calc(measures, judgements, runs):
        reference[(result.query_id, str(result.measure))] = result.value
    compared = 0
    for qid, judged in judgements.items():
        if not any(rel > 0 for rel in judged.values()):
            continue
        ranking = metrics.ranking_from_scores(runs[qid])
        ours = {
            "nDCG@10": metrics.ndcg_at_k(ranking, judged, 10),
            "nDCG@3": metrics.ndcg_at_k(ranking, judged, 3),
            "RR": metrics.reciprocal_rank_at_k(ranking, judged, len(ranking)),
            "R@10": metrics.recall_at_k(ranking, judged, 10),
            "R@5": metrics.recall_at_k(ranking, judged, 5),
            "P@5": metrics.precision_at_k(ranking, judged, 5),
            "AP": metrics.average_precision(ranking, judged),
        }
        if not with_ties:
            ours["RR@10"] = metrics.reciprocal_rank_at_k(ranking, judged, 10)
        for name, value in ours.items():
            assert value == pytest.approx(reference[(qid, name)], abs=1e-9), (qid, name)
            compared += 1
    assert compared >= 7 * 25


def test_ndcg_agrees_with_scikit_learn_when_all_judged_items_are_scored():
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(2, 40))
        relevance = rng.integers(0, 3, size=n)
        relevance[rng.integers(0, n)] = 2  # at least one relevant item
        scores = rng.permutation(n).astype(float)  # distinct scores: sklearn averages over ties
        ids = [f"p{i:02d}" for i in range(n)]
        judged = dict(zip(ids, relevance.tolist(), strict=True))
        ranking = metrics.ranking_from_scores(dict(zip(ids, scores, strict=True)))
        for k in (1, 5, 10):
            expected = ndcg_score(relevance[None, :], scores[None, :], k=k)
            assert metrics.ndcg_at_k(ranking, judged, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_rank_correlations_agree_with_scipy_including_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=25).astype(float)  # many ties
    y = x + rng.integers(-3, 4, size=25)
    assert metrics.kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert metrics.spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    z = rng.normal(size=25)
    assert metrics.kendall_tau(z, y) == pytest.approx(stats.kendalltau(z, y).statistic, abs=1e-12)
    assert metrics.spearman_rho(z, y) == pytest.approx(stats.spearmanr(z, y).statistic, abs=1e-12)


class TestKnnPreservation:
    def test_a_faithful_map_keeps_every_neighbourhood(self):
        # points on a quarter circle; the map puts each at its angle on a line. Cosine distance 1 - cos(Δangle)
        # grows with |Δangle|, so the neighbours agree exactly (random spacing avoids ties)
        angles = np.random.default_rng(0).uniform(0, np.pi / 2, size=30)
        embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        line = np.stack([angles, np.zeros_like(angles)], axis=1)
        assert metrics.knn_preservation(embeddings, line, k=3) == 1.0

    def test_agrees_with_scikit_learn_neighbours(self):
        from sklearn.neighbors import NearestNeighbors

        rng = np.random.default_rng(1)
        embeddings, coords = rng.normal(size=(40, 8)), rng.normal(size=(40, 2))
        k = 4
        high = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(embeddings).kneighbors(return_distance=False)
        low = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(return_distance=False)
        expected = np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(high, low, strict=True)])
        assert metrics.knn_preservation(embeddings, coords, k=k) == pytest.approx(expected)
        assert metrics.knn_preservation(embeddings, coords, k=k) < 0.5  # random map: neighbourhoods lost

    def test_bad_shapes(self):
        with pytest.raises(InvalidInputError, match="one map point per embedding"):
            metrics.knn_preservation(np.ones((3, 2)), np.ones((4, 2)))
        with pytest.raises(InvalidInputError, match="smaller than the number of points"):
            metrics.knn_preservation(np.eye(3), np.eye(3)[:, :2], k=3)

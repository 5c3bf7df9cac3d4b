"""Retrieval metrics and rank correlations, in plain numpy so the numbers can be read and checked line by line.

Definitions follow trec_eval (and therefore ir-measures / pytrec_eval), the reference the tests compare against:

- A *ranking* is a sequence of passage ids, best first. *Judgements* map passage id → graded relevance (0, 1, 2, ...);
  passages that are not judged count as relevance 0.
- nDCG@k: gain = relevance (linear, not 2^rel − 1), discount log2(rank + 1) with ranks starting at 1, and the ideal
  DCG is built from *all* judged passages of the query (not only the retrieved ones), cut at k.
- RR@k (MRR@k when averaged), Recall@k and AP treat relevance ≥ ``min_relevance`` (default 1) as relevant. AP
  divides by the number of all relevant passages, so relevant passages never retrieved lower it.
- A query without any relevant passage scores 0 on every measure (trec_eval's convention).
- Ties in scores: :func:`ranking_from_scores` orders tied passages by id in *descending* order, which is what
  trec_eval does, so runs with tied scores give the same numbers here and there.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

from flagdemo.analysis import scoring
from flagdemo.errors import InvalidInputError

Judgements = Mapping[str, float]


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInputError(f"The cutoff k must be a positive whole number, got {k!r}.")
    return int(k)


def _check_ranking(ranking: Sequence[str]) -> list[str]:
    ranked = list(ranking)
    seen: set[str] = set()
    for item in ranked:
        if item in seen:
            raise InvalidInputError(f"The ranking lists passage {item!r} twice; each passage may appear only once.")
        seen.add(item)
    return ranked


def ranking_from_scores(scores: Mapping[str, float]) -> list[str]:
    """Passage ids ordered by score, highest first; ties broken by id in descending order (as trec_eval does)."""
    return [pid for pid, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def dcg(gains: Iterable[float]) -> float:
    """Discounted cumulative gain of gains listed in rank order: Σ gain_i / log2(i + 1), i starting at 1."""
    values = np.asarray(list(gains), dtype=np.float64)
    if values.size == 0:
        return 0.0
    discounts = np.log2(np.arange(2, values.size + 2, dtype=np.float64))
    return float(np.sum(values / discounts))


def ndcg_at_k(ranking: Sequence[str], judgements: Judgements, k: int) -> float:
    """nDCG@k with graded gains; the ideal ranking uses every judged passage, so missing relevant ones cost."""
    k = _check_k(k)
    ranked = _check_ranking(ranking)[:k]
    gains = [max(float(judgements.get(pid, 0.0)), 0.0) for pid in ranked]
    ideal_gains = sorted((max(float(rel), 0.0) for rel in judgements.values()), reverse=True)[:k]
    ideal = dcg(ideal_gains)
    return dcg(gains) / ideal if ideal > 0 else 0.0


def reciprocal_rank_at_k(ranking: Sequence[str], judgements: Judgements, k: int, min_relevance: float = 1) -> float:
    """1 / rank of the first relevant passage within the top k, or 0 when none is there (MRR@k is its mean)."""
    k = _check_k(k)
    for position, pid in enumerate(_check_ranking(ranking)[:k], start=1):
        if judgements.get(pid, 0) >= min_relevance:
            return 1.0 / position
    return 0.0


def recall_at_k(ranking: Sequence[str], judgements: Judgements, k: int, min_relevance: float = 1) -> float:
    """Share of all relevant passages that appear in the top k."""
    k = _check_k(k)
    relevant = {pid for pid, rel in judgements.items() if rel >= min_relevance}
    if not relevant:
        return 0.0
    found = sum(1 for pid in _check_ranking(ranking)[:k] if pid in relevant)
    return found / len(relevant)


def precision_at_k(ranking: Sequence[str], judgements: Judgements, k: int, min_relevance: float = 1) -> float:
    """Share of the top k that is relevant; a ranking shorter than k still divides by k (trec_eval's P@k)."""
    k = _check_k(k)
    found = sum(1 for pid in _check_ranking(ranking)[:k] if judgements.get(pid, 0) >= min_relevance)
    return found / k


def average_precision(ranking: Sequence[str], judgements: Judgements, min_relevance: float = 1) -> float:
    """AP over the whole ranking: mean of precision at each relevant hit, divided by *all* relevant passages."""
    relevant = {pid for pid, rel in judgements.items() if rel >= min_relevance}
    if not relevant:
        return 0.0
    hits = 0
    precision_sum = 0.0
    for position, pid in enumerate(_check_ranking(ranking), start=1):
        if pid in relevant:
            hits += 1
            precision_sum += hits / position
    return precision_sum / len(relevant)


def jaccard(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    """|A ∩ B| / |A ∪ B| of two sets of ids (for the overlap of two top-k lists); two empty sets give 1."""
    set_a, set_b = set(a), set(b)
    union = set_a | set_b
    return len(set_a & set_b) / len(union) if union else 1.0


def _paired(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.asarray(x, dtype=np.float64).ravel()
    second = np.asarray(y, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise InvalidInputError(
            f"Rank correlation needs two score lists of the same length, got {first.size} and {second.size}."
        )
    if np.isnan(first).any() or np.isnan(second).any():
        raise InvalidInputError("Rank correlation cannot use NaN scores; remove or replace them first.")
    return first, second


def kendall_tau(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b between two score lists over the same items (higher score = ranked higher).

    tau-b corrects for ties: (concordant − discordant) / sqrt((n0 − ties_x)(n0 − ties_y)), n0 = n(n−1)/2. It is NaN
    when there are fewer than two items or when either list is constant (no ordering to compare), as in scipy.
    """
    first, second = _paired(x, y)
    n = first.size
    if n < 2:
        return math.nan
    upper = np.triu_indices(n, k=1)
    sign_x = np.sign(first[:, None] - first[None, :])[upper]
    sign_y = np.sign(second[:, None] - second[None, :])[upper]
    pairs_x = np.count_nonzero(sign_x)
    pairs_y = np.count_nonzero(sign_y)
    if pairs_x == 0 or pairs_y == 0:
        return math.nan
    return float(np.sum(sign_x * sign_y) / math.sqrt(pairs_x * pairs_y))


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n in ascending order of value, tied values sharing the mean of their ranks (scipy's 'average')."""
    array = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(array, kind="mergesort")
    sorted_values = array[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], array.size]
    ranks = np.empty(array.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman_rho(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of the average ranks (ties share ranks); NaN if either list is constant."""
    first, second = _paired(x, y)
    if first.size < 2:
        return math.nan
    ranks_x = average_ranks(first) - (first.size + 1) / 2.0
    ranks_y = average_ranks(second) - (second.size + 1) / 2.0
    denominator = math.sqrt(float(np.dot(ranks_x, ranks_x)) * float(np.dot(ranks_y, ranks_y)))
    if denominator == 0:
        return math.nan
    return float(np.dot(ranks_x, ranks_y) / denominator)


def ranking_positions(ranking: Sequence[str], items: Sequence[str]) -> np.ndarray:
    """Scores for rank correlation from a ranking: best item gets the highest score, items not ranked share the lowest.

    Lets :func:`kendall_tau` / :func:`spearman_rho` compare two rankings of ids (e.g. two models' top-k lists).
    """
    position = {pid: index for index, pid in enumerate(_check_ranking(ranking))}
    missing = len(position)
    return np.asarray([-float(position.get(item, missing)) for item in items], dtype=np.float64)


def _neighbours(distances: np.ndarray, k: int) -> np.ndarray:
    masked = distances.copy()
    np.fill_diagonal(masked, np.inf)
    return np.argsort(masked, axis=1, kind="mergesort")[:, :k]


def knn_preservation(embeddings: np.ndarray, coords: np.ndarray, k: int = 5) -> float:
    """How well a 2D/3D map keeps neighbourhoods: mean share of each point's k nearest neighbours (cosine, in the
    embedding space) that are also among its k nearest on the map (Euclidean). 1 = every neighbourhood kept.

    A map can look tidy and still score low: that is the distortion the projection notebook is about.
    """
    k = _check_k(k)
    high = np.asarray(embeddings, dtype=np.float64)
    low = np.asarray(coords, dtype=np.float64)
    if high.ndim != 2 or low.ndim != 2 or len(high) != len(low):
        raise InvalidInputError(f"Need one map point per embedding, got {len(high)} embeddings and {len(low)} points.")
    if k >= len(high):
        raise InvalidInputError(f"k must be smaller than the number of points ({len(high)}), got {k}.")
    cosine_distance = 1.0 - scoring.cosine(high, high)
    euclidean = np.linalg.norm(low[:, None, :] - low[None, :, :], axis=-1)
    near_high, near_low = _neighbours(cosine_distance, k), _neighbours(euclidean, k)
    kept = [len(set(a) & set(b)) for a, b in zip(near_high.tolist(), near_low.tolist(), strict=True)]
    return float(np.mean(kept) / k)


def graded_metrics(scores: Sequence[float], grades: Sequence[float], k: int) -> dict[str, float]:
    """nDCG@k and MRR@k of one query's ranking (passages sorted by score) against graded labels, one per passage."""
    ids = [f"p{i + 1}" for i in range(len(grades))]
    ranking = ranking_from_scores(dict(zip(ids, map(float, scores), strict=True)))
    judgements = dict(zip(ids, grades, strict=True))
    return {f"nDCG@{k}": ndcg_at_k(ranking, judgements, k), f"MRR@{k}": reciprocal_rank_at_k(ranking, judgements, k)}

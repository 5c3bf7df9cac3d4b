"""The one home for vector maths: unit rows, cosine, sigmoid and BGE-M3's lexical and ColBERT scores.

Everything here is float64 numpy and model-free, so the engine, the evaluation code and the tabs score the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so dot products are cosines."""
    matrix = np.asarray(vectors, dtype=np.float64)
    return matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (rows × rows)."""
    return unit_rows(a) @ unit_rows(b).T


def inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inner products in float64: FlagEmbedding's score for embeddings it already normalised."""
    return np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64).T


def sigmoid(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """The logistic function a reranker's raw logit goes through to read as a 0–1 score."""
    return 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))


def lexical_score(query_weights: Mapping[str, float], passage_weights: Mapping[str, float]) -> float:
    """BGE-M3's sparse score: the sum over shared tokens of the two weights' product (not normalised)."""
    return float(sum(float(w) * float(passage_weights[t]) for t, w in query_weights.items() if t in passage_weights))


def colbert_score(query_vecs: np.ndarray, passage_vecs: np.ndarray) -> float:
    """BGE-M3's ColBERT score: each query vector's best dot product with a passage vector, averaged."""
    q, p = np.asarray(query_vecs, dtype=np.float64), np.asarray(passage_vecs, dtype=np.float64)
    if len(q) == 0 or len(p) == 0:
        return 0.0
    return float((q @ p.T).max(axis=1).sum() / len(q))


def lexical_matrix(queries: Sequence[Mapping[str, float]], passages: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Sparse scores of every query × passage pair."""
    return np.array([[lexical_score(q, p) for p in passages] for q in queries], dtype=np.float64)


def colbert_matrix(queries: Sequence[np.ndarray], passages: Sequence[np.ndarray]) -> np.ndarray:
    """ColBERT scores of every query × passage pair."""
    return np.array([[colbert_score(q, p) for p in passages] for q in queries], dtype=np.float64)


def colbert_alignment(query_vecs: np.ndarray, passage_vecs: np.ndarray) -> np.ndarray:
    """Every query token vector's dot product with every passage token vector: what the ColBERT score maximises."""
    return np.asarray(query_vecs, dtype=np.float64) @ np.asarray(passage_vecs, dtype=np.float64).T


def colbert_tokens(tokens: Sequence[str], n_vectors: int) -> list[str]:
    """The tokens that match a text's ColBERT vectors: ColBERT drops the first (CLS) position."""
    kept = list(tokens[1 : 1 + n_vectors])
    return kept + [f"[{i}]" for i in range(len(kept), n_vectors)]


def weighted_mean(matrices: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """FlagEmbedding's combined score: the weighted mean of dense, sparse and ColBERT scores."""
    total = float(sum(weights))
    return sum(float(w) * np.asarray(m, dtype=np.float64) for m, w in zip(matrices, weights, strict=True)) / total

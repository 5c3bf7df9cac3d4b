"""pandas tables for the app: pure functions from numbers and texts to DataFrames (what the UI shows and downloads).

Columns have readable names because they are shown as they are; numbers stay numbers (rounding is left to the
display) so tests and CSV downloads see exact values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from flagdemo.figures import short_label


def ranks_from_scores(scores: Sequence[float]) -> list[int]:
    """1-based ranks, highest score first; ties keep input order (stable), like a sorted result list."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks.tolist()


def encode_table(
    texts: Sequence[str],
    embeddings: np.ndarray,
    *,
    token_counts: Sequence[int],
    truncated: Sequence[bool],
    n_dims: int = 4,
) -> pd.DataFrame:
    """One row per text: its length in tokens, whether it was cut, its vector's norm and first dimensions."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    table = pd.DataFrame(
        {
            "#": np.arange(1, len(texts) + 1),
            "text": list(texts),
            "tokens": list(token_counts),
            "truncated": [bool(t) for t in truncated],
            "norm": np.linalg.norm(vectors, axis=1),
        }
    )
    for d in range(min(n_dims, vectors.shape[1])):
        table[f"dim {d}"] = vectors[:, d]
    return table


def embedding_summary(embeddings: np.ndarray) -> pd.DataFrame:
    """A few numbers that tell normalised from raw vectors and a crowded space from a spread one."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.clip(norms[:, None], 1e-12, None)
    cosines = unit @ unit.T
    off_diagonal = cosines[~np.eye(len(vectors), dtype=bool)]
    rows = [
        ("texts", float(len(vectors))),
        ("dimensions", float(vectors.shape[1])),
        ("mean norm", float(norms.mean())),
        ("min norm", float(norms.min())),
        ("max norm", float(norms.max())),
        ("mean value", float(vectors.mean())),
        ("mean pairwise cosine", float(off_diagonal.mean()) if off_diagonal.size else float("nan")),
    ]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def top_k_table(scores: np.ndarray, queries: Sequence[str], passages: Sequence[str], *, k: int = 3) -> pd.DataFrame:
    """For each query its ``k`` best passages with scores: the retrieval view of a similarity matrix."""
    matrix = np.asarray(scores, dtype=float)
    rows = []
    for qi, query in enumerate(queries):
        order = np.argsort(-matrix[qi], kind="stable")[:k]
        for rank, pi in enumerate(order, start=1):
            rows.append(
                {"query": short_label(query, 60), "rank": rank, "passage": passages[pi], "score": matrix[qi, pi]}
            )
    return pd.DataFrame(rows, columns=["query", "rank", "passage", "score"])


def rerank_table(
    passages: Sequence[str],
    raw: Mapping[str, Sequence[float]],
    normalized: Mapping[str, Sequence[float] | None],
) -> pd.DataFrame:
    """Side by side per method: raw score, sigmoid (when the method has one) and rank of every passage."""
    table = pd.DataFrame({"#": np.arange(1, len(passages) + 1), "passage": list(passages)})
    for method, scores in raw.items():
        table[f"{method} score"] = list(map(float, scores))
        sigmoid = normalized.get(method)
        if sigmoid is not None:
            table[f"{method} sigmoid"] = list(map(float, sigmoid))
        table[f"{method} rank"] = ranks_from_scores(scores)
    return table


def kendall_tau_table(raw: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Pairwise Kendall τ between methods' scores: 1 = same order, -1 = reversed."""
    methods = list(raw)
    values = np.ones((len(methods), len(methods)))
    for i, a in enumerate(methods):
        for j, b in enumerate(methods):
            if i < j:
                tau = kendalltau(raw[a], raw[b]).statistic if len(raw[a]) > 1 else float("nan")
                values[i, j] = values[j, i] = tau
    table = pd.DataFrame(values, columns=methods)
    table.insert(0, "method", methods)
    return table


def timing_table(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """One row per method or model: what it cost (load and run seconds, items, tokens per second)."""
    return pd.DataFrame(list(rows), columns=["method", "model", "load s", "run s", "items", "tokens/s", "note"])


def layer_ranking_table(layers: Sequence[int], scores: np.ndarray, passages: Sequence[str]) -> pd.DataFrame:
    """Rank of every passage at every layer: where the order settles tells how deep the model must go."""
    matrix = np.asarray(scores, dtype=float)
    table = pd.DataFrame({"#": np.arange(1, len(passages) + 1), "passage": [short_label(p, 60) for p in passages]})
    for li, layer in enumerate(layers):
        table[f"L{layer}"] = ranks_from_scores(matrix[li])
    return table


def layer_metrics_table(
    layers: Sequence[int], metrics: Mapping[str, Sequence[float]], seconds: Sequence[float] | None
) -> pd.DataFrame:
    """Quality and cost per cutoff layer, the numbers behind the sweep chart."""
    table = pd.DataFrame({"layer": list(layers)})
    for name, values in metrics.items():
        table[name] = list(map(float, values))
    if seconds is not None:
        table["ms to layer"] = [1000.0 * s for s in seconds]
    return table


def projection_table(
    ids: Sequence[str],
    texts: Sequence[str],
    groups: Sequence[str],
    coords: np.ndarray,
    *,
    kind: str = "passage",
) -> pd.DataFrame:
    """Coordinates with ids, texts and colours: the downloadable CSV of a map."""
    points = np.asarray(coords, dtype=float)
    table = pd.DataFrame({"id": list(ids), "kind": kind, "group": list(groups), "text": list(texts)})
    for axis, name in enumerate("xyz"[: points.shape[1]]):
        table[name] = points[:, axis]
    return table


def neighbours_table(
    scores: np.ndarray, query_texts: Sequence[str], ids: Sequence[str], texts: Sequence[str], *, k: int
) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """Each query's ``k`` nearest corpus points (by cosine) as a table, and the (query, point) edges to draw."""
    matrix = np.asarray(scores, dtype=float)
    rows, edges = [], []
    for qi, query in enumerate(query_texts):
        for rank, pi in enumerate(np.argsort(-matrix[qi], kind="stable")[:k], start=1):
            rows.append(
                {
                    "query": f"Q{qi + 1}: {short_label(query, 50)}",
                    "rank": rank,
                    "id": ids[pi],
                    "text": texts[pi],
                    "cosine": matrix[qi, pi],
                }
            )
            edges.append((qi, int(pi)))
    return pd.DataFrame(rows, columns=["query", "rank", "id", "text", "cosine"]), edges

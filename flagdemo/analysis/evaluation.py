"""Evaluate embedders and rerankers on a labelled retrieval set; every result is a pandas DataFrame.

The functions only rely on the FlagEmbedding API names (``encode_queries`` / ``encode_corpus`` on embedders,
``compute_score`` on rerankers) so they work with flagdemo's engine classes and with FlagEmbedding itself.

A *run* is a DataFrame with one row per retrieved passage: ``query_id``, ``rank`` (1 = best), ``passage_id``,
``score`` and ``stage`` ('retrieve' or 'rerank'). Metrics are those of :mod:`flagdemo.analysis.metrics` (trec_eval
definitions); a query the run does not cover scores 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from flagdemo.analysis import metrics, scoring
from flagdemo.data.datasets import RetrievalSet
from flagdemo.errors import EmptyInputError, InvalidInputError, LayerOutOfRangeError

RUN_COLUMNS = ["query_id", "rank", "passage_id", "score", "stage"]


class Embedder(Protocol):
    def encode_queries(self, queries: list[str], **kwargs: Any) -> Any: ...

    def encode_corpus(self, corpus: list[str], **kwargs: Any) -> Any: ...


class Reranker(Protocol):
    def compute_score(self, sentence_pairs: list[list[str]], **kwargs: Any) -> Any: ...


class LayerSweep(Protocol):
    layers: list[int]
    scores: np.ndarray
    cumulative_seconds: list[float]


def metric_names(k: int) -> list[str]:
    """Column names of the per-query metrics at cutoff k, in display order."""
    return [f"nDCG@{k}", f"MRR@{k}", f"Recall@{k}", "MAP"]


@dataclass(frozen=True, eq=False)
class RunEvaluation:
    """A run with its per-query metrics and a one-row summary (mean over queries) that stacks into tables."""

    name: str
    k: int
    run: pd.DataFrame
    per_query: pd.DataFrame
    summary: pd.DataFrame
    seconds: float
    retrieval_set: RetrievalSet


@dataclass(frozen=True, eq=False)
class RunComparison:
    """Two runs on the same queries: per-query metrics side by side, where they disagree most, top-k overlap."""

    names: tuple[str, str]
    k: int
    per_query: pd.DataFrame
    disagreements: pd.DataFrame
    summary: pd.DataFrame
    mean_jaccard: float


def _rankings(run: pd.DataFrame) -> dict[str, list[str]]:
    ordered = run.sort_values(["query_id", "rank"], kind="mergesort")
    return {str(qid): group["passage_id"].tolist() for qid, group in ordered.groupby("query_id", sort=False)}


def _as_run(run: RunEvaluation | pd.DataFrame) -> pd.DataFrame:
    frame = run.run if isinstance(run, RunEvaluation) else run
    missing = {"query_id", "rank", "passage_id"} - set(frame.columns)
    if missing:
        raise InvalidInputError(f"A run needs the columns query_id, rank and passage_id; missing: {sorted(missing)}.")
    return frame


def per_query_metrics(run: pd.DataFrame, retrieval_set: RetrievalSet, k: int = 10) -> pd.DataFrame:
    """nDCG@k, MRR@k, Recall@k and AP for every query of the set (queries missing from the run score 0)."""
    rankings = _rankings(_as_run(run))
    judgements = retrieval_set.judgements
    names = metric_names(k)
    rows = []
    for query in retrieval_set.queries.itertuples(index=False):
        ranking = rankings.get(query.id, [])
        judged = judgements.get(query.id, {})
        rows.append(
            {
                "query_id": query.id,
                "topic": query.topic,
                "lang": query.lang,
                "query": query.text,
                names[0]: metrics.ndcg_at_k(ranking, judged, k),
                names[1]: metrics.reciprocal_rank_at_k(ranking, judged, k),
                names[2]: metrics.recall_at_k(ranking, judged, k),
                names[3]: metrics.average_precision(ranking, judged),
                "n_relevant": sum(1 for rel in judged.values() if rel >= 1),
            }
        )
    return pd.DataFrame(rows)


def evaluate_run(
    run: pd.DataFrame, retrieval_set: RetrievalSet, k: int = 10, *, name: str = "run", seconds: float = 0.0
) -> RunEvaluation:
    """Metrics of an existing run (e.g. one loaded from CSV, or built by hand in a notebook)."""
    per_query = per_query_metrics(run, retrieval_set, k)
    means = per_query[metric_names(k)].mean()
    summary = pd.DataFrame(
        [{"name": name, **means.to_dict(), "queries": len(per_query), "seconds": float(seconds)}],
    )
    return RunEvaluation(
        name=name, k=k, run=run, per_query=per_query, summary=summary, seconds=seconds, retrieval_set=retrieval_set
    )


def _as_matrix(encoded: Any, expected_rows: int, what: str) -> np.ndarray:
    """Embeddings as a float64 (rows, dim) array: accepts numpy, torch tensors and BGE-M3's {'dense_vecs': ...}."""
    if isinstance(encoded, Mapping):
        if "dense_vecs" not in encoded:
            raise InvalidInputError(f"The embedder returned a dict without 'dense_vecs' for the {what}.")
        encoded = encoded["dense_vecs"]
    if hasattr(encoded, "detach"):
        encoded = encoded.detach().float().cpu().numpy()
    matrix = np.asarray(encoded, dtype=np.float64)
    if matrix.ndim == 1 and expected_rows == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
        raise InvalidInputError(
            f"The embedder returned shape {matrix.shape} for {expected_rows} {what}; expected ({expected_rows}, dim)."
        )
    return matrix


def run_from_scores(
    scores: np.ndarray, query_ids: Sequence[str], passage_ids: Sequence[str], depth: int | None = None
) -> pd.DataFrame:
    """A run from a (queries, passages) score matrix, keeping the top ``depth`` per query (all when None).

    Ties are ordered by passage id, descending, as trec_eval does, so numbers match the reference tools.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(query_ids), len(passage_ids)):
        raise InvalidInputError(
            f"Scores have shape {scores.shape} but there are {len(query_ids)} queries and {len(passage_ids)} passages."
        )
    keep = len(passage_ids) if depth is None else min(int(depth), len(passage_ids))
    ids = np.asarray(passage_ids, dtype=object)
    id_rank = np.argsort(np.argsort(ids, kind="mergesort"), kind="mergesort")  # position of each id in id order
    frames = []
    for row, query_id in enumerate(query_ids):
        order = np.lexsort((-id_rank, -scores[row]))[:keep]
        frames.append(
            pd.DataFrame(
                {
                    "query_id": query_id,
                    "rank": np.arange(1, order.size + 1),
                    "passage_id": ids[order],
                    "score": scores[row, order],
                    "stage": "retrieve",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[RUN_COLUMNS]


def model_name_of(model: Any, fallback: str) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model_name_or_path", None) or fallback)


def retrieve(
    embedder: Embedder,
    retrieval_set: RetrievalSet,
    k: int = 10,
    *,
    depth: int | None = None,
    name: str | None = None,
    **encode_kwargs: Any,
) -> RunEvaluation:
    """Dense retrieval: cosine (dot product of L2-normalised embeddings) between every query and every passage.

    Queries go through ``encode_queries`` (so the model's query instruction applies) and passages through
    ``encode_corpus``. The run keeps ``depth`` passages per query (default: all, so MAP sees the full ranking);
    metrics are taken at ``k``. ``seconds`` is the encoding plus scoring time.
    """
    query_ids = retrieval_set.queries["id"].tolist()
    passage_ids = retrieval_set.passages["id"].tolist()
    if not query_ids or not passage_ids:
        raise EmptyInputError("The retrieval set has no queries or no passages to search.")
    start = time.perf_counter()
    query_vectors = _as_matrix(
        embedder.encode_queries(retrieval_set.queries["text"].tolist(), **encode_kwargs), len(query_ids), "queries"
    )
    passage_vectors = _as_matrix(
        embedder.encode_corpus(retrieval_set.passages["text"].tolist(), **encode_kwargs), len(passage_ids), "passages"
    )
    if query_vectors.shape[1] != passage_vectors.shape[1]:
        raise InvalidInputError(
            f"Query embeddings have {query_vectors.shape[1]} dimensions but passage embeddings "
            f"{passage_vectors.shape[1]}; both must come from the same model."
        )
    scores = scoring.cosine(query_vectors, passage_vectors)
    run = run_from_scores(scores, query_ids, passage_ids, depth)
    seconds = time.perf_counter() - start
    return evaluate_run(run, retrieval_set, k, name=name or model_name_of(embedder, "embedder"), seconds=seconds)


class LayerEmbedder:
    """An embedder seen at one of its layers, for comparing one model at two depths (e.g. in ``compare_runs``).

    ``encode_queries`` / ``encode_corpus`` return that layer's embedding from ``encode_detailed(all_layers=True)``:
    pooled, truncated and normalised exactly like the final layer. Layer 0 is the embedding output, ``num_layers``
    (or -1) the last layer, which gives the model's ordinary embeddings.
    """

    def __init__(self, embedder: Any, layer: int) -> None:
        if not hasattr(embedder, "encode_detailed"):
            raise InvalidInputError(
                f"{type(embedder).__name__} has no encode_detailed, so its inner layers cannot be read; "
                "use a flagdemo embedder."
            )
        num_layers = int(embedder.num_layers)
        if not -(num_layers + 1) <= layer <= num_layers:
            raise LayerOutOfRangeError(
                f"Layer {layer} does not exist: {model_name_of(embedder, 'this embedder')} has layers 0 to "
                f"{num_layers}."
            )
        self.embedder = embedder
        self.layer = layer % (num_layers + 1)
        self.model_name = f"{model_name_of(embedder, 'embedder')} @ layer {self.layer}"

    def _encode(self, texts: list[str], mode: str, kwargs: dict[str, Any]) -> np.ndarray:
        result = self.embedder.encode_detailed(list(texts), mode=mode, all_layers=True, **kwargs)
        return result.layer_embeddings[self.layer]

    def encode_queries(self, queries: list[str], **kwargs: Any) -> np.ndarray:
        return self._encode(queries, "query", kwargs)

    def encode_corpus(self, corpus: list[str], **kwargs: Any) -> np.ndarray:
        return self._encode(corpus, "passage", kwargs)


def rerank_pairs(
    retrieval_set: RetrievalSet, first_stage_run: RunEvaluation | pd.DataFrame, top_k: int = 20
) -> tuple[list[list[str]], pd.DataFrame]:
    """The [query, passage] pairs of each query's top ``top_k`` first-stage passages, and which pair is which.

    The index frame (query_id, passage_id, first_stage_rank) has one row per pair in the same order, so the scores
    a reranker or a layer sweep returns for ``pairs`` line up with it.
    """
    if top_k < 1:
        raise InvalidInputError(f"top_k must be at least 1, got {top_k}.")
    run = _as_run(first_stage_run)
    top = run[run["rank"] <= top_k].sort_values(["query_id", "rank"], kind="mergesort")
    query_order = {qid: position for position, qid in enumerate(retrieval_set.queries["id"])}
    top = top[top["query_id"].isin(query_order)]
    if top.empty:
        raise EmptyInputError("The first-stage run has no passages for the queries of this retrieval set.")
    top = top.assign(_query_order=top["query_id"].map(query_order)).sort_values(["_query_order", "rank"])
    query_texts, passage_texts = retrieval_set.query_texts, retrieval_set.passage_texts
    pairs = [[query_texts[q], passage_texts[p]] for q, p in zip(top["query_id"], top["passage_id"], strict=True)]
    index = pd.DataFrame(
        {
            "query_id": top["query_id"].to_numpy(),
            "passage_id": top["passage_id"].to_numpy(),
            "first_stage_rank": top["rank"].to_numpy(),
        }
    )
    return pairs, index


def flat_scores(scores: Any, n_pairs: int) -> np.ndarray:
    """compute_score output as a float array: a list of floats, one float for one pair (older FlagEmbedding)."""
    if hasattr(scores, "detach"):
        scores = scores.detach().float().cpu().numpy()
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size != n_pairs:
        raise InvalidInputError(
            f"The reranker returned scores of shape {array.shape} for {n_pairs} pairs. Several cutoff layers give one "
            "list per layer: use layer_sweep_metrics for those, or pass a single cutoff layer."
        )
    if not np.isfinite(array).all():
        raise InvalidInputError("The reranker returned NaN or infinite scores; check the model and its dtype.")
    return array


def reranked_run(
    pair_index: pd.DataFrame, pair_scores: np.ndarray, first_stage_run: RunEvaluation | pd.DataFrame | None = None
) -> pd.DataFrame:
    """Order each query's candidates by the reranker score; first-stage passages below the cut follow unchanged.

    Keeping the tail makes Recall and MAP comparable with the first stage; metrics at k ≤ top_k only see the
    reranked part. Ties in reranker scores keep the first-stage order.
    """
    scored = pair_index.assign(score=np.asarray(pair_scores, dtype=np.float64))
    scored = scored.sort_values(["query_id", "score", "first_stage_rank"], ascending=[True, False, True])
    scored["rank"] = scored.groupby("query_id").cumcount() + 1
    scored["stage"] = "rerank"
    parts = [scored[RUN_COLUMNS]]
    if first_stage_run is not None:
        tail = _as_run(first_stage_run)
        cut = pair_index.groupby("query_id")["first_stage_rank"].max()
        tail = tail[tail["query_id"].isin(cut.index)]
        tail = tail[tail["rank"] > tail["query_id"].map(cut)].copy()
        if "score" not in tail.columns:
            tail["score"] = math.nan
        tail["stage"] = "retrieve"
        parts.append(tail[RUN_COLUMNS])
    run = pd.concat(parts, ignore_index=True).sort_values(["query_id", "rank"], kind="mergesort")
    return run.reset_index(drop=True)


def rerank(
    reranker: Reranker,
    retrieval_set: RetrievalSet,
    first_stage_run: RunEvaluation | pd.DataFrame,
    top_k: int = 20,
    k: int = 10,
    *,
    name: str | None = None,
    **score_kwargs: Any,
) -> RunEvaluation:
    """Rerank each query's top ``top_k`` first-stage passages with ``reranker.compute_score(pairs)``.

    One compute_score call covers every pair (the reranker batches them itself); ``seconds`` is that call's time.
    """
    pairs, index = rerank_pairs(retrieval_set, first_stage_run, top_k)
    start = time.perf_counter()
    scores = flat_scores(reranker.compute_score(pairs, **score_kwargs), len(pairs))
    seconds = time.perf_counter() - start
    run = reranked_run(index, scores, first_stage_run)
    return evaluate_run(run, retrieval_set, k, name=name or model_name_of(reranker, "reranker"), seconds=seconds)


def layer_sweep_metrics(
    sweep: LayerSweep,
    pair_index: pd.DataFrame,
    retrieval_set: RetrievalSet,
    k: int = 10,
    first_stage_run: RunEvaluation | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Quality per cutoff layer of one layer sweep: mean nDCG@k / MRR@k / Recall@k / MAP and the time to get there.

    ``sweep`` is a LayerSweepResult (layers, scores of shape (n_layers, n_pairs), cumulative_seconds) computed on the
    pairs from :func:`rerank_pairs`; ``pair_index`` is the index that came with those pairs.

    ``tied_queries`` counts the queries whose candidates all got the same score at that layer. Such a layer carries
    no ranking signal (at layer 0 every pair ends in the same prompt token, so the lens sees identical states): ties
    keep the first-stage order, so its metrics are the first stage's, not the reranker's.
    """
    scores = np.asarray(sweep.scores, dtype=np.float64)
    layers = list(sweep.layers)
    if scores.ndim != 2 or scores.shape != (len(layers), len(pair_index)):
        raise InvalidInputError(
            f"The sweep has scores of shape {scores.shape}, but {len(layers)} layers and {len(pair_index)} pairs; "
            "run the sweep on the pairs that came with this pair index."
        )
    seconds = list(sweep.cumulative_seconds)
    if len(seconds) != len(layers):
        raise InvalidInputError("The sweep must give one cumulative time per layer.")
    names = metric_names(k)
    rows = []
    groups = pair_index.groupby("query_id", sort=False).indices
    for layer, layer_scores, elapsed in zip(layers, scores, seconds, strict=True):
        per_query = per_query_metrics(reranked_run(pair_index, layer_scores, first_stage_run), retrieval_set, k)
        tied = sum(1 for positions in groups.values() if np.ptp(layer_scores[positions]) == 0)
        rows.append(
            {
                "layer": int(layer),
                **per_query[names].mean().to_dict(),
                "cumulative_seconds": float(elapsed),
                "tied_queries": tied,
            }
        )
    return pd.DataFrame(rows, columns=["layer", *names, "cumulative_seconds", "tied_queries"])


def best_layer(per_layer: pd.DataFrame, metric: str) -> pd.Series:
    """The row of :func:`layer_sweep_metrics` with the highest ``metric`` among layers that rank (no tied query).

    Falls back to every layer when none ranks all queries, so a tiny sweep still returns a row.
    """
    informative = per_layer[per_layer["tied_queries"] == 0]
    candidates = informative if not informative.empty else per_layer
    return candidates.loc[candidates[metric].idxmax()]


def _top_k_sets(run: pd.DataFrame, k: int) -> dict[str, set[str]]:
    return {qid: set(ranking[:k]) for qid, ranking in _rankings(run).items()}


def compare_runs(
    run_a: RunEvaluation | pd.DataFrame,
    run_b: RunEvaluation | pd.DataFrame,
    k: int = 10,
    *,
    retrieval_set: RetrievalSet | None = None,
    names: tuple[str, str] | None = None,
    top_n: int = 5,
) -> RunComparison:
    """Compare two runs on the same labelled queries (two models, or one model at two layers).

    ``per_query`` has each metric for A and B and the difference B − A, plus the Jaccard overlap of the two top-k
    lists; ``disagreements`` holds the ``top_n`` queries with the largest |nDCG@k difference| (then lowest overlap);
    ``summary`` has the mean of each metric for A and B, the difference, and how many queries B wins / loses / ties.
    The retrieval set defaults to the one ``run_a`` was evaluated on.
    """
    if retrieval_set is None:
        for run in (run_a, run_b):
            if isinstance(run, RunEvaluation):
                retrieval_set = run.retrieval_set
                break
        else:
            raise InvalidInputError("Pass retrieval_set= when comparing plain run DataFrames.")
    if names is None:
        names = (
            run_a.name if isinstance(run_a, RunEvaluation) else "A",
            run_b.name if isinstance(run_b, RunEvaluation) else "B",
        )
    if names[0] == names[1]:
        names = (f"{names[0]} (A)", f"{names[1]} (B)")
    frame_a, frame_b = _as_run(run_a), _as_run(run_b)
    metrics_a = per_query_metrics(frame_a, retrieval_set, k)
    metrics_b = per_query_metrics(frame_b, retrieval_set, k)
    measure_names = metric_names(k)
    per_query = metrics_a[["query_id", "topic", "lang", "query", "n_relevant"]].copy()
    for measure in measure_names:
        per_query[f"{measure} A"] = metrics_a[measure].to_numpy()
        per_query[f"{measure} B"] = metrics_b[measure].to_numpy()
        per_query[f"{measure} diff"] = per_query[f"{measure} B"] - per_query[f"{measure} A"]
    top_a, top_b = _top_k_sets(frame_a, k), _top_k_sets(frame_b, k)
    per_query[f"shared@{k}"] = [len(top_a.get(q, set()) & top_b.get(q, set())) for q in per_query["query_id"]]
    per_query[f"Jaccard@{k}"] = [
        metrics.jaccard(top_a.get(q, set()), top_b.get(q, set())) for q in per_query["query_id"]
    ]
    headline = f"{measure_names[0]} diff"
    disagreements = (
        per_query.assign(_gap=per_query[headline].abs())
        .sort_values(["_gap", f"Jaccard@{k}", "query_id"], ascending=[False, True, True], kind="mergesort")
        .drop(columns="_gap")
        .head(top_n)
        .reset_index(drop=True)
    )
    summary_rows = []
    for measure in measure_names:
        diff = per_query[f"{measure} diff"]
        summary_rows.append(
            {
                "metric": measure,
                names[0]: per_query[f"{measure} A"].mean(),
                names[1]: per_query[f"{measure} B"].mean(),
                "diff": diff.mean(),
                "B better": int((diff > 1e-12).sum()),
                "A better": int((diff < -1e-12).sum()),
                "ties": int((diff.abs() <= 1e-12).sum()),
            }
        )
    return RunComparison(
        names=names,
        k=k,
        per_query=per_query,
        disagreements=disagreements,
        summary=pd.DataFrame(summary_rows),
        mean_jaccard=float(per_query[f"Jaccard@{k}"].mean()),
    )


def summary_table(evaluations: Sequence[RunEvaluation]) -> pd.DataFrame:
    """Stack the one-row summaries of several evaluations into one table (e.g. for a README)."""
    if not evaluations:
        raise EmptyInputError("Give at least one evaluation to tabulate.")
    return pd.concat([evaluation.summary for evaluation in evaluations], ignore_index=True)


def top_passages(evaluation: RunEvaluation, query_id: str, n: int = 5) -> pd.DataFrame:
    """The first ``n`` passages a run returned for one query, with their text and judged relevance."""
    if query_id not in evaluation.retrieval_set.query_texts:
        raise InvalidInputError(f"Unknown query id {query_id!r}; ids look like 'q-cook-01'.")
    rows = evaluation.run[evaluation.run["query_id"] == query_id].sort_values("rank").head(n)
    judged = evaluation.retrieval_set.judgements.get(query_id, {})
    hard = set(evaluation.retrieval_set.hard_negatives(query_id))
    texts = evaluation.retrieval_set.passage_texts
    return pd.DataFrame(
        {
            "rank": rows["rank"].to_numpy(),
            "passage_id": rows["passage_id"].to_numpy(),
            "score": rows["score"].to_numpy(),
            "relevance": [judged.get(pid, 0) for pid in rows["passage_id"]],
            "hard_negative": [pid in hard for pid in rows["passage_id"]],
            "passage": [texts[pid] for pid in rows["passage_id"]],
        }
    )


def hard_negative_ranks(evaluation: RunEvaluation) -> pd.DataFrame:
    """Where each query's hard negatives landed, and whether one outranked every relevant passage.

    One row per hard negative: its rank (NaN when the run did not return it), the rank of the query's best relevant
    passage, and ``beats_all_relevant`` — the lexical trap worked.
    """
    data = evaluation.retrieval_set
    rank_of = {
        (q, p): r
        for q, p, r in zip(
            evaluation.run["query_id"], evaluation.run["passage_id"], evaluation.run["rank"], strict=True
        )
    }
    rows = []
    for query_id in data.queries["id"]:
        relevant_ranks = [
            rank_of[(query_id, pid)] for pid in data.relevant_passages(query_id) if (query_id, pid) in rank_of
        ]
        best_relevant = min(relevant_ranks) if relevant_ranks else math.nan
        for passage_id in data.hard_negatives(query_id):
            rank = rank_of.get((query_id, passage_id), math.nan)
            rows.append(
                {
                    "query_id": query_id,
                    "passage_id": passage_id,
                    "rank": rank,
                    "best_relevant_rank": best_relevant,
                    "beats_all_relevant": bool(rank < best_relevant) if not math.isnan(rank) else False,
                }
            )
    return pd.DataFrame(rows, columns=["query_id", "passage_id", "rank", "best_relevant_rank", "beats_all_relevant"])


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured markdown table (floats rounded) without needing the optional tabulate package."""

    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)

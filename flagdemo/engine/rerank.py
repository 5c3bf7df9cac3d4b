"""Rerankers: one query's passages scored by each chosen method (bi-encoder, cross-encoder, LLM reranker, a
layer-wise cutoff); a method that fails says why and the others still run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from flagdemo.analysis import scoring
from flagdemo.engine.access import ModelAccess, shared_result
from flagdemo.engine.guards import check_layer, chosen, query_and_passages
from flagdemo.engine.outcomes import MethodOutcome
from flagdemo.errors import FlagDemoError, InvalidInputError
from flagdemo.models.records import RerankResult
from flagdemo.models.rerankers import layer_sweep

logger = logging.getLogger(__name__)


@shared_result(
    "rerank",
    models=("bi_encoder", "cross_encoder", "llm_reranker", "layerwise_reranker"),
    keep=lambda outcomes: not any(outcome.error for outcome in outcomes),  # a failed method is retried
)
def rerank_methods(
    access: ModelAccess,
    query: str,
    passages: Sequence[str],
    *,
    bi_encoder: str | None,
    cross_encoder: str | None,
    llm_reranker: str | None,
    layerwise_reranker: str | None,
    cutoff_layer: int | None,
    progress: Callable[[float, str], None] | None = None,
) -> list[MethodOutcome]:
    """Score the same passages with each chosen method; a method that fails reports why, the rest still run."""
    query, passages = query_and_passages(query, passages)
    pairs = [(query, p) for p in passages]
    plan: list[tuple[str, str, Callable[[str], MethodOutcome]]] = []
    if chosen(bi_encoder):
        plan.append(("bi-encoder", bi_encoder, lambda m: bi_encoder_scores(access, m, query, passages)))
    if chosen(cross_encoder):
        plan.append(("cross-encoder", cross_encoder, lambda m: reranker_scores(access, "cross-encoder", m, pairs)))
    if chosen(llm_reranker):
        plan.append(("LLM reranker", llm_reranker, lambda m: reranker_scores(access, "LLM reranker", m, pairs)))
    if chosen(layerwise_reranker):
        label = f"cutoff L{cutoff_layer}" if cutoff_layer is not None else "layer-wise"
        plan.append((label, layerwise_reranker, lambda m: cutoff_scores(access, label, m, pairs, cutoff_layer)))
    if not plan:
        raise InvalidInputError("Choose at least one method to compare.")
    outcomes = []
    for step, (method, model, run) in enumerate(plan):
        if progress is not None:
            progress(step / len(plan), f"{method}: {model}")
        try:
            outcomes.append(run(model))
        except FlagDemoError as exc:
            outcomes.append(MethodOutcome(method=method, model=model, error=str(exc)))
        except Exception as exc:
            logger.exception("reranking method %s with %s failed", method, model)
            outcomes.append(
                MethodOutcome(method=method, model=model, error=f"{type(exc).__name__}: could not run this model.")
            )
    return outcomes


def bi_encoder_scores(access: ModelAccess, model: str, query: str, passages: list[str]) -> MethodOutcome:
    with access.embedder_for(model) as embedder:
        started = time.perf_counter()
        q = embedder.encode_detailed([query], mode="query")
        p = embedder.encode_detailed(passages, mode="passage")
        load_seconds = float(getattr(embedder, "load_seconds", 0.0))
    scores = scoring.inner(q.embeddings, p.embeddings)[0]
    return MethodOutcome(
        method="bi-encoder",
        model=model,
        scores=scores.tolist(),
        load_seconds=load_seconds,
        run_seconds=time.perf_counter() - started,
        n_tokens=sum(q.token_counts) + sum(p.token_counts),
    )


def reranker_scores(access: ModelAccess, method: str, model: str, pairs: list[tuple[str, str]]) -> MethodOutcome:
    role = "cross-encoder" if method == "cross-encoder" else "llm-reranker"
    with access.reranker_for(model, role) as reranker:
        result: RerankResult = reranker.compute_score_detailed(pairs)
    return MethodOutcome(
        method=method,
        model=model,
        scores=[float(s) for s in result.scores],
        normalized=[float(s) for s in result.normalized],
        load_seconds=result.timings.load_seconds,
        run_seconds=result.timings.run_seconds,
        n_tokens=result.timings.n_tokens,
    )


def cutoff_scores(
    access: ModelAccess, method: str, model: str, pairs: list[tuple[str, str]], cutoff_layer: int | None
) -> MethodOutcome:
    """A layer-wise reranker's native head at ``cutoff_layer``, or the logit lens for any other LLM reranker."""
    layer = int(cutoff_layer) if cutoff_layer is not None else None
    with access.reranker_for(model, "layer-cutoff") as reranker:
        if layer is not None:
            check_layer(reranker, layer)
        started = time.perf_counter()
        sweep = layer_sweep(reranker, pairs, layers=None if layer is None else [layer])
        load_seconds = float(getattr(reranker, "load_seconds", 0.0))
    scores = np.asarray(sweep.scores, dtype=np.float64)[-1]
    return MethodOutcome(
        method=method,
        model=f"{model} ({sweep.method})",
        scores=scores.tolist(),
        normalized=scoring.sigmoid(scores).tolist(),
        load_seconds=load_seconds,
        run_seconds=time.perf_counter() - started,
        n_tokens=sweep.n_tokens,
    )

"""Layer sweeps: one model's scores at every chosen layer, from one forward pass (an embedder's query-passage
cosine per layer; a reranker's layer-wise head, or the logit lens for any other LLM reranker)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from flagdemo.analysis import metrics
from flagdemo.engine.access import ModelAccess, shared_result
from flagdemo.engine.encoding import num_layers
from flagdemo.engine.guards import check_layer, query_and_passages
from flagdemo.engine.outcomes import SweepOutcome
from flagdemo.errors import InvalidInputError, LayerOutOfRangeError
from flagdemo.models.records import LayerSweepResult
from flagdemo.models.rerankers import layer_sweep as rerankers_layer_sweep
from flagdemo.models.resolve import ModelSpec

SWEEP_WORDS = {
    "native-head": "the layer-wise head at each layer",
    "logit-lens": "the 'Yes' logit read at each layer through the final norm and LM head (logit lens)",
}


@shared_result("layer_sweep", models=("model",))
def layer_sweep(
    access: ModelAccess,
    model: str | ModelSpec,
    query: str,
    passages: Sequence[str],
    *,
    first: int = 0,
    last: int = 0,
    step: int = 1,
    grades: Sequence[float] | None = None,
    k: int = 5,
    progress: Callable[[float, str], None] | None = None,
    task: str | None = None,
) -> SweepOutcome:
    """Scores at every chosen layer of an embedder (query–passage cosine) or a reranker (its layer-wise head, or
    the logit lens), from one forward pass, with nDCG@k / MRR@k per layer when ``grades`` are given.

    Layers run from ``first`` to ``last`` every ``step``; ``first`` 0 = the first transformer layer, ``last``
    0 = the model's last layer. ``task``: LLM-Embedder's task (embedders only).
    """
    spec = access.spec(model, "any")
    query, passages = query_and_passages(query, passages)
    if grades is not None and len(grades) != len(passages):
        raise InvalidInputError(
            f"Give one relevance label per passage: {len(passages)} passages but {len(grades)} labels."
        )
    if not 1 <= int(k) <= len(passages):
        raise InvalidInputError(f"k must be between 1 and {len(passages)} (the number of passages), not {k}.")
    if progress is not None:
        progress(0.1, f"Loading {spec.short_name}")
    if spec.kind == "embedder":
        layers = layer_range(range(1, num_layers(access, spec) + 1), first, last, step)
        if progress is not None:
            progress(0.4, "One pass through every layer")
        sweep = embedder_layer_sweep(access, spec, query, passages, layers, task=task)
        description = "cosine of query and passage embeddings at each layer"
    else:
        layers = layer_range(valid_layers(access, spec), first, last, step)
        if progress is not None:
            progress(0.4, "One forward pass, reading every chosen layer")
        sweep = reranker_layer_sweep(access, spec, query, passages, layers)
        description = SWEEP_WORDS.get(sweep.method, sweep.method)
    per_layer: dict[str, list[float]] = {}
    if grades is not None:
        for row in np.asarray(sweep.scores, dtype=float):
            for name, value in metrics.graded_metrics(row, grades, int(k)).items():
                per_layer.setdefault(name, []).append(value)
    return SweepOutcome(spec.short_name, sweep, description, per_layer, int(k))


def reranker_layer_sweep(
    access: ModelAccess, model: str | ModelSpec, query: str, passages: Sequence[str], layers: Sequence[int] | None
) -> LayerSweepResult:
    """Every requested layer's score for every passage, from one forward pass."""
    query, passages = query_and_passages(query, passages)
    with access.reranker_for(model) as reranker:
        for layer in layers or ():
            check_layer(reranker, int(layer))
        return rerankers_layer_sweep(
            reranker, [(query, p) for p in passages], layers=None if layers is None else list(layers)
        )


def valid_layers(access: ModelAccess, model: str | ModelSpec) -> list[int]:
    """The layers a reranker can be cut at (layer-wise heads, or every decoder layer for the logit lens)."""
    with access.reranker_for(model) as reranker:
        valid = list(getattr(reranker, "valid_layers", []) or [])
        return valid or list(range(1, int(reranker.num_layers) + 1))


def embedder_layer_sweep(
    access: ModelAccess,
    model: str | ModelSpec,
    query: str,
    passages: Sequence[str],
    layers: Sequence[int] | None,
    *,
    task: str | None = None,
) -> LayerSweepResult:
    """An embedder's query–passage cosine at each layer (all layers come from one forward pass per side)."""
    query, passages = query_and_passages(query, passages)
    with access.embedder_for(model, task=task) as embedder:
        started = time.perf_counter()
        q = embedder.encode_detailed([query], mode="query", all_layers=True)
        p = embedder.encode_detailed(passages, mode="passage", all_layers=True)
        seconds = time.perf_counter() - started
    top = q.layer_embeddings.shape[0] - 1
    chosen = list(range(1, top + 1)) if layers is None else [int(layer) for layer in layers]
    for layer in chosen:
        if not 0 <= layer <= top:
            raise LayerOutOfRangeError(f"Layer {layer} does not exist: this embedder has layers 0 to {top}.")
    scores = np.stack(
        [
            q.layer_embeddings[layer, 0].astype(np.float64) @ p.layer_embeddings[layer].astype(np.float64).T
            for layer in chosen
        ]
    )
    return LayerSweepResult(
        layers=chosen, scores=scores, method="embedder-layers", seconds=seconds, cumulative_seconds=[]
    )


def layer_name(layer: int | None) -> str:
    return "final layer" if layer is None or int(layer) < 0 else f"layer {int(layer)}"


def layer_range(valid: Sequence[int], first: int = 0, last: int = 0, step: int = 1) -> list[int]:
    """Layers from ``first`` to ``last`` every ``step`` (``last`` always included); ``first`` 0 = the first
    transformer layer, ``last`` 0 = the model's last. Anything outside the model's layers is refused."""
    valid = sorted(int(v) for v in valid)
    if int(step) < 1 or int(step) > max(1, len(valid)):
        raise InvalidInputError(f"The layer step must be between 1 and {max(1, len(valid))}, not {step}.")
    if int(first) < 0 or int(last) < 0:
        raise InvalidInputError("Layers are counted from 1 (0 = the first or last layer): negative ones do not exist.")
    low = int(first) if int(first) > 0 else min((v for v in valid if v >= 1), default=valid[0])
    high = int(last) if int(last) > 0 else valid[-1]
    outside = [v for v in (low, high) if v not in valid]
    if outside:
        raise LayerOutOfRangeError(
            f"Layer {outside[0]} is not available: this model has layers {valid[0]} to {valid[-1]}."
        )
    if low > high:
        raise InvalidInputError(f"The first layer ({low}) is after the last layer ({high}).")
    chosen = [v for v in valid if low <= v <= high and (v - low) % int(step) == 0]
    return chosen if chosen[-1] == high else [*chosen, high]

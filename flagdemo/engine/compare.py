"""Compare: embedders (or one embedder at two layers) retrieving over the bundled labelled set, per query."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from flagdemo.analysis import evaluation, scoring
from flagdemo.data import datasets
from flagdemo.engine.access import ModelAccess, shared_result
from flagdemo.engine.encoding import pick_layer
from flagdemo.engine.guards import texts_to_encode
from flagdemo.engine.layers import layer_name
from flagdemo.engine.outcomes import CompareOutcome
from flagdemo.errors import InvalidInputError
from flagdemo.models.records import EncodeResult
from flagdemo.models.resolve import ModelSpec


@shared_result("compare", models=("model_a", "model_b"))
def compare(
    access: ModelAccess,
    model_a: str | ModelSpec,
    model_b: str | ModelSpec,
    *,
    layer_a: int = -1,
    layer_b: int = -1,
    k: int = 10,
    max_queries: int = 0,
    task_a: str | None = None,
    task_b: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> CompareOutcome:
    """Two embedders (or one at two layers) on the bundled labelled set: metrics per query, where they differ.

    ``max_queries`` 0 = all; otherwise the first that many queries (every passage stays a candidate).
    ``task_a`` / ``task_b``: LLM-Embedder's task for A / B (None for every other model).
    """
    spec_a, spec_b = access.spec(model_a, "embedder"), access.spec(model_b, "embedder")
    labelled = datasets.load_retrieval_set()
    n_queries, n_passages = len(labelled.queries), len(labelled.passages)
    if not 0 <= int(max_queries) <= n_queries:
        raise InvalidInputError(f"The number of queries must be between 0 (all) and {n_queries}, not {max_queries}.")
    if not 1 <= int(k) <= n_passages:
        raise InvalidInputError(f"k must be between 1 and {n_passages} (the labelled passages), not {k}.")
    if int(max_queries) > 0:
        labelled = labelled.subset(max_queries=int(max_queries))
    names = (run_name(spec_a.short_name, layer_a), run_name(spec_b.short_name, layer_b))
    if progress is not None:
        progress(0.05, f"Encoding {len(labelled.queries)} queries and {len(labelled.passages)} passages")
    run_a, run_b = retrieval_runs(
        access,
        [(spec_a, int(layer_a), names[0]), (spec_b, int(layer_b), names[1])],
        labelled,
        int(k),
        (task_a, task_b),
    )
    return CompareOutcome(
        comparison=evaluation.compare_runs(run_a, run_b, int(k), names=names),
        k=int(k),
        n_queries=len(labelled.queries),
        n_passages=len(labelled.passages),
        seconds=(run_a.seconds, run_b.seconds),
        same_model=(spec_a, task_a) == (spec_b, task_b),
    )


def retrieval_runs(
    access: ModelAccess,
    specs: Sequence[tuple[str | ModelSpec, int | None, str]],
    retrieval_set,
    k: int,
    tasks: Sequence[str | None] | None = None,
) -> list:
    """Dense retrieval over a labelled set for each (model, layer, name); layer None/-1 = final; ``tasks`` one
    LLM-Embedder task (or None) per entry.

    Same scoring as ``evaluation.retrieve`` (cosine of query-mode and passage-mode embeddings), but at any layer,
    so an embedder can be compared with itself cut short. Each model encodes the set once, for all its layers,
    and a repeated comparison reuses those encodings (see ``labelled_encodings``).
    """
    query_ids, passage_ids = retrieval_set.queries["id"].tolist(), retrieval_set.passages["id"].tolist()
    encoded: dict[tuple[ModelSpec, str | None], tuple[EncodeResult, EncodeResult, float]] = {}
    tasks = list(tasks) if tasks is not None else [None] * len(specs)
    specs = [(access.spec(model, "embedder"), layer, name) for model, layer, name in specs]
    runs = []
    for (model, layer, name), task in zip(specs, tasks, strict=True):
        wanted = None if layer is None or int(layer) < 0 else int(layer)
        if (model, task) not in encoded:
            all_layers = any(
                (m, t) == (model, task) and lay is not None and int(lay) >= 0
                for (m, lay, _), t in zip(specs, tasks, strict=True)
            )
            encoded[model, task] = labelled_encodings(
                access,
                model,
                retrieval_set.queries["text"].tolist(),
                retrieval_set.passages["text"].tolist(),
                all_layers=all_layers,
                task=task,
            )
        queries, passages, seconds = encoded[model, task]
        scores = scoring.cosine(pick_layer(queries, wanted), pick_layer(passages, wanted))
        run = evaluation.run_from_scores(scores, query_ids, passage_ids)
        runs.append(evaluation.evaluate_run(run, retrieval_set, k, name=name, seconds=seconds))
    return runs


def labelled_encodings(
    access: ModelAccess,
    model: str | ModelSpec,
    queries: Sequence[str],
    passages: Sequence[str],
    *,
    all_layers: bool,
    task: str | None = None,
) -> tuple[EncodeResult, EncodeResult, float]:
    """Exact fp32 query and passage encodings of a labelled set, and the seconds encoding them took.

    They are kept with the model's wrapper (at most two sets per wrapper) and reused while it is kept: the same
    texts in the same batches give the same numbers, so a repeated comparison need not encode the set again.
    """
    queries, passages = texts_to_encode(queries), texts_to_encode(passages)
    digest = hashlib.sha256(json.dumps([queries, passages]).encode("utf-8", "surrogatepass")).hexdigest()
    key = (bool(all_layers), digest)
    with access.embedder_for(model, task=task) as embedder:
        with access.labelled_lock:
            kept = access.labelled.setdefault(embedder, OrderedDict())
        found = kept.get(key)
        if found is None:
            started = time.perf_counter()
            query_result = embedder.encode_detailed(queries, mode="query", all_layers=all_layers)
            passage_result = embedder.encode_detailed(passages, mode="passage", all_layers=all_layers)
            found = kept[key] = (query_result, passage_result, time.perf_counter() - started)
            while len(kept) > 2:
                kept.popitem(last=False)
    return found


def run_name(model: str, layer: int | None) -> str:
    """How a run is named in Compare's tables: the model and its layer."""
    return f"{model} @ {layer_name(layer)}"

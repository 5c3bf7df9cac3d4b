"""Projection: texts (or image / text items) placed on a 2D or 3D map, queries among them, and a second map of the
same points by another model or layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flagdemo.analysis import projection, scoring
from flagdemo.engine.access import ModelAccess, shared_result
from flagdemo.engine.encoding import embeddings, encode_mixed
from flagdemo.engine.guards import chosen
from flagdemo.engine.layers import layer_name
from flagdemo.engine.outcomes import MapOutcome, ProjectionOutcome
from flagdemo.errors import EmptyInputError
from flagdemo.models.resolve import ModelSpec


@shared_result("project", models=("model", "model_b"))
def project(
    access: ModelAccess,
    texts: Sequence[str],
    *,
    model: str | ModelSpec,
    labels: Sequence[str] | None = None,
    queries: Sequence[str] = (),
    layer: int = -1,
    colour_by: str = "label",
    params: dict | None = None,
    model_b: str | ModelSpec | None = None,
    layer_b: int = -1,
    progress: Callable[[float, str], None] | None = None,
    task: str | None = None,
) -> ProjectionOutcome:
    """A map of ``texts`` (passage mode) with ``queries`` placed in it, each query's cosine to every text, and
    optionally a second 2D map (another model, another layer, or both) with the same points.

    ``colour_by``: 'label' (the given labels), 'cluster' (k-means, k = number of labels), 'none'. ``params`` go
    to ``projection.project`` (method, dims, n_neighbors, min_dist, perplexity, seed). ``task``: LLM-Embedder's
    task for the main map (the second map's model reads its own defaults).
    """
    spec = access.spec(model, "embedder")
    spec_b = access.spec(model_b, "embedder") if chosen(model_b) else None
    texts, queries = list(texts), list(queries)
    if not texts:
        raise EmptyInputError("There is nothing to project: write one text per line (optionally label<TAB>text).")
    labels = list(labels) if labels is not None else ["text"] * len(texts)
    params = dict(params or {})
    if progress is not None:
        progress(0.1, f"Encoding {len(texts)} texts with {spec.short_name}")
    vectors = embeddings(access, texts, model=spec, mode="passage", layer=layer, task=task)
    query_vectors = embeddings(access, queries, model=spec, mode="query", layer=layer, task=task) if queries else None
    groups = projection.colour_groups(colour_by, labels, vectors)
    if progress is not None:
        progress(0.5, f"Projecting with {str(params.get('method', 'umap')).upper()}")
    fitted = projection.project(vectors, queries=query_vectors, **params)
    title = f"{spec.short_name} ({layer_name(layer)}) · {fitted.method.upper()} {params.get('dims', 2)}D"
    outcome = ProjectionOutcome(
        texts=texts,
        groups=groups,
        queries=queries,
        main=MapOutcome(title, fitted.coords, fitted.method, fitted.params, fitted.note, fitted.query_coords),
        cosines=None if query_vectors is None else scoring.cosine(query_vectors, vectors),
    )
    if spec_b is not None or int(layer_b) >= 0:
        spec_b = spec_b or spec
        if progress is not None:
            progress(0.75, f"Second map: {spec_b.short_name}")
        vectors_b = embeddings(access, texts, model=spec_b, mode="passage", layer=layer_b)
        flat = {**params, "dims": 2}
        map_a = fitted if params.get("dims", 2) == 2 else projection.project(vectors, **flat)
        map_b = projection.project(vectors_b, **flat)
        outcome.side = (
            MapOutcome(f"A: {spec.short_name} ({layer_name(layer)})", map_a.coords, map_a.method, map_a.params),
            MapOutcome(
                f"B: {spec_b.short_name} ({layer_name(layer_b)})", map_b.coords, map_b.method, map_b.params,
                map_b.note,
            ),
        )  # fmt: skip
    return outcome


def project_mixed(
    access: ModelAccess, items: Sequence, *, model: str, labels: Sequence[str], queries: Sequence = (),
    colour_by: str = "label", params: dict | None = None,
):  # fmt: skip
    """A map of image / text items with ``queries`` (items too) placed in it: (encoding, query encoding or
    None, ProjectionOutcome whose texts are the items' labels)."""
    params = dict(params or {})
    encoded = encode_mixed(access, items, model=model)
    asked = encode_mixed(access, queries, model=model) if queries else None
    fitted = projection.project(encoded.vectors, queries=None if asked is None else asked.vectors, **params)
    title = f"{model} · {fitted.method.upper()} {params.get('dims', 2)}D"
    outcome = ProjectionOutcome(
        texts=encoded.labels,
        groups=projection.colour_groups(colour_by, list(labels), encoded.vectors),
        queries=[] if asked is None else asked.labels,
        main=MapOutcome(title, fitted.coords, fitted.method, fitted.params, fitted.note, fitted.query_coords),
        cosines=None if asked is None else scoring.cosine(asked.vectors, encoded.vectors),
    )
    return encoded, asked, outcome

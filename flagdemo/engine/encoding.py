"""Encode and Similarity: texts (or, with Visualized-BGE, images) in, vectors and scores out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flagdemo.analysis import scoring
from flagdemo.engine import visual
from flagdemo.engine.access import ModelAccess, shared_result
from flagdemo.engine.guards import check_max_length, check_mode, clean_lines, texts_to_encode
from flagdemo.engine.outcomes import SimilarityOutcome
from flagdemo.errors import EmptyInputError, InvalidInputError, LayerOutOfRangeError
from flagdemo.models.backends.precision import check_precision, with_precision
from flagdemo.models.embedders import BGEM3FlagModel
from flagdemo.models.records import EncodeResult
from flagdemo.models.resolve import ModelSpec


@shared_result("encode", models=("model",))
def encode(
    access: ModelAccess,
    texts: Sequence[str],
    *,
    model: str,
    mode: str = "passage",
    instruction: str | None = None,
    max_length: int | None = None,
    normalize: bool = True,
    all_layers: bool = False,
    precision: str = "fp32",
    task: str | None = None,
) -> EncodeResult:
    """Embed ``texts`` as queries, passages or raw text; ``instruction`` None = the model's own.

    ``precision`` 'bf16' / 'int8' runs the approximate CPU modes; the default stays exact, since the tabs without
    a Precision choice (Compare, Project) must not turn approximate silently. The UI applies FLAGDEMO_PRECISION.
    ``task``: LLM-Embedder's task, whose query / key instructions the modes use (None = qa; other models: None).
    """
    precision = check_precision(precision)
    check_mode(mode)
    texts = texts_to_encode(texts)
    if max_length is not None and int(max_length) < 2:
        raise InvalidInputError(f"The maximum length must be at least 2 tokens, not {max_length}.")
    with access.embedder_for(model, normalize=normalize, task=task) as embedder:
        check_max_length(embedder, max_length)
        return with_precision(embedder, precision).encode_detailed(
            texts,
            mode=mode,
            max_length=None if max_length is None else int(max_length),
            all_layers=all_layers,
            instruction=instruction,
        )


def embeddings(
    access: ModelAccess,
    texts: Sequence[str],
    *,
    model: str | ModelSpec,
    mode: str = "passage",
    layer: int | None = None,
    task: str | None = None,
) -> np.ndarray:
    """Just the vectors at ``layer`` (None or -1 = final); final-layer vectors come from the embedding cache."""
    if layer is not None and int(layer) >= 0:
        return pick_layer(encode(access, texts, model=model, mode=mode, all_layers=True, task=task), layer)
    check_mode(mode)
    texts = texts_to_encode(texts)
    with access.embedder_for(model, task=task) as embedder:
        return access.embedding_cache.encode(embedder, texts, mode=mode, precision="fp32")


def pick_layer(result: EncodeResult, layer: int | None) -> np.ndarray:
    """Embeddings at ``layer`` (None or -1 = final; 0 = embedding output)."""
    if layer is None or int(layer) < 0 or result.layer_embeddings is None:
        return result.embeddings
    top = result.layer_embeddings.shape[0] - 1
    if int(layer) > top:
        raise LayerOutOfRangeError(f"Layer {layer} does not exist: this model has layers 0 to {top}.")
    return result.layer_embeddings[int(layer)]


def num_layers(access: ModelAccess, model: str | ModelSpec) -> int:
    with access.embedder_for(model) as embedder:
        return int(embedder.num_layers)


@shared_result("similarity", models=("model",))
def similarity(
    access: ModelAccess,
    queries: Sequence[str],
    passages: Sequence[str],
    *,
    model: str,
    use_instruction: bool = True,
    max_length: int | None = None,
    precision: str = "fp32",
    task: str | None = None,
) -> SimilarityOutcome:
    """Scores for every query × passage pair as FlagEmbedding computes them (inner products of embeddings).

    Dense-only models take their embeddings from the embedding cache (a repeated text is not encoded again);
    BGE-M3 needs tokens, sparse weights and ColBERT vectors, so it encodes in full. ``precision`` as in encode.
    """
    precision = check_precision(precision)
    queries, passages = clean_lines(queries), clean_lines(passages)
    if not queries or not passages:
        raise EmptyInputError("Give at least one query and one passage (one per line).")
    q_mode, p_mode = ("query", "passage") if use_instruction else ("raw", "raw")
    with access.embedder_for(model, task=task) as embedder:
        check_max_length(embedder, max_length)
        if not isinstance(embedder, BGEM3FlagModel):
            q_vectors, p_vectors = (
                access.embedding_cache.encode(embedder, texts, mode=mode, max_length=max_length, precision=precision)
                for texts, mode in ((queries, q_mode), (passages, p_mode))
            )
            return SimilarityOutcome(dense=scoring.inner(q_vectors, p_vectors))
        runner = with_precision(embedder, precision)
        q = runner.encode_detailed(queries, mode=q_mode, max_length=max_length)
        p = runner.encode_detailed(passages, mode=p_mode, max_length=max_length)
    outcome = SimilarityOutcome(dense=scoring.inner(q.embeddings, p.embeddings))
    outcome.query_result, outcome.passage_result = q, p
    if q.lexical_weights is not None and p.lexical_weights is not None:
        outcome.sparse = scoring.lexical_matrix(q.lexical_weights, p.lexical_weights)
    if q.colbert_vecs is not None and p.colbert_vecs is not None:
        outcome.colbert = scoring.colbert_matrix(q.colbert_vecs, p.colbert_vecs)
    return outcome


def encode_mixed(access: ModelAccess, items: Sequence, *, model: str):
    """Vectors, labels and thumbnails of image, text and fused items (``visual.make_items``) with the
    Visualized-BGE entry ``model``, loaded on first use into the shared model cache."""
    with access.visual_model_for(model) as loaded:
        return visual.encode_mixed(loaded, items)


def mixed_similarity(access: ModelAccess, queries: Sequence, candidates: Sequence, *, model: str):
    """(query encoding, candidate encoding, cosines queries x candidates) for image / text / fused items."""
    query_side = encode_mixed(access, queries, model=model)
    candidate_side = encode_mixed(access, candidates, model=model)
    return query_side, candidate_side, visual.mixed_similarity(query_side, candidate_side)

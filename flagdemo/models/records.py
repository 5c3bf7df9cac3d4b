"""Result records returned by the ``*_detailed`` methods: numbers plus what the explorer's views show about them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Timings:
    """Where the seconds went: loading the model (once, shared through the cache) and this run."""

    load_seconds: float
    run_seconds: float
    n_items: int
    n_tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.run_seconds if self.run_seconds > 0 else 0.0


@dataclass
class EncodeResult:
    """Embeddings of one call plus per-layer embeddings, tokens and timings.

    ``embeddings`` (N, D) float32 equal what encode_queries / encode_corpus / encode return for the same mode.
    ``layer_embeddings`` (n_layers + 1, N, D): layer 0 is the embedding output, the last equals ``embeddings``;
    every layer is pooled, cut to ``truncate_dim`` and normalised the same way. M3 models also fill
    ``lexical_weights`` (keyed by token string) and ``colbert_vecs``.
    """

    embeddings: np.ndarray
    input_texts: list[str]
    tokens: list[list[str]]
    token_counts: list[int]
    truncated: list[bool]
    timings: Timings
    layer_embeddings: np.ndarray | None = None
    lexical_weights: list[dict[str, float]] | None = None
    colbert_vecs: list[np.ndarray] | None = field(default=None, repr=False)


# --- rerankers (RERANK) ---


@dataclass
class RerankResult:
    """Scores of one ``compute_score_detailed`` call: raw logits, their sigmoid, and which method produced them.

    ``method`` is 'cross-encoder' (FlagReranker), 'yes-logit' (FlagLLMReranker), 'native-head' (a layer-wise
    checkpoint's own per-layer head) or 'logit-lens' (the "Yes" logit read from a layer through the final norm and
    LM head); ``layer`` is the layer that scored, for the two layer-wise methods.
    """

    scores: list[float]
    normalized: list[float]
    timings: Timings
    method: str
    layer: int | None = None


@dataclass
class LayerSweepResult:
    """Scores of every requested layer from one truncated forward pass.

    ``scores[i, j]`` is the raw score of pair j at ``layers[i]`` (ascending). ``cumulative_seconds[i]`` is the time
    from the start of the pass until layer ``layers[i]``'s scores were ready: the cost of cutting off there.
    """

    layers: list[int]
    scores: np.ndarray
    method: str
    seconds: float
    cumulative_seconds: list[float]
    n_tokens: int = 0  # tokens the pass read (prompts included), for a tokens/s figure

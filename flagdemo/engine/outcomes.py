"""What each tab operation returns: plain records the UI turns into tables and figures (no gradio here)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flagdemo.analysis import scoring
from flagdemo.errors import InvalidInputError
from flagdemo.models.records import EncodeResult, LayerSweepResult


@dataclass
class MethodOutcome:
    """One reranking method's result, or the sentence that says why it could not run."""

    method: str
    model: str
    scores: list[float] | None = None
    normalized: list[float] | None = None
    load_seconds: float = 0.0
    run_seconds: float = 0.0
    n_tokens: int = 0
    error: str = ""

    @property
    def ran(self) -> bool:
        return self.error == ""


@dataclass
class SimilarityOutcome:
    """Dense scores for every query × passage pair; for BGE-M3 also sparse, ColBERT and the per-text details."""

    dense: np.ndarray
    sparse: np.ndarray | None = None
    colbert: np.ndarray | None = None
    query_result: EncodeResult | None = None
    passage_result: EncodeResult | None = None

    @property
    def is_m3(self) -> bool:
        return self.sparse is not None and self.colbert is not None

    def combined(self, weights) -> np.ndarray:
        """FlagEmbedding's weighted mean of dense, sparse and ColBERT scores (weights in that order)."""
        if not self.is_m3:
            return self.dense
        if sum(float(w) for w in weights) <= 0:
            raise InvalidInputError("At least one of the dense, sparse and ColBERT weights must be positive.")
        return scoring.weighted_mean((self.dense, self.sparse, self.colbert), weights)

    def alignment(self, query: int, passage: int):
        """(token × token dot products, query tokens, passage tokens) of one pair's ColBERT vectors (BGE-M3)."""
        q, p = self.query_result, self.passage_result
        if q is None or p is None or q.colbert_vecs is None or p.colbert_vecs is None:
            return None
        q_vecs, p_vecs = q.colbert_vecs[query], p.colbert_vecs[passage]
        return (
            scoring.colbert_alignment(q_vecs, p_vecs),
            scoring.colbert_tokens(q.tokens[query], len(q_vecs)),
            scoring.colbert_tokens(p.tokens[passage], len(p_vecs)),
        )


@dataclass
class SweepOutcome:
    """A layer sweep of one model: the scores per layer, what they are, and nDCG / MRR per layer when graded."""

    model: str
    sweep: LayerSweepResult
    description: str
    metrics: dict[str, list[float]] = field(default_factory=dict)
    k: int = 5

    @property
    def scores(self) -> np.ndarray:
        return np.asarray(self.sweep.scores, dtype=float)

    @property
    def seconds_per_layer(self) -> list[float] | None:
        return list(self.sweep.cumulative_seconds) or None

    def best_layer(self) -> tuple[int, float] | None:
        """(layer, nDCG@k) of the first layer that reaches the best nDCG@k; None without relevance labels."""
        values = self.metrics.get(f"nDCG@{self.k}")
        if not values:
            return None
        best = int(np.argmax(values))
        return self.sweep.layers[best], float(values[best])


@dataclass
class MapOutcome:
    """One projection map: its coordinates and the words that say how it was made."""

    title: str
    coords: np.ndarray
    method: str
    params: dict
    note: str = ""
    query_coords: np.ndarray | None = None


@dataclass
class ProjectionOutcome:
    """Everything the Projection tab draws: texts, their colour groups, the map(s) and each query's neighbours."""

    texts: list[str]
    groups: list[str]
    queries: list[str]
    main: MapOutcome
    cosines: np.ndarray | None = None  # queries × texts
    side: tuple[MapOutcome, MapOutcome] | None = None

    @property
    def ids(self) -> list[str]:
        return [f"p{i + 1}" for i in range(len(self.texts))]

    @property
    def notes(self) -> list[str]:
        notes = [self.main.note] if self.main.note else []
        if self.side is not None and self.side[1].note:
            notes.append(f"Map B: {self.side[1].note}")
        return notes


@dataclass
class CompareOutcome:
    """Two retrieval runs on the labelled set, compared per query."""

    comparison: object  # evaluation.Comparison
    k: int
    n_queries: int
    n_passages: int
    seconds: tuple[float, float]
    same_model: bool

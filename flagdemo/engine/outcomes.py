"""What each tab operation returns: plain records the UI turns into tables and figures (no gradio here)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flagdemo.analysis import runs as run_tools
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


@dataclass
class SystemCost:
    """What one system of a benchmark costs: milliseconds per query (encoding it and searching, plus reranking its
    pairs for a pipeline), per passage indexed, per reranked pair; the weights' memory and the bytes per passage
    stored (fp32 vector, sparse weights, ColBERT vectors or the BM25 matrix)."""

    system: str
    quality: float
    query_ms: float
    passage_ms: float
    pair_ms: float
    model_mb: float
    bytes_per_vector: float


@dataclass
class BenchmarkOutcome:
    """N systems compared on one labelled set (``Engine.benchmark``); every table is a plain DataFrame.

    - ``systems`` name → spec as given; ``descriptions`` name → the system in words.
    - ``runs`` name → {query_id: {passage_id: score}} (the top ``depth``, as written to the run files).
    - ``per_query``: query_id, system, one column per measure; ``means``: systems × measures.
    - ``pairs``: the report's family — (baseline, other) with a baseline, else every pair — with a, b, metric,
      delta (mean b − a), p_randomization, p_ttest, p_holm, ci_low, ci_high, permutations, seed, sd, n;
      ``all_pairs`` the same for every pair (tiers and layer findings read it).
    - ``tiers`` measure → system → tier (1 = the best and those not significantly worse than it).
    - ``groups``: per topic / language and measure: queries, each system's mean, mdd, too_small.
    - ``pipelines`` name → {'per_query': query_id, first, reranked, delta, kind (ceiling|gain|loss|same), hurts;
      'summary': counts, gain_total, loss_total, mean_delta, hurts}.
    - ``costs``: SystemCost columns plus dominated_by and pareto (quality = the first measure's mean).
    - ``disagreement``: queries ordered by spread of the first measure, then top-10 RBO against the baseline.
    - ``layer_findings``: per model given at several layers and measure, the smallest layer not significantly
      worse than the last; ``sentences``: what the set can and cannot tell, in words.
    """

    systems: dict[str, str]
    descriptions: dict[str, str]
    data: str
    measures: list[str]
    depth: int
    baseline: str | None
    alpha: float
    n_queries: int
    n_passages: int
    runs: dict[str, dict[str, dict[str, float]]]
    per_query: object
    means: object
    pairs: object
    all_pairs: object
    tiers: dict[str, dict[str, int]]
    retrieval_set: object = field(repr=False, default=None)
    groups: object = None
    pipelines: dict = field(default_factory=dict)
    costs: object = None
    disagreement: object = None
    layer_findings: list[dict] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> dict:
        """report.json: systems, means, pairs (the keys the CLI documents), and the rest of the findings."""
        pair_keys = ["a", "b", "metric", "delta", "p_randomization", "p_ttest", "p_holm", "ci_low", "ci_high",
                     "permutations", "seed"]  # fmt: skip
        pairs = [
            {key: (int(v) if key in ("permutations", "seed") else v if isinstance(v, str) else float(v))
             for key, v in zip(pair_keys, row, strict=True)}
            for row in self.pairs[pair_keys].itertuples(index=False, name=None)
        ]  # fmt: skip
        means = {s: {m: float(self.means.loc[s, m]) for m in self.measures} for s in self.systems}
        return {
            "systems": dict(self.systems),
            "means": means,
            "pairs": pairs,
            "data": self.data,
            "queries": self.n_queries,
            "passages": self.n_passages,
            "depth": self.depth,
            "baseline": self.baseline,
            "descriptions": dict(self.descriptions),
            "tiers": self.tiers,
            "pipelines": {name: p["summary"] for name, p in self.pipelines.items()},
            "costs": _records(self.costs),
            "layer_findings": self.layer_findings,
            "sentences": self.sentences,
        }

    def write(self, out: Path) -> list[Path]:
        """``out/runs/NAME.trec`` (the top ``depth`` per query), ``out/per_query.csv`` and ``out/report.json``."""
        out.mkdir(parents=True, exist_ok=True)
        written = [
            run_tools.write_trec(out / "runs" / f"{name}.trec", run, tag=name) for name, run in self.runs.items()
        ]
        self.per_query.to_csv(out / "per_query.csv", index=False)
        report = out / "report.json"
        report.write_text(json.dumps(self.report(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        return [report, out / "per_query.csv", *written]

    def side_by_side(self, query_id: str, k: int = 10):
        """One query's top ``k`` of every system side by side, and each system's changes against the baseline
        (or the first system): (tops, changes) DataFrames. tops: rank, then per system its passage and label;
        changes: system, passage_id, base_rank, rank, change (gained | lost | moved | same), label, plus the
        system's RBO and Kendall tau against the reference."""
        if query_id not in self.retrieval_set.query_texts:
            raise InvalidInputError(f"Unknown query id {str(query_id)[:60]!r}.")
        judged = self.retrieval_set.judgements.get(query_id, {})
        tops = {s: run_tools.ranking(self.runs[s].get(query_id, {}), k) for s in self.systems}
        table = {"rank": list(range(1, k + 1))}
        for system, ranked in tops.items():
            padded = ranked + [""] * (k - len(ranked))
            table[system] = padded
            table[f"{system} label"] = [judged.get(p, 0) if p else None for p in padded]
        reference = self.baseline or next(iter(self.systems))
        frames = []
        for system, ranked in tops.items():
            if system == reference:
                continue
            change = run_tools.changes(tops[reference], ranked, judged)
            change.insert(0, "system", system)
            change["rbo"] = run_tools.rbo(tops[reference], ranked)
            change["kendall_tau"] = run_tools.kendall_tau_topk(tops[reference], ranked)
            frames.append(change)
        changes = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return pd.DataFrame(table), changes


def _records(frame) -> list[dict]:
    if frame is None:
        return []
    rows = frame.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]

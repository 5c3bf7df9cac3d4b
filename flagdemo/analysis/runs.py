"""Runs of N systems on one labelled set: one ranking rule, TREC run files, per-query measures named as ir-measures
names them, and how two rankings of one query overlap (RBO, Kendall's tau, gained / lost / moved passages).

A *run* here is ``{query_id: {passage_id: score}}``, the form ir-measures, pytrec_eval and ranx read. Its ranking is
always the one trec_eval reads from a run file: score descending, ties by passage id descending
(``metrics.ranking_from_scores``); a run file keeps the top ``depth`` of that ranking and nothing else, so the
measures computed here, on the file, and by ir-measures on the file are the same numbers (tests/compare).

Measures are ``flagdemo.analysis.metrics`` (trec_eval's definitions, already held to ir-measures by the test suite)
rather than ranx's: ranx orders tied scores its own way and compiles its Numba kernels on first use (seconds), and
these per-query loops take milliseconds at the sizes flagdemo evaluates. A query the run does not cover scores 0 on
every measure (trec_eval ``-c``), so every system is averaged over the same queries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flagdemo.analysis import metrics
from flagdemo.errors import InvalidInputError

Run = dict[str, dict[str, float]]
Judgements = Mapping[str, Mapping[str, int]]
DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100", "AP")
RUN_TAG = "flagdemo"
_MEASURE = re.compile(r"^(nDCG|RR|R|P|AP)(?:@(\d+))?$")


def ranking(scores: Mapping[str, float], depth: int | None = None) -> list[str]:
    """Passage ids best first, as trec_eval reads them (ties by id, descending), cut at ``depth``."""
    ranked = metrics.ranking_from_scores(scores)
    return ranked if depth is None else ranked[: int(depth)]


def truncate(run: Mapping[str, Mapping[str, float]], depth: int) -> Run:
    """The top ``depth`` passages of every query (the part a run file keeps)."""
    return {q: {p: float(scores[p]) for p in ranking(scores, depth)} for q, scores in run.items()}


def from_matrix(scores: np.ndarray, query_ids: Sequence[str], passage_ids: Sequence[str], depth: int) -> Run:
    """A run from a (queries, passages) score matrix, keeping each query's top ``depth`` (by the ranking rule)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(query_ids), len(passage_ids)):
        raise InvalidInputError(
            f"Scores have shape {scores.shape} for {len(query_ids)} queries and {len(passage_ids)} passages."
        )
    ids = np.asarray(passage_ids, dtype=object)
    id_rank = np.argsort(np.argsort(ids, kind="mergesort"), kind="mergesort")
    keep = min(int(depth), len(passage_ids))
    run: Run = {}
    for row, query_id in enumerate(query_ids):
        order = np.lexsort((-id_rank, -scores[row]))[:keep]  # score descending, then id descending
        run[str(query_id)] = {str(ids[i]): float(scores[row, i]) for i in order}
    return run


def write_trec(path: str | Path, run: Mapping[str, Mapping[str, float]], tag: str = RUN_TAG) -> Path:
    """``qid Q0 docid rank score tag`` lines, ranks in the ranking rule's order, scores with every digit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for query_id, scores in run.items():
            for rank, passage_id in enumerate(ranking(scores), start=1):
                handle.write(f"{query_id} Q0 {passage_id} {rank} {float(scores[passage_id])!r} {tag}\n")
    return path


def read_trec(path: str | Path) -> Run:
    """A TREC run file back as a run (the scores decide the ranking, as in trec_eval)."""
    run: Run = {}
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 5:
                raise InvalidInputError(f"Line {number} of {path} is not 'qid Q0 docid rank score [tag]'.")
            run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
    return run


def check_measures(names: Sequence[str]) -> list[str]:
    """Measure names as ir-measures writes them: nDCG@k, RR@k (or RR), R@k, P@k, AP; a sentence otherwise."""
    cleaned = [str(name).strip() for name in names if str(name).strip()]
    if not cleaned:
        raise InvalidInputError("Name at least one measure, e.g. nDCG@10.")
    for name in cleaned:
        match = _MEASURE.match(name)
        if match is None or (match.group(1) in ("nDCG", "R", "P") and match.group(2) is None):
            raise InvalidInputError(
                f"Unknown measure {name[:40]!r}: use ir-measures' names nDCG@k, RR@k (or RR), R@k, P@k or AP."
            )
        if match.group(1) == "AP" and match.group(2) is not None:
            raise InvalidInputError(f"{name}: AP is taken over the whole run; write AP without a cutoff.")
        if match.group(2) is not None and int(match.group(2)) < 1:
            raise InvalidInputError(f"{name}: the cutoff must be at least 1.")
    return list(dict.fromkeys(cleaned))


def measure_function(name: str) -> Callable[[list[str], Mapping[str, int]], float]:
    """``f(ranking, judgements)`` for one ir-measures name (see ``check_measures``)."""
    kind, cutoff = _MEASURE.match(check_measures([name])[0]).groups()
    k = int(cutoff) if cutoff else None
    if kind == "nDCG":
        return lambda ranked, judged: metrics.ndcg_at_k(ranked, judged, k)
    if kind == "RR":
        return lambda ranked, judged: metrics.reciprocal_rank_at_k(ranked, judged, k or max(len(ranked), 1))
    if kind == "R":
        return lambda ranked, judged: metrics.recall_at_k(ranked, judged, k)
    if kind == "P":
        return lambda ranked, judged: metrics.precision_at_k(ranked, judged, k)
    return metrics.average_precision


def per_query(
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    judgements: Judgements,
    query_ids: Sequence[str],
    measures: Sequence[str] = DEFAULT_MEASURES,
) -> pd.DataFrame:
    """One row per (query, system): ``query_id``, ``system``, then one column per measure (ir-measures' name)."""
    measures = check_measures(measures)
    functions = [measure_function(name) for name in measures]
    rows = []
    for system, run in runs.items():
        for query_id in query_ids:
            ranked = ranking(run.get(query_id, {}))
            judged = judgements.get(query_id, {})
            rows.append([query_id, system, *(f(ranked, judged) for f in functions)])
    return pd.DataFrame(rows, columns=["query_id", "system", *measures])


def rbo(a: Sequence[str], b: Sequence[str], p: float = 0.9) -> float:
    """Rank-biased overlap of two rankings seen to depth k = max length (Webber et al. 2010, RBO_ext, eq. 32).

    RBO_ext = (X_k / k)·p^k + (1 − p)/p · Σ_{d=1..k} (X_d / d)·p^d, with X_d the overlap of the two top-d prefixes;
    for lists of unequal length the shorter is taken as ending there (Webber's eq. 32 reduces to this when both
    have the same length, the case of two top-k lists). 1 = same order, 0 = nothing shared.
    """
    if not 0 < p < 1:
        raise InvalidInputError(f"RBO's persistence p must be between 0 and 1, not {p}.")
    k = max(len(a), len(b))
    if k == 0:
        return 1.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    overlap = 0
    total = 0.0
    for depth in range(1, k + 1):
        x = a[depth - 1] if depth <= len(a) else None
        y = b[depth - 1] if depth <= len(b) else None
        if x is not None and y is not None and x == y:
            overlap += 1
        else:
            overlap += (x is not None and x in seen_b) + (y is not None and y in seen_a)
        if x is not None:
            seen_a.add(x)
        if y is not None:
            seen_b.add(y)
        total += overlap / depth * p**depth
    return float(overlap / k * p**k + (1 - p) / p * total)


def kendall_tau_topk(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau-b between two top-k lists over their union (a passage missing from a list ranks below it)."""
    union = list(dict.fromkeys([*a, *b]))
    if len(union) < 2:
        return math.nan
    return metrics.kendall_tau(metrics.ranking_positions(a, union), metrics.ranking_positions(b, union))


def changes(base: Sequence[str], other: Sequence[str], judged: Mapping[str, int]) -> pd.DataFrame:
    """How ``other``'s top list differs from ``base``'s: each passage 'gained', 'lost', 'moved' or 'same'."""
    where_base = {p: r for r, p in enumerate(base, start=1)}
    where_other = {p: r for r, p in enumerate(other, start=1)}
    rows = []
    for passage in dict.fromkeys([*other, *base]):
        rb, ro = where_base.get(passage), where_other.get(passage)
        change = "gained" if rb is None else "lost" if ro is None else "same" if rb == ro else "moved"
        label = int(judged.get(passage, 0))
        rows.append({"passage_id": passage, "base_rank": rb, "rank": ro, "change": change, "label": label})
    return pd.DataFrame(rows, columns=["passage_id", "base_rank", "rank", "change", "label"])

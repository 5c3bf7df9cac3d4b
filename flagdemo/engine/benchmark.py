"""Compare N systems on a labelled set: runs, per-query measures, paired statistics, and what lies behind them.

``benchmark(access, systems, ...)`` runs every system of ``systems.parse_systems`` on the bundled labelled set (or
a ``RetrievalSet`` read from a BEIR folder), evaluates every run at the measures asked for (ir-measures' names),
tests every pair or every system against a baseline (``analysis.significance``), and returns a
``BenchmarkOutcome``: means, pairs, tiers, per-topic and per-language breakdowns with detectable differences,
pipelines split into recall ceiling and reordering, cost per system with its Pareto frontier, per-query
disagreement with side-by-side tops, and the smallest layer of a model not significantly worse than its last.

Embeddings are shared: each embedder encodes the set once per request for all the layers asked (and a later request
reuses them, ``compare.labelled_encodings``); a reranker's scores of the same pairs are kept with its wrapper too.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from flagdemo.analysis import fusion, runs, scoring, significance
from flagdemo.data import datasets
from flagdemo.data.datasets import RetrievalSet
from flagdemo.engine.access import ModelAccess
from flagdemo.engine.compare import labelled_encodings
from flagdemo.engine.encoding import pick_layer
from flagdemo.engine.guards import check_layer
from flagdemo.engine.outcomes import BenchmarkOutcome, SystemCost
from flagdemo.engine.systems import System, parse_systems
from flagdemo.errors import FlagDemoError, InvalidInputError, ResourceLimitError
from flagdemo.models.lexical import BM25Index
from flagdemo.models.rerankers import layer_sweep

DEPTH = 100
SAID_PAIRS = 8  # pairs the set cannot tell apart, said one by one (the rest counted)
_PAIR_SCORES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # reranker wrapper → its scored pair lists


def benchmark(
    access: ModelAccess,
    systems: Sequence[str] | Mapping[str, str],
    *,
    data: RetrievalSet | None = None,
    data_name: str = "labelled",
    measures: Sequence[str] = runs.DEFAULT_MEASURES,
    depth: int = DEPTH,
    baseline: str | None = None,
    max_queries: int = 0,
    permutations: int = significance.PERMUTATIONS,
    bootstrap: int = significance.BOOTSTRAP,
    seed: int = significance.SEED,
    alpha: float = significance.ALPHA,
    max_pairs: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> BenchmarkOutcome:
    """Run, evaluate and compare ``systems`` (``NAME=SPEC`` strings or {name: spec}); see the module docstring."""
    started = time.perf_counter()
    measures = runs.check_measures(measures)
    parsed = parse_systems(systems)
    if baseline is not None and baseline not in parsed:
        raise InvalidInputError(f"The baseline {baseline!r} is not one of the systems ({', '.join(parsed)}).")
    depth = int(depth)
    if depth < 1:
        raise InvalidInputError(f"The run depth must be at least 1, not {depth}.")
    data = data if data is not None else datasets.load_retrieval_set()
    if int(max_queries) < 0:
        raise InvalidInputError(f"max_queries must be 0 (all) or more, not {max_queries}.")
    if int(max_queries) > 0:
        data = data.subset(max_queries=int(max_queries))
    if data.queries.empty or data.passages.empty:
        raise InvalidInputError("The labelled set has no queries or no passages.")
    _check_depths(parsed, depth)
    _check_pairs(parsed, len(data.queries), len(data.passages), max_pairs)
    _check_models(access, parsed)
    runner = _Runner(access, data, depth, parsed, progress)
    all_runs = {name: runner.run(system) for name, system in parsed.items()}
    query_ids = data.queries["id"].astype(str).tolist()
    judgements = data.judgements
    per_query = runs.per_query(all_runs, judgements, query_ids, measures)
    names = list(parsed)
    every_pair = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    report_pairs = [(baseline, other) for other in names if other != baseline] if baseline else every_pair
    settings = {"permutations": permutations, "bootstrap": bootstrap, "seed": seed}
    all_pairs = significance.compare_systems(per_query, measures, every_pair, **settings)
    pairs = (
        all_pairs if baseline is None else significance.compare_systems(per_query, measures, report_pairs, **settings)
    )
    means = per_query.groupby("system", sort=False)[measures].mean().loc[names]
    tiers = {m: significance.tiers(means[m], all_pairs[all_pairs["metric"] == m], alpha) for m in measures}
    outcome = BenchmarkOutcome(
        systems={name: _spec_text(systems, name) for name in names},
        descriptions={name: system.describe() for name, system in parsed.items()},
        data=data_name,
        measures=measures,
        depth=depth,
        baseline=baseline,
        alpha=alpha,
        n_queries=len(query_ids),
        n_passages=len(data.passages),
        runs=all_runs,
        per_query=per_query,
        means=means,
        pairs=pairs,
        all_pairs=all_pairs,
        tiers=tiers,
        retrieval_set=data,
    )
    outcome.groups = _groups(outcome, report_pairs)
    outcome.pipelines = _pipelines(outcome, parsed)
    outcome.costs = _costs(outcome, parsed, runner)
    outcome.disagreement = _disagreement(outcome)
    outcome.layer_findings = _layer_findings(outcome, parsed, runner)
    outcome.sentences = _sentences(outcome)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _spec_text(systems: Sequence[str] | Mapping[str, str], name: str) -> str:
    if isinstance(systems, Mapping):
        return str(systems[name]).strip()
    for item in systems:
        key, _, spec = str(item).partition("=")
        if key.strip() == name:
            return spec.strip()
    return ""


def _walk(system: System):
    yield system
    for member in system.members:
        yield from _walk(member)


def _check_depths(parsed: Mapping[str, System], depth: int) -> None:
    for name, system in parsed.items():
        for part in _walk(system):
            if part.kind == "pipeline" and part.depth > depth:
                raise InvalidInputError(
                    f"{name} reranks the top {part.depth}, but runs keep only the top {depth}; "
                    f"rerank at most {depth} or raise the depth."
                )


def _check_pairs(parsed: Mapping[str, System], n_queries: int, n_passages: int, most: int | None) -> None:
    """Refuse, before any model runs, a comparison whose pipelines would rerank more than ``most`` pairs."""
    if most is None:
        return
    pipelines = {part for system in parsed.values() for part in _walk(system) if part.kind == "pipeline"}
    pairs = sum(n_queries * min(part.depth, n_passages) for part in pipelines)
    if pairs > most:
        raise ResourceLimitError(
            f"These systems would rerank {pairs:,} query–passage pairs ({_count(len(pipelines), 'pipeline')} × "
            f"{n_queries} queries × their depth); one comparison here reranks at most {int(most):,} "
            "(FLAGDEMO_MAX_RERANKED_PAIRS). "
            "Rerank fewer passages per query, use fewer queries, or fewer pipelines."
        )


def _check_models(access: ModelAccess, parsed: Mapping[str, System]) -> None:
    """Every model resolved for its role before anything runs: the sentence names the system."""
    for name, system in parsed.items():
        for part in _walk(system):
            try:
                if part.kind in ("embedder", "m3"):
                    spec = access.spec(part.model, "embedder")
                    if part.kind == "m3" and not spec.is_m3:
                        raise InvalidInputError(
                            f"{part.model} is not a BGE-M3 model, so it has no {part.mode} mode; use it as a plain "
                            "embedder, or choose bge-m3."
                        )
                    if part.task is not None and not spec.is_llm_embedder:
                        raise InvalidInputError(f"Only LLM-Embedder takes a task; {part.model} has none.")
                elif part.kind == "pipeline":
                    access.spec(part.reranker, "reranker" if part.layer is None else "layer-cutoff")
            except FlagDemoError as error:  # the sentence names the system it is about
                raise type(error)(f"{name}: {error}") from None


class _Runner:
    """Runs systems once each (a system used by a pipeline or a fusion is run once), keeping what each cost."""

    def __init__(self, access, data: RetrievalSet, depth: int, parsed: Mapping[str, System], progress) -> None:
        self.access, self.data, self.depth, self.progress = access, data, depth, progress
        self.query_ids = data.queries["id"].astype(str).tolist()
        self.passage_ids = data.passages["id"].astype(str).tolist()
        self.done: dict[System, dict] = {}
        self.costs: dict[System, dict] = {}
        self.encodings: dict = {}
        self.layers_wanted: dict[tuple[str, str | None], bool] = {}
        self.num_layers: dict[tuple[str, str | None], int] = {}
        for system in parsed.values():
            for part in _walk(system):
                if part.kind == "embedder":
                    key = (part.model, part.task)
                    self.layers_wanted[key] = self.layers_wanted.get(key, False) or part.layer is not None
        self.total = max(len(parsed), 1)

    def run(self, system: System) -> dict:
        if system not in self.done:
            if self.progress is not None:
                self.progress(min(len(self.done) / self.total, 0.95), system.describe())
            self.done[system] = getattr(self, f"_run_{system.kind}")(system)
        return self.done[system]

    # -- first stages --------------------------------------------------------------------------------------

    def _encoded(self, model: str, task: str | None, all_layers: bool):
        key = (model, task, all_layers)
        if key not in self.encodings:
            queries, passages, seconds = labelled_encodings(
                self.access,
                model,
                self.data.queries["text"].tolist(),
                self.data.passages["text"].tolist(),
                all_layers=all_layers,
                task=task,
            )
            with self.access.embedder_for(model, task=task) as embedder:
                self.num_layers[model, task] = int(getattr(embedder, "num_layers", 0) or 0)
                nbytes = _model_bytes(embedder)
            self.encodings[key] = (queries, passages, seconds, nbytes)
        return self.encodings[key]

    def _run_embedder(self, system: System) -> dict:
        all_layers = self.layers_wanted.get((system.model, system.task), False)
        queries, passages, _, nbytes = self._encoded(system.model, system.task, all_layers)
        layer = system.layer
        if layer is not None:
            n_layers = self.num_layers[system.model, system.task]
            if layer > n_layers:
                raise InvalidInputError(f"{system.model} has layers 0 to {n_layers}; there is no layer {layer}.")
        started = time.perf_counter()
        scores = scoring.cosine(pick_layer(queries, layer), pick_layer(passages, layer))
        search = time.perf_counter() - started
        dim = int(pick_layer(passages, layer).shape[1])
        self.costs[system] = _cost_of(
            queries, passages, search, len(self.query_ids), nbytes=nbytes, vector_bytes=dim * 4, model=system.model
        )
        return runs.from_matrix(scores, self.query_ids, self.passage_ids, self.depth)

    def _run_m3(self, system: System) -> dict:
        queries, passages, _, nbytes = self._encoded(system.model, None, False)
        started = time.perf_counter()
        dense = scoring.inner(queries.embeddings, passages.embeddings)
        parts = {"dense": dense}
        if system.mode in ("sparse", "m3"):
            parts["sparse"] = scoring.lexical_matrix(queries.lexical_weights, passages.lexical_weights)
        if system.mode in ("colbert", "m3"):
            parts["colbert"] = scoring.colbert_matrix(queries.colbert_vecs, passages.colbert_vecs)
        if system.mode == "m3":
            scores = scoring.weighted_mean([parts["dense"], parts["sparse"], parts["colbert"]], system.weights)
        else:
            scores = parts[system.mode]
        search = time.perf_counter() - started
        dim = int(passages.embeddings.shape[1])
        per_vector = {
            "dense": dim * 4,
            "sparse": int(np.mean([len(w) for w in passages.lexical_weights]) * 8),
            "colbert": int(np.mean([len(v) for v in passages.colbert_vecs]) * dim * 4),
        }
        used = ("dense", "sparse", "colbert") if system.mode == "m3" else (system.mode,)
        vector_bytes = sum(per_vector[mode] for mode in used)
        self.costs[system] = _cost_of(
            queries,
            passages,
            search,
            len(self.query_ids),
            nbytes=nbytes,
            vector_bytes=vector_bytes,
            model=system.model,
        )
        return runs.from_matrix(scores, self.query_ids, self.passage_ids, self.depth)

    def _run_bm25(self, system: System) -> dict:
        index = BM25Index.build(self.passage_ids, self.data.passages["text"].tolist(), k1=system.k1, b=system.b)
        started = time.perf_counter()
        scores = index.scores(self.data.queries["text"].tolist())
        seconds = time.perf_counter() - started
        self.costs[system] = {
            "query_ms": 1000 * seconds / len(self.query_ids),
            "passage_ms": 1000 * index.index_seconds / len(self.passage_ids),
            "pair_ms": math.nan,
            "model_bytes": 0,
            "bytes_per_vector": index.nbytes / len(self.passage_ids),
            "models": {},
        }
        return runs.from_matrix(scores, self.query_ids, self.passage_ids, self.depth)

    # -- second stages -------------------------------------------------------------------------------------

    def _run_pipeline(self, system: System) -> dict:
        first = self.run(system.first)
        texts_q, texts_p = self.data.query_texts, self.data.passage_texts
        heads = {q: runs.ranking(first.get(q, {}), system.depth) for q in self.query_ids}
        pairs = [[texts_q[q], texts_p[p]] for q in self.query_ids for p in heads[q]]
        scores, seconds, nbytes = self._pair_scores(system, pairs)
        result, position = {}, 0
        for q in self.query_ids:
            head = heads[q]
            head_scores = scores[position : position + len(head)]
            position += len(head)
            fused = {p: float(s) for p, s in zip(head, head_scores, strict=True)}
            floor = min(fused.values()) if fused else 0.0
            tail = runs.ranking(first.get(q, {}))[len(head) :]
            # passages below the cut keep their first-stage order, placed under the reranked head
            fused.update({p: floor - (i + 1) for i, p in enumerate(tail)})
            result[q] = fused
        first_cost = self.costs[system.first]
        self.costs[system] = {
            "query_ms": first_cost["query_ms"] + 1000 * seconds / len(self.query_ids),
            "passage_ms": first_cost["passage_ms"],
            "pair_ms": 1000 * seconds / max(len(pairs), 1),
            "model_bytes": sum({**first_cost["models"], system.reranker: nbytes}.values()),
            "bytes_per_vector": first_cost["bytes_per_vector"],
            "models": {**first_cost["models"], system.reranker: nbytes},
        }
        return runs.truncate(result, self.depth)

    def _pair_scores(self, system: System, pairs: list[list[str]]) -> tuple[np.ndarray, float, int]:
        role = "reranker" if system.layer is None else "layer-cutoff"
        digest = hashlib.sha256(json.dumps([system.layer, pairs]).encode("utf-8", "surrogatepass")).hexdigest()
        with self.access.reranker_for(system.reranker, role) as reranker:
            kept = _PAIR_SCORES.setdefault(reranker, OrderedDict())
            if digest not in kept:
                started = time.perf_counter()
                if not pairs:
                    scores = np.zeros(0)
                elif system.layer is None:
                    scores = np.asarray(reranker.compute_score_detailed(pairs).scores, dtype=np.float64)
                else:
                    check_layer(reranker, system.layer)
                    sweep = layer_sweep(reranker, pairs, layers=[system.layer])
                    scores = np.asarray(sweep.scores, dtype=np.float64)[-1]
                kept[digest] = (scores, time.perf_counter() - started)
                while len(kept) > 4:
                    kept.popitem(last=False)
            scores, seconds = kept[digest]
            nbytes = _model_bytes(reranker)
        return scores, seconds, nbytes

    def _run_fusion(self, system: System) -> dict:
        members = [self.run(member) for member in system.members]
        fusion.warm_up(system.method)  # ranx compiles on first use: not the fusion's cost
        started = time.perf_counter()
        fused = fusion.fuse(members, system.method, k=system.k, norm=system.norm)
        seconds = time.perf_counter() - started
        member_costs = [self.costs[m] for m in system.members]
        models = {m: b for c in member_costs for m, b in c["models"].items()}  # a model shared counts once
        self.costs[system] = {
            "query_ms": sum(c["query_ms"] for c in member_costs) + 1000 * seconds / len(self.query_ids),
            "passage_ms": sum(c["passage_ms"] for c in member_costs),
            "pair_ms": math.nan,
            "model_bytes": sum(models.values()),
            "bytes_per_vector": sum(c["bytes_per_vector"] for c in member_costs),
            "models": models,
        }
        return runs.truncate({q: fused.get(q, {}) for q in self.query_ids}, self.depth)


def _cost_of(queries, passages, search_seconds, n_queries, *, nbytes, vector_bytes, model) -> dict:
    return {
        "query_ms": 1000 * (queries.timings.run_seconds + search_seconds) / n_queries,
        "passage_ms": 1000 * passages.timings.run_seconds / max(len(passages.embeddings), 1),
        "pair_ms": math.nan,
        "model_bytes": nbytes,
        "bytes_per_vector": float(vector_bytes),
        "models": {model: nbytes},
    }


def _model_bytes(wrapper) -> int:
    """Bytes of a wrapper's torch weights (parameters and buffers), 0 when it has none to count."""
    model = getattr(wrapper, "model", None)
    if model is None or not hasattr(model, "parameters"):
        return 0
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


# ---- what lies behind the means ----------------------------------------------------------------------------


def _groups(outcome: BenchmarkOutcome, report_pairs) -> pd.DataFrame:
    """Per topic and per language: queries, each system's mean, and the smallest difference the group can detect."""
    queries = outcome.retrieval_set.queries
    rows = []
    for kind in ("topic", "lang"):
        if kind not in queries.columns or queries[kind].isna().all() or (queries[kind].astype(str) == "").all():
            continue
        for value, group in queries.groupby(kind, sort=True):
            ids = set(group["id"].astype(str))
            part = outcome.per_query[outcome.per_query["query_id"].isin(ids)]
            n = len(ids)
            for measure in outcome.measures:
                wide = part.pivot(index="query_id", columns="system", values=measure)
                sds = [float(np.std(wide[b] - wide[a], ddof=1)) for a, b in report_pairs] if n > 1 else []
                sd = float(np.median(sds)) if sds else math.nan
                mdd = float(significance.minimum_detectable(sd, n)) if n >= significance.MIN_GROUP else math.nan
                row = {"group": kind, "value": str(value), "queries": n, "metric": measure}
                row.update({system: float(wide[system].mean()) for system in outcome.systems})
                row["mdd"] = mdd
                row["too_small"] = n < significance.MIN_GROUP
                rows.append(row)
    return pd.DataFrame(rows)


def _pipelines(outcome: BenchmarkOutcome, parsed: Mapping[str, System]) -> dict:
    """Each pipeline's change per query: recall ceiling (nothing relevant in the first stage's top depth) or
    reordering gain / loss, on the headline measure; 'hurts' where the reranked ranking is worse."""
    headline = outcome.measures[0]
    measure = runs.measure_function(headline)
    judgements = outcome.retrieval_set.judgements
    found = {}
    for name, system in parsed.items():
        if system.kind != "pipeline":
            continue
        first_run = _run_of(outcome, parsed, system.first)
        rows = []
        for q in outcome.retrieval_set.queries["id"].astype(str):
            judged = judgements.get(q, {})
            head = runs.ranking(first_run.get(q, {}), system.depth)
            before = measure(runs.ranking(first_run.get(q, {})), judged)
            after = measure(runs.ranking(outcome.runs[name].get(q, {})), judged)
            ceiling = not any(judged.get(p, 0) >= 1 for p in head)
            delta = after - before
            kind = "ceiling" if ceiling else "gain" if delta > 1e-12 else "loss" if delta < -1e-12 else "same"
            rows.append({"query_id": q, "first": before, "reranked": after, "delta": delta, "kind": kind,
                         "hurts": delta < -1e-12})  # fmt: skip
        frame = pd.DataFrame(rows)
        mean_delta = float(frame["delta"].mean())
        summary = {
            "metric": headline,
            "first": system.first.describe(),
            "depth": system.depth,
            "ceiling": int((frame["kind"] == "ceiling").sum()),
            "gain": int((frame["kind"] == "gain").sum()),
            "loss": int((frame["kind"] == "loss").sum()),
            "same": int((frame["kind"] == "same").sum()),
            "gain_total": float(frame.loc[frame["delta"] > 0, "delta"].sum() / len(frame)),
            "loss_total": float(frame.loc[frame["delta"] < 0, "delta"].sum() / len(frame)),
            "mean_delta": mean_delta,
            "hurts": mean_delta < 0,
        }
        found[name] = {"per_query": frame, "summary": summary}
    return found


def _run_of(outcome, parsed, system: System) -> dict:
    for name, other in parsed.items():
        if other == system and name in outcome.runs:
            return outcome.runs[name]
    raise InvalidInputError("internal: a pipeline's first stage has no run")  # pragma: no cover


def _costs(outcome: BenchmarkOutcome, parsed: Mapping[str, System], runner: _Runner) -> pd.DataFrame:
    """Cost per system next to its headline quality, with the systems the others dominate."""
    headline = outcome.measures[0]
    rows = []
    for name, system in parsed.items():
        cost = runner.costs[system]
        rows.append(
            SystemCost(
                system=name,
                quality=float(outcome.means.loc[name, headline]),
                query_ms=float(cost["query_ms"]),
                passage_ms=float(cost["passage_ms"]),
                pair_ms=float(cost["pair_ms"]),
                model_mb=cost["model_bytes"] / 2**20,
                bytes_per_vector=float(cost["bytes_per_vector"]),
            ).__dict__
        )
    frame = pd.DataFrame(rows)
    dominated = []
    for row in frame.itertuples(index=False):
        better = frame[
            (frame["quality"] >= row.quality)
            & (frame["query_ms"] <= row.query_ms)
            & ((frame["quality"] > row.quality) | (frame["query_ms"] < row.query_ms))
        ]
        dominated.append(", ".join(better["system"]) if not better.empty else "")
    frame["dominated_by"] = dominated
    frame["pareto"] = frame["dominated_by"] == ""
    return frame


def _disagreement(outcome: BenchmarkOutcome, k: int = 10) -> pd.DataFrame:
    """Queries ordered by how much the systems disagree: spread of the headline measure, then top-k overlap."""
    headline = outcome.measures[0]
    wide = outcome.per_query.pivot(index="query_id", columns="system", values=headline)
    reference = outcome.baseline or next(iter(outcome.systems))
    texts = outcome.retrieval_set.query_texts
    rows = []
    for q in outcome.retrieval_set.queries["id"].astype(str):
        base = runs.ranking(outcome.runs[reference].get(q, {}), k)
        others = [s for s in outcome.systems if s != reference]
        overlaps = [runs.rbo(base, runs.ranking(outcome.runs[s].get(q, {}), k)) for s in others]
        rows.append(
            {
                "query_id": q,
                "query": texts.get(q, ""),
                "spread": float(wide.loc[q].max() - wide.loc[q].min()),
                "best": str(wide.loc[q].idxmax()),
                "worst": str(wide.loc[q].idxmin()),
                "mean_rbo": float(np.mean(overlaps)) if overlaps else 1.0,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values(["spread", "mean_rbo", "query_id"], ascending=[False, True, True]).reset_index(drop=True)


def _layer_findings(outcome: BenchmarkOutcome, parsed: Mapping[str, System], runner: _Runner) -> list[dict]:
    """For each embedder given at two or more layers, and each reranker given at two or more cutoff layers over the
    same first stage and depth: the smallest layer not significantly worse than the deepest given."""
    groups: dict[tuple, tuple[str, list[tuple[float, str, str]]]] = {}
    for name, system in parsed.items():
        if system.kind == "embedder":
            last = runner.num_layers.get((system.model, system.task), 0)
            layer = last if system.layer is None else system.layer
            key = ("embedder", system.model, system.task)
            groups.setdefault(key, (system.model, []))[1].append((layer, f"layer {layer}", name))
        elif system.kind == "pipeline":
            key = ("pipeline", system.first, system.reranker, system.depth)
            label = f"{system.reranker} over {system.first.describe()} (top {system.depth})"
            cut = (math.inf, "its last layer") if system.layer is None else (system.layer, f"layer {system.layer}")
            groups.setdefault(key, (label, []))[1].append((*cut, name))
    findings = []
    for model, given in groups.values():
        members = sorted({order: (said, name) for order, said, name in sorted(given, reverse=True)}.items())
        if len(members) < 2:  # one name per layer: two systems at the same layer are not a layer comparison
            continue
        for measure in outcome.measures:
            findings.append(_smallest_layer(outcome, model, measure, [(o, s, n) for o, (s, n) in members]))
    return findings


def _smallest_layer(outcome: BenchmarkOutcome, model: str, measure: str, members: list[tuple]) -> dict:
    """Holm over the tests of each shallower layer against the deepest; the first that is not worse wins."""
    tested = outcome.all_pairs[outcome.all_pairs["metric"] == measure]
    (*others, (last_order, last_said, last_name)) = members
    p_raw, deltas = [], []
    for _, _, name in others:
        row = tested[((tested["a"] == name) & (tested["b"] == last_name))
                     | ((tested["a"] == last_name) & (tested["b"] == name))].iloc[0]  # fmt: skip
        sign = 1.0 if row["a"] == last_name else -1.0  # delta of (layer − last)
        p_raw.append(float(row["p_randomization"]))
        deltas.append(sign * float(row["delta"]))
    adjusted = significance.holm(p_raw)
    smallest = (last_order, last_said, last_name)
    for member, delta, p in zip(others, deltas, adjusted, strict=True):
        if delta >= 0 or p >= outcome.alpha:
            smallest = member
            break
    tests = f"Holm over {len(others)} tests, α = {outcome.alpha:g}"
    if smallest[2] == last_name:
        smaller = ", ".join(said for _, said, _ in others)
        sentence = (
            f"{model} on {measure}: every shallower layer given ({smaller}) is significantly worse than {last_said} "
            f"({last_name}), so the deepest is the smallest that holds up ({tests})."
        )
    else:
        sentence = (
            f"{model} on {measure}: {smallest[1]} ({smallest[2]}) is the smallest layer given that is not "
            f"significantly worse than {last_said} ({last_name}) ({tests})."
        )
    return {"model": model, "metric": measure, "last_layer": _layer_number(last_order), "last": last_name,
            "smallest_layer": _layer_number(smallest[0]), "smallest": smallest[2], "sentence": sentence}  # fmt: skip


def _layer_number(order: float) -> int | None:
    """A layer as report.json writes it: None for a reranker's own last layer (its count is the model's)."""
    return None if math.isinf(order) else int(order)


def _sentences(outcome: BenchmarkOutcome) -> list[str]:
    """What the set can and cannot tell, in words (the headline measure pair by pair, the rest counted)."""
    said = []
    headline = outcome.measures[0]
    for measure in outcome.measures:
        rows = outcome.pairs[outcome.pairs["metric"] == measure]
        apart = int((rows["p_holm"] < outcome.alpha).sum())
        said.append(f"On {measure}, {apart} of {len(rows)} pairs differ significantly (Holm, α = {outcome.alpha:g}).")
    top = [name for name, tier in outcome.tiers[headline].items() if tier == 1]
    said.append(f"Tier 1 on {headline} (the best and every system not significantly worse than it): {', '.join(top)}.")
    unclear = [r for r in outcome.pairs.itertuples(index=False) if r.metric == headline and r.p_holm >= outcome.alpha]
    unclear.sort(key=lambda r: -abs(r.delta))
    if len(unclear) > SAID_PAIRS:
        said.append(
            f"On {headline} the set cannot tell {len(unclear)} of the "
            f"{int((outcome.pairs['metric'] == headline).sum())} pairs apart; the {SAID_PAIRS} largest differences "
            "among them:"
        )
    for row in unclear[:SAID_PAIRS]:
        mdd = float(significance.minimum_detectable(row.sd, int(row.n)))
        said.append(
            f"The set cannot tell {row.a} and {row.b} apart on {headline}: Δ = {row.delta:+.3f} "
            f"(95% CI {row.ci_low:+.3f} to {row.ci_high:+.3f}), Holm-adjusted p = {row.p_holm:.3f}; with "
            f"{int(row.n)} queries it would detect a difference of about {mdd:.3f}."
        )
    small = outcome.groups[outcome.groups["too_small"]] if not outcome.groups.empty else outcome.groups
    if not small.empty:
        names = sorted({f"{r.group}={r.value} ({r.queries})" for r in small.itertuples(index=False)})
        said.append(
            f"Too few queries to compare systems within {', '.join(names)}: fewer than {significance.MIN_GROUP} each."
        )
    for name, pipeline in outcome.pipelines.items():
        s = pipeline["summary"]
        verdict = "hurts" if s["hurts"] else "helps" if s["mean_delta"] > 0 else "changes nothing"
        said.append(
            f"{name}: the reranker {verdict} on average ({s['metric']} Δ {s['mean_delta']:+.3f}); it gains on "
            f"{_queries(s['gain'])}, loses on {s['loss']}, and {s['ceiling']} had no relevant passage in the first "
            f"stage's top {s['depth']} (the recall ceiling)."
        )
    said.extend(finding["sentence"] for finding in outcome.layer_findings if finding["metric"] == headline)
    return said


def _queries(count: int) -> str:
    return f"{count} {'query' if count == 1 else 'queries'}"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"

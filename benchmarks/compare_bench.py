"""The comparison's statistics at scale: 10 systems × 1,000 queries, every pair, the four default measures.

Synthetic, seeded per-query scores (``scores``): each query has a difficulty, each system an effect (0 to 0.05
apart), each (query, system) its own noise, clipped to [0, 1], for nDCG@10, RR@10, R@100 and AP. Timed as
``Engine.benchmark`` runs it without a baseline: ``significance.compare_systems`` over every pair of every measure
(45 pairs × 4 measures = 180 tests in one family: 10,000 sign flips, 10,000 bootstrap resamples, the t-test, Holm),
then the tiers of each measure. One untimed call first (imports, allocator); then the median of ``--runs`` calls.
The randomization test and the bootstrap are also timed alone, on the same difference matrix.

``python -m benchmarks.compare_bench`` runs it alone; ``make bench`` runs it as the ``statistics`` section.
Reported, never asserted (the issue's target is under a second on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from benchmarks.report import RESULTS_DIR, Report
from flagdemo.analysis import runs, significance

SYSTEMS = 10
QUERIES = 1_000
SEED = 0


def scores(systems: int = SYSTEMS, queries: int = QUERIES, seed: int = SEED) -> pd.DataFrame:
    """A per-query frame as ``runs.per_query`` makes it: query_id, system, one column per default measure."""
    rng = np.random.default_rng(seed)
    measures = list(runs.DEFAULT_MEASURES)
    difficulty = rng.uniform(0.2, 0.8, size=(1, queries, len(measures)))
    effect = np.linspace(0.0, 0.05, systems)[:, None, None]
    values = np.clip(difficulty + effect + rng.normal(0.0, 0.2, size=(systems, queries, len(measures))), 0.0, 1.0)
    frame = pd.DataFrame(values.reshape(systems * queries, len(measures)), columns=measures)
    frame.insert(0, "system", np.repeat([f"s{s}" for s in range(systems)], queries))
    frame.insert(0, "query_id", np.tile([f"q{q:04d}" for q in range(queries)], systems))
    return frame


def statistics_and_tiers(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """What ``Engine.benchmark`` computes from the per-query frame: every pair tested, then tiers per measure."""
    measures = list(runs.DEFAULT_MEASURES)
    names = list(dict.fromkeys(frame["system"]))
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    tested = significance.compare_systems(frame, measures, pairs)
    means = frame.groupby("system", sort=False)[measures].mean()
    tiers = {m: significance.tiers(means[m], tested[tested["metric"] == m]) for m in measures}
    return tested, tiers


def _median_seconds(function, runs_: int) -> float:
    seconds = []
    for _ in range(runs_):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def bench_statistics(report: Report, args) -> None:
    """The ``statistics`` section of ``make bench``."""
    frame = scores()
    repeats = max(int(args.runs), 3)
    tested, tiers = statistics_and_tiers(frame)  # untimed: imports, allocator, scipy's first call
    whole = _median_seconds(lambda: statistics_and_tiers(frame), repeats)
    tier_count = max(tiers["nDCG@10"].values())
    report.add(
        "statistics",
        f"{SYSTEMS} systems × {QUERIES:,} queries, 4 measures, every pair ({len(tested)} tests) + tiers",
        f"{whole:.2f} s (median of {repeats}; {significance.PERMUTATIONS:,} sign flips, "
        f"{significance.BOOTSTRAP:,} bootstrap resamples; {tier_count} tiers on nDCG@10)",
        seconds=whole,
        tests=len(tested),
        tiers_ndcg=tier_count,
    )
    measures = list(runs.DEFAULT_MEASURES)
    wide = {m: frame.pivot(index="query_id", columns="system", values=m) for m in measures}
    names = list(dict.fromkeys(frame["system"]))
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    d = np.column_stack([wide[m][b].to_numpy() - wide[m][a].to_numpy() for m in measures for a, b in pairs])
    flips = _median_seconds(lambda: significance.randomization_p(d), repeats)
    resamples = _median_seconds(lambda: significance.bootstrap_ci(d), repeats)
    report.add(
        "statistics",
        f"of which: randomization test / bootstrap CI ({d.shape[0]:,} × {d.shape[1]} differences)",
        f"{flips:.2f} s / {resamples:.2f} s",
        randomization_seconds=flips,
        bootstrap_seconds=resamples,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default="machine")
    parser.add_argument("--runs", type=int, default=5, help="timed calls; the median is reported")
    args = parser.parse_args(argv)
    report = Report(args.machine, RESULTS_DIR / f"{args.machine}-statistics.json")
    bench_statistics(report, args)
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

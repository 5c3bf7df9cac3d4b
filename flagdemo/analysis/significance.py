"""Paired statistics over per-query scores: is system B better than A on these queries, and by how much?

Every test is paired by query (the same queries, two systems). For a family of pairs at once:

- ``delta``: mean over queries of (B − A).
- Paired randomization test (Fisher's sign-flip test, Smucker et al. 2007): under the null each query's difference
  is as likely to have either sign; the two-sided p-value is (1 + #{|mean of flipped d| ≥ |mean d|}) / (1 + P) over
  P random sign vectors (Phipson & Smyth 2010: never 0). Written by hand because it has to be vectorised: one
  seeded matrix of P × n signs serves every pair and measure (a matrix product), which is what makes 10 systems ×
  1,000 queries take well under a second; scipy's ``permutation_test`` loops pair by pair. The tests hold it to an
  exhaustive enumeration and to scipy.
- Paired t-test: ``scipy.stats.ttest_rel(b, a)`` (two-sided); p = 1 when every difference is 0.
- Holm's step-down correction across the family (Holm 1979), by hand (statsmodels is not a dependency):
  sort the m p-values, p_holm(i) = max_{j ≤ i} min(1, (m − j + 1)·p(j)).
- Paired bootstrap 95% CI of ``delta``: B resamples of the queries with replacement (seeded), percentile interval.
  Also by hand for the same reason (one resampling-count matrix for every pair); the tests check its coverage.
- Minimum detectable difference of a paired test at α = 0.05 and power 0.8 from the per-query standard deviation
  of the differences: (t_{1−α/2, n−1} + t_{0.8, n−1}) · sd / √n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from flagdemo.errors import InvalidInputError

PERMUTATIONS = 10_000
BOOTSTRAP = 10_000
SEED = 42
ALPHA = 0.05
POWER = 0.8
MIN_GROUP = 5  # fewer queries than this: no test, no detectable difference (a sentence says so)


@dataclass(frozen=True)
class Family:
    """Results of a family of paired comparisons (one entry per column of the difference matrix)."""

    delta: np.ndarray
    p_randomization: np.ndarray
    p_ttest: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    sd: np.ndarray
    permutations: int
    bootstrap: int
    seed: int


def _differences(differences: np.ndarray) -> np.ndarray:
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    if d.ndim != 2 or d.shape[0] < 1:
        raise InvalidInputError("Paired tests need a (queries, comparisons) matrix of per-query differences.")
    if not np.isfinite(d).all():
        raise InvalidInputError("Per-query scores must be finite numbers for the paired tests.")
    return d


def randomization_p(
    differences: np.ndarray, permutations: int = PERMUTATIONS, seed: int = SEED, chunk: int = 2_000
) -> np.ndarray:
    """Two-sided paired randomization (sign-flip) p-value for each column of a (queries, comparisons) matrix."""
    d = _differences(differences)
    n = d.shape[0]
    if int(permutations) < 1:
        raise InvalidInputError(f"The randomization test needs at least one permutation, not {permutations}.")
    observed = np.abs(d.mean(axis=0))
    tolerance = 1e-12 * np.maximum(1.0, observed)  # the observed sign vector's own flips must count as "as extreme"
    rng = np.random.default_rng(seed)
    extreme = np.zeros(d.shape[1], dtype=np.int64)
    done = 0
    while done < permutations:
        size = min(chunk, permutations - done)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8).astype(np.float64) * 2.0 - 1.0
        flipped = np.abs(signs @ d) / n
        extreme += (flipped >= observed - tolerance).sum(axis=0)
        done += size
    return (1.0 + extreme) / (1.0 + permutations)


def ttest_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``scipy.stats.ttest_rel(b, a)``'s two-sided p-value per column; 1 where every difference is 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape[0] < 2:
        return np.ones(a.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.asarray(stats.ttest_rel(b, a, axis=0).pvalue, dtype=np.float64).reshape(-1)
    constant = np.all(np.isclose(b - a, (b - a)[:1], rtol=0, atol=1e-15), axis=0)
    same = constant & np.isclose((b - a)[0], 0.0, atol=1e-15)
    return np.where(same, 1.0, np.where(np.isnan(p), 0.0, p))  # NaN: every difference equal and nonzero


def bootstrap_ci(
    differences: np.ndarray, resamples: int = BOOTSTRAP, seed: int = SEED, level: float = 0.95, chunk: int = 2_000
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of the mean difference from ``resamples`` paired bootstrap resamples of the queries."""
    d = _differences(differences)
    n = d.shape[0]
    rng = np.random.default_rng(seed + 1)
    means = []
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        picks = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        means.append(counts @ d / n)
        done += size
    stacked = np.concatenate(means, axis=0)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(stacked, [tail, 100.0 - tail], axis=0)
    return low, high


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    result = np.empty(m)
    result[order] = adjusted
    return result


def minimum_detectable(sd: float | np.ndarray, n: int, alpha: float = ALPHA, power: float = POWER):
    """The smallest mean difference a paired t-test detects with ``power`` at ``alpha`` (two-sided); NaN if n < 2."""
    if n < 2:
        return np.full_like(np.asarray(sd, dtype=np.float64), math.nan)
    factor = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)
    return factor * np.asarray(sd, dtype=np.float64) / math.sqrt(n)


def paired_family(
    a: np.ndarray,
    b: np.ndarray,
    *,
    permutations: int = PERMUTATIONS,
    bootstrap: int = BOOTSTRAP,
    seed: int = SEED,
) -> Family:
    """Every statistic for columns of (queries, comparisons) score matrices ``a`` (the first system) and ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape != b.shape:
        raise InvalidInputError(f"Paired scores need the same shape, got {a.shape} and {b.shape}.")
    d = _differences(b - a)
    low, high = bootstrap_ci(d, bootstrap, seed)
    return Family(
        delta=d.mean(axis=0),
        p_randomization=randomization_p(d, permutations, seed),
        p_ttest=ttest_p(a, b),
        ci_low=low,
        ci_high=high,
        sd=d.std(axis=0, ddof=1) if d.shape[0] > 1 else np.zeros(d.shape[1]),
        permutations=int(permutations),
        bootstrap=int(bootstrap),
        seed=int(seed),
    )


def compare_systems(
    scores: pd.DataFrame,
    measures: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    *,
    permutations: int = PERMUTATIONS,
    bootstrap: int = BOOTSTRAP,
    seed: int = SEED,
) -> pd.DataFrame:
    """One row per (pair, measure): a, b, metric, delta (mean b − a), p_randomization, p_ttest, p_holm (Holm over
    the randomization p-values of all pairs of that measure), ci_low, ci_high, permutations, seed, sd, n.

    ``scores`` is the per-query frame of ``runs.per_query`` (query_id, system, one column per measure).
    """
    columns = ["a", "b", "metric", "delta", "p_randomization", "p_ttest", "p_holm", "ci_low", "ci_high",
               "permutations", "seed", "sd", "n"]  # fmt: skip
    if not pairs:
        return pd.DataFrame(columns=columns)
    wide = {m: scores.pivot(index="query_id", columns="system", values=m) for m in measures}
    a = np.column_stack([wide[m][x].to_numpy() for m in measures for x, _ in pairs])
    b = np.column_stack([wide[m][y].to_numpy() for m in measures for _, y in pairs])
    family = paired_family(a, b, permutations=permutations, bootstrap=bootstrap, seed=seed)
    rows = []
    for index, (measure, (x, y)) in enumerate((m, pair) for m in measures for pair in pairs):
        rows.append([x, y, measure, family.delta[index], family.p_randomization[index], family.p_ttest[index], 0.0,
                     family.ci_low[index], family.ci_high[index], family.permutations, family.seed,
                     family.sd[index], a.shape[0]])  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for measure in measures:
        mask = frame["metric"] == measure
        frame.loc[mask, "p_holm"] = holm(frame.loc[mask, "p_randomization"].to_numpy())
    return frame


def tiers(means: pd.Series, tested: pd.DataFrame, alpha: float = ALPHA) -> dict[str, int]:
    """Tier 1: the best system and every system not significantly worse than it (Holm-adjusted randomization
    p ≥ ``alpha`` against the best, within the family of tests against the best); then the same among the rest.

    ``tested`` holds rows (a, b, p_randomization) for every pair of systems of one measure, either order.
    """
    remaining = list(means.sort_values(ascending=False, kind="mergesort").index)
    lookup = {}
    for row in tested.itertuples(index=False):
        lookup[(row.a, row.b)] = lookup[(row.b, row.a)] = float(row.p_randomization)
    result: dict[str, int] = {}
    tier = 0
    while remaining:
        tier += 1
        best, others = remaining[0], remaining[1:]
        adjusted = holm([lookup.get((best, other), 1.0) for other in others]) if others else []
        members = [best] + [o for o, p in zip(others, adjusted, strict=True) if p >= alpha]
        for member in members:
            result[member] = tier
        remaining = [s for s in remaining if s not in members]
    return result

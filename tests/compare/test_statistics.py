"""The paired statistics against references that share no code with them: scipy, exhaustive enumeration, Holm's
definition written out, RBO's definition written out."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from flagdemo.analysis import runs, significance


def test_randomization_matches_exhaustive_enumeration_within_monte_carlo_error():
    rng = np.random.default_rng(7)
    d = rng.normal(0.08, 0.2, size=12)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=d.size)))  # all 4096 sign vectors
    exact = float(np.mean(np.abs(signs @ d) / d.size >= abs(d.mean()) - 1e-12))
    permutations = 20_000
    estimate = float(significance.randomization_p(d, permutations, seed=3)[0])
    error = 4 * np.sqrt(exact * (1 - exact) / permutations) + 2 / permutations
    assert 0.01 < exact < 0.5  # a case where the test has something to say
    assert abs(estimate - exact) <= error


def test_randomization_matches_scipy_permutation_test():
    rng = np.random.default_rng(11)
    a, b = rng.uniform(size=40), rng.uniform(size=40) + 0.07
    reference = stats.permutation_test(
        (b - a,), np.mean, permutation_type="samples", n_resamples=20_000, alternative="two-sided", random_state=1
    ).pvalue
    ours = significance.randomization_p(b - a, 20_000, seed=5)[0]
    assert abs(ours - reference) <= 4 * np.sqrt(reference * (1 - reference) / 20_000) + 1e-3


def test_ttest_equals_scipy_and_identical_systems_give_one():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=(30, 3)), rng.uniform(size=(30, 3))
    expected = [stats.ttest_rel(b[:, j], a[:, j]).pvalue for j in range(3)]
    assert np.allclose(significance.ttest_p(a, b), expected, rtol=1e-12)
    assert significance.ttest_p(a[:, 0], a[:, 0])[0] == 1.0


def holm_by_definition(p):
    """Holm (1979) as written: walk the sorted p-values, multiply the i-th smallest by (m − i + 1), never decrease."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p[index]))
        adjusted[index] = running
    return adjusted


def test_holm_equals_its_definition():
    assert np.allclose(significance.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(4)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12)).tolist()
        assert np.allclose(significance.holm(p), holm_by_definition(p))


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap():
    rng = np.random.default_rng(9)
    d = rng.normal(0.05, 0.15, size=60)
    low, high = significance.bootstrap_ci(d, 20_000, seed=1)
    reference = stats.bootstrap((d,), np.mean, n_resamples=20_000, method="percentile", random_state=2)
    assert low[0] == pytest.approx(reference.confidence_interval.low, abs=0.004)
    assert high[0] == pytest.approx(reference.confidence_interval.high, abs=0.004)


def test_minimum_detectable_difference_follows_the_t_quantiles():
    expected = (stats.t.ppf(0.975, 47) + stats.t.ppf(0.8, 47)) * 0.2 / np.sqrt(48)
    assert float(significance.minimum_detectable(0.2, 48)) == pytest.approx(expected)


def test_tiers_put_the_indistinguishable_with_the_best():
    import pandas as pd

    means = pd.Series({"x": 0.8, "y": 0.79, "z": 0.2})
    tested = pd.DataFrame(
        [("x", "y", 0.6), ("x", "z", 0.0001), ("y", "z", 0.0001)], columns=["a", "b", "p_randomization"]
    )
    assert significance.tiers(means, tested) == {"x": 1, "y": 1, "z": 2}


def rbo_by_definition(a, b, p):
    k = max(len(a), len(b))
    overlap = [len(set(a[:d]) & set(b[:d])) for d in range(1, k + 1)]
    return overlap[-1] / k * p**k + (1 - p) / p * sum(x / d * p**d for d, x in enumerate(overlap, start=1))


def test_rbo_and_tau_on_small_cases():
    assert runs.rbo(list("abc"), list("acb")) == pytest.approx(0.9 * 0 + 0.955, abs=1e-3)
    rng = np.random.default_rng(1)
    for _ in range(20):
        items = list("abcdefghijkl")
        a, b = list(rng.permutation(items)[:8]), list(rng.permutation(items)[:8])
        assert runs.rbo(a, b, 0.8) == pytest.approx(rbo_by_definition(a, b, 0.8))
    assert runs.rbo(list("abc"), list("abc")) == pytest.approx(1.0)
    assert runs.rbo(list("abc"), list("xyz")) == 0.0
    assert runs.kendall_tau_topk(list("abc"), list("cba")) == pytest.approx(-1.0)


def test_ten_systems_thousand_queries_statistics_under_a_second():
    import time

    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        [(f"q{q}", f"s{s}", *rng.uniform(size=4)) for s in range(10) for q in range(1000)],
        columns=["query_id", "system", "nDCG@10", "RR@10", "R@100", "AP"],
    )
    pairs = [(f"s{i}", f"s{j}") for i in range(10) for j in range(i + 1, 10)]
    significance.compare_systems(frame, ["AP"], pairs[:1], permutations=10, bootstrap=10)  # warm up
    started = time.perf_counter()
    result = significance.compare_systems(frame, ["nDCG@10"], pairs)
    assert len(result) == 45
    assert time.perf_counter() - started < 3.0  # 1 s on an idle 2-core VM (benchmarks/compare_bench.py); slack

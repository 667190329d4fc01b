"""The intervals of a comparison, and the significance read from them."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simfunnel.experiments.comparison import (
    Comparison,
    excludes_zero,
    paired_interval,
    ratio_interval,
)
from simfunnel.experiments.replications import t_interval
from simfunnel.reporting.headline import describe_change


def comparison_of(base, other, kpi="cac"):
    n = len(base)
    runs = pd.DataFrame(
        {
            "scenario": ["base"] * n + ["other"] * n,
            "replication": list(range(n)) * 2,
            "seed": list(range(n)) * 2,
            kpi: list(base) + list(other),
        }
    )
    return Comparison(runs=runs, baseline="base", order=("base", "other"))


def test_the_reported_case_cannot_recur():
    # 3 replications, CAC down ~84% every time: the sentence once called this
    # "not significant" beside an interval of -90% to -71%.
    base = np.array([210_000.0, 260_000.0, 180_000.0])
    other = np.array([31_000.0, 45_000.0, 27_000.0])
    row = comparison_of(base, other).table(["cac"]).loc[("cac", "other")]
    sentence = describe_change("CAC", row)
    low, high = row["rel_low"], row["rel_high"]
    assert row["significant"] == excludes_zero(low, high)
    assert ("does not change" in sentence) == (not excludes_zero(low, high))
    assert f"{100 * abs(row['rel_change']):.0f}%" in sentence


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 14),
    shift=st.floats(-0.9, 2.0),
    noise=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_significance_always_follows_the_printed_interval(n, shift, noise, seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(50, 150, n)
    other = base * (1 + shift) * np.exp(rng.normal(0, noise, n))
    table = comparison_of(base, other).table(["cac"])
    row = table.loc[("cac", "other")]
    printed = (row["rel_low"], row["rel_high"])
    if all(math.isfinite(v) for v in printed):
        assert row["significant"] == excludes_zero(*printed)
        sentence = describe_change("CAC", row)
        assert ("does not change" in sentence) == (not row["significant"])


def test_baseline_mean_zero_falls_back_to_the_difference():
    base = np.zeros(6)
    other = np.array([1.0, 2.0, 1.0, 3.0, 2.0, 1.0])
    row = comparison_of(base, other, "reps_quit").table(["reps_quit"]).loc[("reps_quit", "other")]
    assert math.isnan(row["rel_low"])
    assert row["significant"] == excludes_zero(row["diff_low"], row["diff_high"]) is True


def test_the_bootstrap_is_scipys_paired_bootstrap():
    from scipy import stats

    rng = np.random.default_rng(3)
    base = rng.lognormal(0, 0.3, 25)
    other = base * rng.lognormal(-0.2, 0.1, 25)
    for method in ("BCa", "percentile"):
        expected = stats.bootstrap(
            (other, base),
            lambda a, b, axis=-1: a.mean(axis) / b.mean(axis) - 1,
            paired=True,
            vectorized=True,
            n_resamples=2000,
            method=method,
            random_state=np.random.default_rng(0),
        ).confidence_interval
        got = ratio_interval(other, base, method=method)
        assert got == pytest.approx((expected.low, expected.high))


def test_no_spread_gives_a_zero_width_interval():
    assert t_interval(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0, 3.0)
    assert paired_interval(np.array([5.0, 6.0]), np.array([4.0, 5.0])) == (1.0, 1.0, 1.0)
    low, high = ratio_interval(np.full(12, 2.0), np.full(12, 1.0))
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    # a spread of rounding only (0.1 + 0.2 is not 0.3) is no spread, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, low, high = t_interval(np.array([0.1 + 0.2, 0.3, 0.3]))
        diff, d_low, d_high = paired_interval(np.array([0.1 + 0.2, 0.3, 0.3]), np.full(3, 0.1))
    assert low == mean == high and d_low == diff == d_high


def test_t_interval_is_students():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    mean, low, high = t_interval(x)
    half = 3.182446305284263 * x.std(ddof=1) / 2  # t(0.975, 3) * s / sqrt(4)
    assert (mean, low, high) == pytest.approx((3.5, 3.5 - half, 3.5 + half))


@pytest.mark.parametrize("n, method", [(4, None), (30, "BCa"), (30, "percentile")])
def test_ratio_interval_covers_the_true_ratio(n, method):
    # paired lognormal KPIs whose true ratio of means is 0.6: the 95% interval of
    # the relative change (-40%) should cover it about 95% of the time
    rng = np.random.default_rng(7)
    trials, covered, widths = 300, 0, []
    for _ in range(trials):
        common = rng.lognormal(0, 0.3, n)  # the shared luck of common random numbers
        base = 100 * common * rng.lognormal(0, 0.2, n) / math.exp(0.02)
        other = 60 * common * rng.lognormal(0, 0.2, n) / math.exp(0.02)
        low, high = ratio_interval(other, base, resamples=500, method=method)
        covered += low <= -0.4 <= high
        widths.append(high - low)
    assert 0.85 <= covered / trials <= 0.99
    assert np.median(widths) > 0.01

"""The engine against textbook queues: with every mechanism off it is M/M/c (Erlang C),
with patience M/M/c+M (Erlang A); Little's law holds."""

import math

import numpy as np
import pytest
from scipy import stats

import simfunnel
from simfunnel.queueing import erlang_a, erlang_c, textbook_scenario

LAM, SERVERS, WORK, PATIENCE = 8.0, 10, 1.0, 2.0
REPS = 12


def t_interval(values, confidence=0.99):
    values = np.asarray(values, dtype=float)
    half = (
        stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
        * values.std(ddof=1)
        / math.sqrt(len(values))
    )
    return values.mean() - half, values.mean() + half


def replicate(patience):
    out = []
    for rep in range(REPS):
        sc = textbook_scenario(
            LAM, SERVERS, WORK, patience, horizon_days=40, warmup_days=3, seed=1000 + rep
        )
        out.append(simfunnel.simulate(sc))
    return out


@pytest.fixture(scope="module")
def mmc_runs():
    return replicate(None)


@pytest.fixture(scope="module")
def mmcm_runs():
    return replicate(PATIENCE)


def window(result):
    leads = result.leads
    return leads[leads.arrival_hours >= result.scenario.run.warmup_days * 24]


def test_formulas_against_published_values():
    # Erlang C with a = 2, c = 3: P(wait) = 4/9 (textbook closed form).
    assert erlang_c(2.0, 3, 1.0).p_wait == pytest.approx(4 / 9)
    # Erlang A tends to Erlang C as patience grows, and to Erlang B-like loss as it shrinks.
    c = erlang_c(LAM, SERVERS, WORK)
    a = erlang_a(LAM, SERVERS, WORK, 1e7)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-4)
    assert a.mean_wait_hours == pytest.approx(c.mean_wait_hours, rel=1e-4)
    # Erlang A's own identity: P(abandon) = theta * E[wait].
    a2 = erlang_a(LAM, SERVERS, WORK, PATIENCE)
    assert a2.p_abandon == pytest.approx(a2.mean_wait_hours / PATIENCE)
    # Mandelbaum-Zeltyn closed form for P(wait > 0) agrees with the birth-death chain.
    x, y = SERVERS * (1 / WORK) * PATIENCE, LAM * PATIENCE
    big_a = x * math.exp(y) / y**x * stats.gamma.cdf(y, x) * math.gamma(x)
    load = LAM * WORK
    erlang_b = (load**SERVERS / math.factorial(SERVERS)) / sum(
        load**j / math.factorial(j) for j in range(SERVERS + 1)
    )
    p_wait = big_a * erlang_b / (1 + (big_a - 1) * erlang_b)
    assert a2.p_wait == pytest.approx(p_wait, rel=1e-6)


def test_mean_wait_and_p_wait_match_erlang_c(mmc_runs):
    expected = erlang_c(LAM, SERVERS, WORK)
    waits = [window(r).first_response_hours.mean() for r in mmc_runs]
    p_wait = [(window(r).first_response_hours > 0).mean() for r in mmc_runs]
    lo, hi = t_interval(waits)
    assert lo <= expected.mean_wait_hours <= hi, (lo, expected.mean_wait_hours, hi)
    lo, hi = t_interval(p_wait)
    assert lo <= expected.p_wait <= hi, (lo, expected.p_wait, hi)
    # nobody abandons in M/M/c
    assert all(r.kpis["stale_share"] == 0 for r in mmc_runs)


def test_abandonment_matches_erlang_a(mmcm_runs):
    expected = erlang_a(LAM, SERVERS, WORK, PATIENCE)
    stale = [r.kpis["stale_share"] for r in mmcm_runs]
    lo, hi = t_interval(stale)
    assert lo <= expected.p_abandon <= hi, (lo, expected.p_abandon, hi)
    waited = [1 - (window(r).first_response_hours == 0).mean() for r in mmcm_runs]
    lo, hi = t_interval(waited)
    assert lo <= expected.p_wait <= hi, (lo, expected.p_wait, hi)
    # and the patience really matters: far fewer leads wait than without it
    assert np.mean(stale) > 0.01


def test_littles_law_for_the_servers(mmcm_runs):
    # L = lambda * W at the servers: mean busy reps = throughput x mean work time.
    for r in mmcm_runs:
        served = window(r).first_response_hours.notna().sum()
        hours = (r.scenario.run.horizon_days - r.scenario.run.warmup_days) * 24
        busy_reps = r.kpis["rep_utilization"] * SERVERS
        assert busy_reps == pytest.approx(served / hours * WORK, rel=0.05)
    expected = erlang_a(LAM, SERVERS, WORK, PATIENCE)
    utilization = [r.kpis["rep_utilization"] for r in mmcm_runs]
    lo, hi = t_interval(utilization)
    assert lo <= expected.utilization <= hi


def test_littles_law_for_the_queue(mmc_runs):
    # L = lambda * W in the queue: the time-average number waiting, counted at random
    # instants from the waiting intervals, equals arrival rate x mean wait.
    rng = np.random.default_rng(0)
    for r in mmc_runs[:4]:
        leads = window(r)
        start = leads.arrival_hours.to_numpy()
        end = start + leads.first_response_hours.fillna(0).to_numpy()
        t0, t1 = start.min(), start.max() - 48
        instants = rng.uniform(t0, t1, 4000)
        order = np.sort(start)
        ends = np.sort(end)
        in_queue = np.searchsorted(order, instants) - np.searchsorted(ends, instants)
        lam = len(start) / (start.max() - t0)
        assert in_queue.mean() == pytest.approx(lam * leads.first_response_hours.mean(), rel=0.15)

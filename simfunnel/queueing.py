"""Textbook queues the engine is checked against: Erlang C and Erlang A.

With every mechanism switched off, the funnel is an M/M/c queue (Erlang C); with
patience on, an M/M/c+M queue (Erlang A, Palm's model). References: Mandelbaum and
Zeltyn, "The Palm/Erlang-A Queue, with Applications to Call Centers"; docs/assumptions.md,
section "Queueing checks".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln, logsumexp

from simfunnel.parameters import Scenario, scenario_from_dict


@dataclass(frozen=True)
class QueueFigures:
    """Steady-state figures of a queue, per arriving customer.

    Attributes
    ----------
    p_wait
        Probability that an arrival waits (all servers busy).
    mean_wait_hours
        Mean time in queue over all arrivals (those who abandon included).
    p_abandon
        Probability of abandoning (0 for Erlang C).
    utilization
        Mean share of servers busy.
    """

    p_wait: float
    mean_wait_hours: float
    p_abandon: float
    utilization: float


def erlang_c(arrivals_per_hour: float, servers: int, mean_work_hours: float) -> QueueFigures:
    """M/M/c: Poisson arrivals, ``servers`` servers, exponential work, no abandonment."""
    lam, mu, c = arrivals_per_hour, 1.0 / mean_work_hours, servers
    a = lam / mu
    if a >= c:
        raise ValueError(f"unstable queue: offered load {a:g} >= servers {c}")
    k = np.arange(c)
    log_terms = k * math.log(a) - gammaln(k + 1)
    log_last = c * math.log(a) - gammaln(c + 1) + math.log(c / (c - a))
    p_wait = math.exp(log_last - logsumexp(np.append(log_terms, log_last)))
    return QueueFigures(
        p_wait=p_wait,
        mean_wait_hours=p_wait / (c * mu - lam),
        p_abandon=0.0,
        utilization=a / c,
    )


def erlang_a(
    arrivals_per_hour: float, servers: int, mean_work_hours: float, mean_patience_hours: float
) -> QueueFigures:
    """M/M/c+M (Erlang A), solved exactly as a birth-death chain.

    The chain's state is the number in system; births at rate lambda, deaths at
    min(n, c) * mu + max(n - c, 0) * theta. It is truncated where the stationary
    probabilities fall below 1e-300 (always stable, as waiting customers abandon).
    P(abandon) = theta * E[queue] / lambda, E[wait] = E[queue] / lambda (Little).
    """
    lam, mu, c = arrivals_per_hour, 1.0 / mean_work_hours, servers
    theta = 1.0 / mean_patience_hours
    log_p = [0.0]
    n = 0
    while True:
        n += 1
        death = min(n, c) * mu + max(n - c, 0) * theta
        log_p.append(log_p[-1] + math.log(lam) - math.log(death))
        if n > c and log_p[-1] < max(log_p) - 700:
            break
    lp = np.asarray(log_p)
    p = np.exp(lp - logsumexp(lp))
    states = np.arange(len(p))
    queue = np.maximum(states - c, 0)
    busy = np.minimum(states, c)
    mean_queue = float((p * queue).sum())
    return QueueFigures(
        p_wait=float(p[states >= c].sum()),
        mean_wait_hours=mean_queue / lam,
        p_abandon=theta * mean_queue / lam,
        utilization=float((p * busy).sum()) / c,
    )


def textbook_scenario(
    arrivals_per_hour: float,
    servers: int,
    mean_work_hours: float,
    mean_patience_hours: float | None = None,
    horizon_days: float = 60.0,
    warmup_days: float = 5.0,
    seed: int = 1,
) -> Scenario:
    """A scenario with every mechanism off: the M/M/c (or M/M/c+M) queue.

    Poisson leads from one flat source, ``servers`` reps working round the clock,
    one attempt of exponential duration per lead, no speed-to-lead decay, no
    nurture, no burnout; patience exponential when ``mean_patience_hours`` is given.
    """
    raw: dict[str, Any] = {
        "name": "textbook_queue",
        "description": "every mechanism off: M/M/c, or M/M/c+M with patience",
        "run": {
            "horizon_days": horizon_days,
            "warmup_days": warmup_days,
            "seed": seed,
            "accounting": "window",
        },
        "sources": [
            {
                "name": "poisson",
                "leads_per_week": arrivals_per_hour * 168.0,
                "cost_per_lead_usd": 1.0,
            }
        ],
        "team": {
            "reps": servers,
            "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "shift_start_hour": 0,
            "shift_hours": 24,
            "selling_hours_per_day": 24,
            "work_minutes": mean_work_hours * 60.0,
            "work_time": "exponential",
            "max_attempts": 1,
        },
        "process": {
            "decay": {"enabled": False},
            "nurture": {"enabled": False},
            "patience": {
                "enabled": mean_patience_hours is not None,
                "distribution": "exponential",
                "mean_hours": mean_patience_hours or 1.0,
            },
            "routing": {"policy": "fifo"},
        },
        "burnout": {"enabled": False},
    }
    return scenario_from_dict(raw)


def work_hours_per_lead(scenario: Scenario, seed: int | None = None) -> float:
    """Rep hours one lead of ``scenario`` takes, measured with a team that is never short.

    Every dial, conversation and nurture return counts; the scenario's team is made
    large enough (about 30% busy) that no lead waits or goes stale for want of a rep.
    """
    from simfunnel.simulation import simulate

    weekly = sum(s.effective_leads_per_week for s in scenario.sources)
    selling_per_week = scenario.team.selling_hours * len(scenario.team.working_days)
    if scenario.team.round_the_clock:
        selling_per_week = scenario.team.selling_hours * 7
    guess = weekly * 0.5 / selling_per_week  # 30 minutes a lead, generous
    ample = scenario.with_overrides(
        {"team.reps": max(2, math.ceil(guess / 0.3)), "burnout.enabled": False}
    )
    result = simulate(ample, seed=seed)
    kpis = result.window_kpis
    days = result.rep_days
    busy = float(days.loc[days["day"] >= scenario.run.warmup_days, "hours_busy"].sum())
    return busy / kpis["leads"] if kpis["leads"] else math.nan


def leads_per_week_capacity(scenario: Scenario, seed: int | None = None) -> float:
    """New leads a week the scenario's team can fully work, at 100% of its selling hours.

    Selling hours a week (reps x selling hours a shift x shifts a week) over the rep hours
    one lead takes (:func:`work_hours_per_lead`). docs/assumptions.md#attempts-and-capacity:
    a qualifying rep works ~100 new leads a week at 1.6-4 attempts each.
    """
    team = scenario.team
    shifts = 7 if team.round_the_clock else len(team.working_days)
    return team.reps * team.selling_hours * shifts / work_hours_per_lead(scenario, seed)

"""Lead arrivals: a non-homogeneous Poisson process per source, drawn by thinning.

The rate of a source at hour t is its weekly volume spread over the week, times its
day-of-week weight, its hour-of-day weight, its trend and any campaign burst's
multiplier in force, plus the extra leads of any campaign in force (with the same day
and hour weights). Both profiles are normalised to mean 1, so the weekly volume is
kept on average.

The trend is exponential: ``leads_per_week`` on ``trend_reference`` (default the run's
start), times ``(1 + trend_per_year)`` for every year after it (and divided for every
year before it).
"""

from __future__ import annotations

import math

import numpy as np

from simfunnel.parameters import Scenario, Source

HOURS_PER_WEEK = 168.0
#: A year of the trend: 365.25 days.
HOURS_PER_YEAR = 365.25 * 24.0


def _profile(weights: tuple[float, ...] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    return w * (n / w.sum())


def _week(source: Source, scenario: Scenario, hours: np.ndarray) -> np.ndarray:
    first_weekday = scenario.run.start_date.weekday()
    # The week's 168 hourly weights, Monday 0:00 first; hour h of the run (h >= 0) is
    # hour (h + 24 * first_weekday) mod 168 of the week.
    week = np.multiply.outer(
        _profile(source.day_of_week_profile, 7), _profile(source.hour_of_day_profile, 24)
    ).ravel()
    return week[(hours.astype(np.int64) + 24 * first_weekday) % 168]


def trend_reference_hour(source: Source, scenario: Scenario) -> float:
    """Hours from the run's start to the day whose volume is ``leads_per_week``."""
    return scenario.day_offset(source.trend_reference or scenario.run.start_date)


def trend_factor(source: Source, scenario: Scenario, hours: np.ndarray) -> np.ndarray:
    """The source's volume at each of ``hours`` relative to ``leads_per_week`` (its trend)."""
    if source.trend_per_year == 0:
        return np.ones(len(hours))
    years = (hours - trend_reference_hour(source, scenario)) / HOURS_PER_YEAR
    return np.exp(math.log1p(source.trend_per_year) * years)


def max_trend_factor(source: Source, scenario: Scenario) -> float:
    """The largest :func:`trend_factor` over the horizon (at its start or its end)."""
    if source.trend_per_year == 0:
        return 1.0
    ends = np.array([0.0, scenario.run.horizon_days * 24.0])
    return float(trend_factor(source, scenario, ends).max())


def rate_multiplier(source: Source, scenario: Scenario, hours: np.ndarray) -> np.ndarray:
    """Rate of ``source`` at each of ``hours`` (>= 0) relative to its weekly volume.

    Mean 1 without bursts and trend; campaigns' extra leads are not included (see
    :func:`extra_rate`).
    """
    mult = _week(source, scenario, hours)
    for burst in source.bursts:
        if burst.multiplier == 1.0:
            continue
        start = scenario.day_offset(burst.start)
        end = scenario.day_offset(burst.end) + 24.0
        mult = np.where((hours >= start) & (hours < end), mult * burst.multiplier, mult)
    if source.trend_per_year != 0:
        mult = mult * trend_factor(source, scenario, hours)
    return mult


def extra_rate(source: Source, scenario: Scenario, hours: np.ndarray) -> np.ndarray:
    """Leads an hour at each of ``hours`` that the campaigns in force bring on top."""
    extra = np.zeros(len(hours))
    campaigns = [b for b in source.bursts if b.extra_leads_per_week > 0]
    if not campaigns:
        return extra
    for burst in campaigns:
        start = scenario.day_offset(burst.start)
        end = scenario.day_offset(burst.end) + 24.0
        inside = (hours >= start) & (hours < end)
        extra = np.where(inside, extra + burst.extra_leads_per_week / HOURS_PER_WEEK, extra)
    return extra * _week(source, scenario, hours)


def max_multiplier(source: Source, scenario: Scenario | None = None) -> float:
    """An upper bound of :func:`rate_multiplier` (over ``scenario``'s horizon, for a trend)."""
    bound = (
        _profile(source.day_of_week_profile, 7).max()
        * _profile(source.hour_of_day_profile, 24).max()
    )
    for burst in source.bursts:
        bound *= max(burst.multiplier, 1.0)
    if scenario is not None and source.trend_per_year != 0:
        bound *= max_trend_factor(source, scenario)
    return float(bound)


def max_extra_rate(source: Source) -> float:
    """An upper bound of :func:`extra_rate`, leads an hour."""
    total = sum(b.extra_leads_per_week for b in source.bursts)
    if total == 0:
        return 0.0
    peak = (
        _profile(source.day_of_week_profile, 7).max()
        * _profile(source.hour_of_day_profile, 24).max()
    )
    return float(total / HOURS_PER_WEEK * peak)


def arrival_times(source: Source, scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival hours of ``source`` over the horizon, by thinning.

    Candidates come from a homogeneous Poisson process at the envelope rate (its
    count, then sorted uniform times); each is kept with probability rate / envelope.
    """
    horizon = scenario.run.horizon_days * 24.0
    base = source.effective_leads_per_week / HOURS_PER_WEEK
    extra = max_extra_rate(source)
    envelope = base * max_multiplier(source, scenario) + extra
    n = int(rng.poisson(envelope * horizon))
    times = np.sort(rng.uniform(0.0, horizon, n))
    rate = base * rate_multiplier(source, scenario, times)
    if extra:
        rate = rate + extra_rate(source, scenario, times)
    keep = rng.random(n) * envelope < rate
    return times[keep]

"""Lead arrivals: a non-homogeneous Poisson process per source, drawn by thinning.

The rate of a source at hour t is its weekly volume spread over the week, times its
day-of-week weight, its hour-of-day weight and any campaign burst in force. Both
profiles are normalised to mean 1, so the weekly volume is kept on average.
"""

from __future__ import annotations

import numpy as np

from simfunnel.parameters import Scenario, Source

HOURS_PER_WEEK = 168.0


def _profile(weights: tuple[float, ...] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    return w * (n / w.sum())


def rate_multiplier(source: Source, scenario: Scenario, hours: np.ndarray) -> np.ndarray:
    """Relative arrival rate of ``source`` at each of ``hours`` (>= 0; mean 1 without bursts)."""
    first_weekday = scenario.run.start_date.weekday()
    # The week's 168 hourly weights, Monday 0:00 first; hour h of the run (h >= 0) is
    # hour (h + 24 * first_weekday) mod 168 of the week.
    week = np.multiply.outer(
        _profile(source.day_of_week_profile, 7), _profile(source.hour_of_day_profile, 24)
    ).ravel()
    mult = week[(hours.astype(np.int64) + 24 * first_weekday) % 168]
    for burst in source.bursts:
        start = scenario.day_offset(burst.start)
        end = scenario.day_offset(burst.end) + 24.0
        mult = np.where((hours >= start) & (hours < end), mult * burst.multiplier, mult)
    return mult


def max_multiplier(source: Source) -> float:
    """An upper bound of :func:`rate_multiplier`, the thinning envelope."""
    bound = (
        _profile(source.day_of_week_profile, 7).max()
        * _profile(source.hour_of_day_profile, 24).max()
    )
    for burst in source.bursts:
        bound *= max(burst.multiplier, 1.0)
    return float(bound)


def arrival_times(source: Source, scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival hours of ``source`` over the horizon, by thinning.

    Candidates come from a homogeneous Poisson process at the envelope rate (its
    count, then sorted uniform times); each is kept with probability rate / envelope.
    """
    horizon = scenario.run.horizon_days * 24.0
    base = source.effective_leads_per_week / HOURS_PER_WEEK
    envelope = base * max_multiplier(source)
    n = int(rng.poisson(envelope * horizon))
    times = np.sort(rng.uniform(0.0, horizon, n))
    keep = rng.random(n) * envelope < base * rate_multiplier(source, scenario, times)
    return times[keep]

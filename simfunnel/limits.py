"""Work and memory estimates, checked before anything is allocated.

Each field of a scenario is bounded on its own, but their product is not: a million
leads a week over ten years, a billion-dollar budget at a micro-cent CPL, or a burst
a hundred times the base rate would each exhaust the machine's memory. So before a
run, :func:`check_scenario` estimates from the scenario's volumes, budgets, bursts,
profiles and horizon how many leads it will simulate and how much memory that takes
(without drawing anything), and before an experiment :func:`check_runs` counts its
runs. Either refuses above a documented limit, in one line that states the estimate
and the limit; ``--max-leads`` and ``--max-runs`` (``max_leads``, ``max_runs`` in the
API) raise the limits for users who mean it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simfunnel.errors import LimitError

if TYPE_CHECKING:  # kept light: the command line reads the defaults at start-up
    from simfunnel.parameters import Scenario, Source

#: Most leads one run may simulate, by default (about 5 GB at the default settings).
DEFAULT_MAX_LEADS = 5_000_000
#: Most runs (replications times points) one experiment may ask for, by default.
DEFAULT_MAX_RUNS = 100_000

#: Peak memory per simulated lead, bytes: its attributes, state and records, plus
#: this much per attempt column (three draws kept as float32, made as float64).
#: Measured with CPython 3.11 and numpy 2 (peak RSS of runs of 0.1 to 1 million leads;
#: about 1 kB a lead at the default six attempts with nurture).
BYTES_PER_LEAD = 500
BYTES_PER_LEAD_PER_ATTEMPT = 40
#: Peak memory per candidate arrival of the thinning envelope (drawn, sorted, thinned).
BYTES_PER_CANDIDATE = 48
#: Peak memory per rep and simulated day (the team's daily state and records).
BYTES_PER_REP_DAY = 1300
#: Fixed peak memory of a run whatever its size (KPI tables and the like).
BYTES_PER_RUN = 80e6


@dataclass(frozen=True)
class Workload:
    """The estimated size of one run.

    Attributes
    ----------
    leads
        Expected leads over the horizon.
    candidates
        Expected candidate arrivals drawn by thinning (the envelope rate over the
        horizon); more than ``leads`` when a burst or a profile peak is high.
    bytes
        Estimated peak memory of the run.
    bytes_per_lead
        Of which each lead takes this much (without its candidate arrivals).
    rep_days
        Reps times simulated days (the team's share of the memory).
    """

    leads: float
    candidates: float
    bytes: float
    bytes_per_lead: float
    rep_days: float = 0.0


def _day_multipliers(source: Source, scenario: Scenario) -> tuple[float, float]:
    """Integrals over the horizon, in days: the rate multiplier, and the extra leads.

    The second is the campaigns' extra leads a week, times their days (with the day
    profile): a seventh of it is their expected leads.
    """
    days = scenario.run.horizon_days
    if source.day_of_week_profile is None:
        dow = [1.0] * 7
    else:
        total = sum(source.day_of_week_profile)
        dow = [7 * w / total for w in source.day_of_week_profile]
    first = scenario.run.start_date.weekday()
    start = scenario.run.start_date
    bursts = [
        ((b.start - start).days, (b.end - start).days, b.multiplier, b.extra_leads_per_week)
        for b in source.bursts
    ]
    growth = math.log1p(source.trend_per_year) / 365.25
    reference = ((source.trend_reference or start) - start).days
    integral = extra = 0.0
    for day in range(math.ceil(days)):
        weight = min(1.0, days - day) * dow[(day + first) % 7]
        campaign = 0.0
        for low, high, multiplier, more in bursts:
            if low <= day <= high:
                weight *= multiplier
                campaign += more
        extra += min(1.0, days - day) * dow[(day + first) % 7] * campaign
        if growth:
            weight *= math.exp(growth * (day + 0.5 - reference))
        integral += weight
    return integral, extra


def _envelope(source: Source, scenario: Scenario) -> tuple[float, float]:
    """The thinning envelope, as :func:`simfunnel.arrivals.arrival_times` draws it.

    Its multiplier of the weekly volume, and its extra leads a week.
    """
    peak = 1.0
    for profile, n in ((source.day_of_week_profile, 7), (source.hour_of_day_profile, 24)):
        if profile is not None:
            peak *= n * max(profile) / sum(profile)
    extra = peak * sum(b.extra_leads_per_week for b in source.bursts)
    for burst in source.bursts:
        peak *= max(burst.multiplier, 1.0)
    if source.trend_per_year:
        start = scenario.run.start_date
        reference = ((source.trend_reference or start) - start).days
        growth = math.log1p(source.trend_per_year) / 365.25
        peak *= math.exp(max(growth * -reference, growth * (scenario.run.horizon_days - reference)))
    return peak, extra


def scenario_workload(scenario: Scenario) -> Workload:
    """Estimate the leads, candidate arrivals and memory of one run, drawing nothing."""
    leads = candidates = 0.0
    horizon_days = scenario.run.horizon_days
    for source in scenario.sources:
        per_day = source.effective_leads_per_week / 7.0
        integral, extra = _day_multipliers(source, scenario)
        leads += per_day * integral + extra / 7.0
        peak, extra_peak = _envelope(source, scenario)
        candidates += (per_day * peak + extra_peak / 7.0) * horizon_days
    cycles = 2 if scenario.process.nurture.enabled else 1
    attempts = scenario.team.max_attempts * cycles
    per_lead = BYTES_PER_LEAD + BYTES_PER_LEAD_PER_ATTEMPT * attempts
    rep_days = scenario.team.reps * horizon_days
    total = (
        BYTES_PER_RUN
        + leads * per_lead
        + candidates * BYTES_PER_CANDIDATE
        + rep_days * BYTES_PER_REP_DAY
    )
    return Workload(leads, candidates, total, per_lead, rep_days)


def _count(n: float) -> str:
    if n >= 1e12:
        return f"{n:.1e}".replace("e+", " x 10^")
    if n >= 1e9:
        return f"{n / 1e9:,.3g} billion"
    if n >= 1e6:
        return f"{n / 1e6:.3g} million"
    return f"{n:,.0f}"


def _size(nbytes: float) -> str:
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def check_scenario(scenario: Scenario, max_leads: int | None = None) -> Workload:
    """Refuse a scenario whose run would exceed the lead limit, before allocating.

    The limit is on memory too: ``max_leads`` leads' worth at this scenario's
    settings, so a burst or profile peak whose candidate arrivals, or a team whose
    reps times days, would take more memory than that is refused as well.

    Parameters
    ----------
    scenario
        A validated scenario.
    max_leads
        The limit; default :data:`DEFAULT_MAX_LEADS`.

    Raises
    ------
    LimitError
        Stating the estimate and the limit.
    """
    limit = DEFAULT_MAX_LEADS if max_leads is None else max_leads
    if limit < 1:
        raise LimitError(f"max_leads: must be >= 1, got {limit}")
    work = scenario_workload(scenario)
    budget = BYTES_PER_RUN + limit * (work.bytes_per_lead + BYTES_PER_CANDIDATE)
    if work.leads > limit:
        raise LimitError(
            f"this scenario would simulate about {_count(work.leads)} leads (about "
            f"{_size(work.bytes)}); the limit is {_count(limit)}; lower the volume or the "
            "horizon, or raise --max-leads"
        )
    if work.bytes > budget:
        if work.rep_days * BYTES_PER_REP_DAY > work.candidates * BYTES_PER_CANDIDATE:
            cause = f"{_count(work.rep_days)} rep-days (reps times days)"
            remedy = "lower the team size or the horizon"
        else:
            cause = (
                f"{_count(work.candidates)} candidate arrivals for its peak rate (bursts "
                "and trend times day and hour profile peaks)"
            )
            remedy = "lower the burst multipliers or the trend, or flatten the profiles"
        raise LimitError(
            f"this scenario would need about {_size(work.bytes)} for {_count(work.leads)} "
            f"leads and {cause}, the memory of more than {_count(limit)} leads, the "
            f"limit; {remedy}, or raise --max-leads"
        )
    return work


def check_runs(runs: int, what: str, max_runs: int | None = None) -> None:
    """Refuse an experiment of more than ``max_runs`` runs, before anything runs.

    Parameters
    ----------
    runs
        The runs asked for.
    what
        How they come about, e.g. ``"1,000 points x 5 replications"``.
    max_runs
        The limit; default :data:`DEFAULT_MAX_RUNS`.

    Raises
    ------
    LimitError
        Stating the count and the limit.
    """
    limit = DEFAULT_MAX_RUNS if max_runs is None else max_runs
    if limit < 1:
        raise LimitError(f"max_runs: must be >= 1, got {limit}")
    if runs > limit:
        raise LimitError(
            f"this would be {_count(runs)} runs ({what}); the limit is {_count(limit)}; "
            "ask for fewer, or raise --max-runs"
        )


def check_limits(
    scenarios: list[Scenario],
    replications: int,
    max_leads: int | None = None,
    max_runs: int | None = None,
    seed: int | None = None,
) -> None:
    """Check a comparison before it runs: a valid seed, every scenario, the run count.

    Raises
    ------
    SimfunnelError
        A negative seed.
    LimitError
        A scenario above ``max_leads``, or more than ``max_runs`` runs in all.
    """
    from simfunnel.streams import check_seed

    if seed is not None:
        check_seed(seed)
    for scenario in scenarios:
        check_scenario(scenario, max_leads)
    runs = replications * len(scenarios)
    check_runs(runs, f"{len(scenarios)} scenarios x {replications:,} replications", max_runs)

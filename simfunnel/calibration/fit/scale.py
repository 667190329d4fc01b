"""A world scaled down by one factor, for fits that need rates and shares, not volume.

Stage rates and shares do not depend on how many leads a company gets, only on how
loaded its team is. So the fit by simulation (and the fit check) may simulate a smaller
world: every source's volume and the team scaled by the same factor, so that the load
per rep, and with it speed to lead and the team's fatigue, stay the same. The factor is
chosen so that a replication simulates about :data:`FIT_LEADS` leads, and never leaves
fewer than :data:`MIN_REPS` reps: a very small pool of reps waits differently from a
large one at the same load (Erlang C), so the scaled team stays large enough for its
waits to be the big team's. ``tests/test_calibrate_scale.py`` checks that the scaled
world's moments agree with the full world's within their intervals. The fit's intervals
count the scaled world's larger simulation noise (``1 + 1 / (replications x factor)``
times the data's variance).
"""

from __future__ import annotations

import math
from typing import Any

from simfunnel.limits import scenario_workload
from simfunnel.parameters import Scenario

#: Leads a replication of the fit simulates at most (about), before it is scaled down.
FIT_LEADS = 10_000
#: The fewest reps a scaled-down team keeps (unless the team had fewer).
MIN_REPS = 12


def scale_factor(scenario: Scenario, leads: float = FIT_LEADS, min_reps: int = MIN_REPS) -> float:
    """The factor (at most 1) that brings a run to about ``leads`` leads.

    Chosen so that the scaled team is a whole number of reps, at least ``min_reps``
    (or the whole team when it is smaller): the factor is ``reps' / reps``.
    """
    expected = scenario_workload(scenario).leads
    reps = scenario.team.reps
    if expected <= leads or reps <= min_reps:
        return 1.0
    kept = max(min_reps, math.ceil(reps * leads / expected))
    return min(1.0, kept / reps)


def scaled_overrides(scenario: Scenario, factor: float) -> dict[str, Any]:
    """Overrides that scale every source's volume and the team by ``factor``.

    Volume is ``leads_per_week`` or ``budget_per_week_usd`` (with its reference budget,
    so that the cost per lead stays put), and any per-week lead count of a campaign.
    """
    if factor >= 1.0:
        return {}
    out: dict[str, Any] = {"team.reps": max(1, round(scenario.team.reps * factor))}
    for source in scenario.sources:
        raw = source.model_dump(mode="json")
        for name in ("leads_per_week", "budget_per_week_usd", "reference_budget_per_week_usd"):
            if raw.get(name) is not None:
                out[f"sources.{source.name}.{name}"] = float(raw[name]) * factor
        bursts = raw.get("bursts") or []
        if any(k.endswith("leads_per_week") for b in bursts for k in b):
            out[f"sources.{source.name}.bursts"] = [
                {
                    k: (v * factor if k.endswith("leads_per_week") and v is not None else v)
                    for k, v in b.items()
                }
                for b in bursts
            ]
    return out


def scaled(scenario: Scenario, factor: float | None = None) -> tuple[Scenario, float]:
    """The scenario scaled by ``factor`` (default :func:`scale_factor`), and the factor."""
    from simfunnel.parameters import load_scenario

    used = scale_factor(scenario) if factor is None else factor
    if used >= 1.0:
        return scenario, 1.0
    return load_scenario(scenario, scaled_overrides(scenario, used)), used

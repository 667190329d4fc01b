"""A team the export does not show, sized so that it is not what limits conversion.

Without an owner column the export says nothing of the team, and the schema's default
(8 reps) is a guess that can be far off: 8 reps drown under 500 new leads a week, their
leads go stale, and the scenario loses wins the history had. The fit by simulation then
hides it over the history (it raises the stage chances to make up for the stale leads),
and the forecast collapses as volume grows.

So a calibrated scenario without team data gets a team sized to the recent volume: the
rep hours one lead takes (:func:`simfunnel.queueing.work_hours_per_lead`, measured on
the scenario) times the leads a week at the end of the history, over a rep's selling
hours, at :data:`OCCUPANCY`. That is below the 75-85% a contact centre sustains
(docs/assumptions.md, burnout and turnover), so the observed conversion is not limited by
a team the data does not show, with room for the volume's growth. It is a default, said
in one line; ``team.reps`` in the scenario (or an owner column) replaces it.
"""

from __future__ import annotations

import math

from simfunnel.parameters import Scenario

#: Share of the team's selling hours the recent volume takes, for a team not in the data.
OCCUPANCY = 0.6


def team_for_volume(scenario: Scenario, seed: int | None = None) -> tuple[int, str]:
    """Reps that work the scenario's recent volume at :data:`OCCUPANCY`, and the line saying so."""
    from simfunnel.calibration.fit.scale import scaled
    from simfunnel.queueing import work_hours_per_lead

    weekly = sum(s.effective_leads_per_week for s in scenario.sources)
    small, _ = scaled(scenario)  # hours a lead takes do not depend on the volume
    hours = work_hours_per_lead(small, seed=seed)
    team = scenario.team
    shifts = 7 if team.round_the_clock else len(team.working_days)
    per_rep = team.selling_hours * shifts
    if not math.isfinite(hours) or hours <= 0 or per_rep <= 0:
        return team.reps, f"team.reps: no owner column; the default {team.reps} reps"
    reps = max(1, math.ceil(weekly * hours / (per_rep * OCCUPANCY)))
    line = (
        f"team.reps: no owner column, so {reps} reps, sized to the recent "
        f"{weekly:,.0f} leads a week at {hours * 60:.0f} rep minutes a lead and "
        f"{OCCUPANCY:.0%} occupancy (docs/assumptions.md); give the real team as "
        "team.reps in the scenario, or map an owner column"
    )
    return reps, line


def size_team(
    scenario: Scenario, comments: dict[str, str], defaults: list[str], notes: list[str]
) -> Scenario:
    """``scenario`` with a team sized to its recent volume, said once in ``notes``.

    Its comment and its line among the defaults say that it is a default rule, not an
    estimate (the provenance records it as ``default``).
    """
    reps, line = team_for_volume(scenario)
    notes.append(line)
    comments["team.reps"] = (
        f"domain default rule: no owner column, so sized to the recent volume at "
        f"{OCCUPANCY:.0%} occupancy (docs/assumptions.md); give the real team"
    )
    defaults[:] = [d for d in defaults if not d.startswith("team.reps")] + [
        f"team.reps ({reps}: no owner column; sized to the recent volume at "
        f"{OCCUPANCY:.0%} occupancy)"
    ]
    # a copy with the one field changed: the fields the writer set stay the ones it set
    return scenario.model_copy(update={"team": scenario.team.model_copy(update={"reps": reps})})

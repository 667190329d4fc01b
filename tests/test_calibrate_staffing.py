"""A team the export does not show is sized to the recent volume, not left at 8 reps.

An export of a busy world (twelve times the example's leads, and its team) without an
owner column: the default team of 8 would leave most leads stale. The calibrated team
works the recent volume at about the stated occupancy, and says so in one line.
"""

from __future__ import annotations

import simfunnel
from simfunnel.calibration.estimate.staffing import OCCUPANCY
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.parameters import load_scenario

BASE = load_scenario(sample_path(EXAMPLE_SCENARIO))


def test_a_team_not_in_the_export_is_sized_to_the_volume(tmp_path):
    over = {f"sources.{s.name}.leads_per_week": s.leads_per_week * 12 for s in BASE.sources}
    over["team.reps"] = BASE.team.reps * 12
    export = to_crm(simfunnel.simulate(BASE, seed=2, overrides=over)).drop(columns=["owner"])
    cal = simfunnel.calibrate(export, simulate=False)
    said = [line for line in cal.summary_lines() if line.startswith("team.reps: no owner")]
    assert len(said) == 1 and f"{OCCUPANCY:.0%} occupancy" in said[0]
    reps = cal.scenario.team.reps
    assert reps > 8 and f"so {reps} reps" in said[0]
    assert "team.reps" not in cal.fields_from_data  # a default rule, not an estimate
    assert cal.scenario.provenance["team.reps"].origin == "default"
    assert load_scenario(cal.write(tmp_path / "busy.yaml")).team.reps == reps
    kpis = simfunnel.simulate(cal.scenario, seed=3).window_kpis
    # the team is busy but not the bottleneck: few leads go stale
    assert 0.3 < kpis["rep_utilization"] < OCCUPANCY + 0.15
    assert kpis["stale_share"] < 0.1

"""The fit's scaled-down world: volume and team by one factor, the same rates.

A world of 48 reps and about 40,000 leads a year is simulated whole and at a quarter
(12 reps, a quarter of every source's leads): the load per rep is the same, so every
stage rate of the small world must agree with the big world's within the 95% interval
of their difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.estimate import observed_rates
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.fit.scale import MIN_REPS, scale_factor, scaled, scaled_overrides
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.limits import scenario_workload
from simfunnel.parameters import load_scenario

SMALL = load_scenario(sample_path(EXAMPLE_SCENARIO))
FACTOR = 12


@pytest.fixture(scope="module")
def big():
    over = {f"sources.{s.name}.leads_per_week": s.leads_per_week * FACTOR for s in SMALL.sources}
    over["team.reps"] = SMALL.team.reps * FACTOR
    return load_scenario(SMALL, over)


def test_a_small_history_is_fitted_whole():
    assert scale_factor(SMALL) == 1.0
    assert scaled_overrides(SMALL, 1.0) == {}


def test_the_factor_keeps_whole_reps_and_enough_of_them(big):
    factor = scale_factor(big, leads=5_000)
    reps = big.team.reps * factor
    assert reps == round(reps) and reps >= MIN_REPS
    small, used = scaled(big, factor)
    assert used == factor and small.team.reps == round(reps)
    # the load per rep is the same
    load = scenario_workload(big).leads / big.team.reps
    assert scenario_workload(small).leads / small.team.reps == pytest.approx(load, rel=1e-6)


def _rates(scenario, seeds):
    """Mean rate over the seeds, and the half-width of its 95% interval."""
    runs = [
        observed_rates(to_crm(simfunnel.simulate(scenario, seed=k))).set_index(["source", "stage"])
        for k in seeds
    ]
    rate = pd.concat([r["rate"] for r in runs], axis=1).mean(axis=1)
    # each run's interval half-width, shrunk by the number of runs averaged
    half = pd.concat([(r["high"] - r["low"]) / 2 for r in runs], axis=1).mean(axis=1)
    volume = pd.concat([r["leads_per_week"] for r in runs], axis=1).mean(axis=1)
    return rate, half / np.sqrt(len(runs)), volume


def test_the_scaled_world_has_the_same_rates(big):
    quarter, factor = scaled(big, MIN_REPS / big.team.reps)
    assert factor == pytest.approx(0.25)
    whole, whole_half, whole_volume = _rates(big, (11, 12))
    part, part_half, part_volume = _rates(quarter, (21, 22, 23, 24))
    # the two worlds' rates agree within the interval of their difference, widened
    # for the twelve rates compared at once (Bonferroni: z 2.87 over 1.96)
    half = np.hypot(whole_half, part_half) * 2.87 / 1.96
    gap = (part - whole).abs()
    assert (gap <= half).all(), pd.DataFrame({"gap": gap, "half": half})[gap > half]
    assert (part_volume / whole_volume).between(0.23, 0.27).all()

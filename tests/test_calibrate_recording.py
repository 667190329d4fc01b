"""Outcomes recorded only from some date: found, said in one line, and left out of conversion.

A world is simulated over a year and exported; its outcomes are then blanked for the
first five months, as a CRM installed mid-history would have kept them. Calibration
must find the start, estimate conversion from the cohorts after it (which agrees with
the export that kept everything), and keep the volume of every lead.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.estimate.recording import (
    MIN_GAP_DAYS,
    cohort_conversion,
    outcome_recording_start,
)
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.results import load_results, save_results
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.errors import CalibrationError
from simfunnel.parameters import load_scenario

YEAR = load_scenario(
    sample_path(EXAMPLE_SCENARIO),
    {"run.horizon_days": 364, "sources.referral.win_probability": 0.8},
)
GAP = pd.Timedelta(days=150)


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return to_crm(simfunnel.simulate(YEAR, seed=3))


def recorded_from(crm: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """``crm`` as a CRM that kept outcomes only from ``start`` would hold it."""
    out = crm.copy()
    blank = pd.Series(False, index=out.index)
    for column in ("opportunity_at", "won_at", "lost_at"):
        when = pd.to_datetime(out[column])
        early = when < start
        out.loc[early, column] = pd.NaT
        blank |= early
    out.loc[blank, "status"] = "open"
    out.loc[out["won_at"].notna(), "status"] = "won"
    out.loc[out["lost_at"].notna(), "status"] = "lost"
    return out


@pytest.fixture(scope="module")
def late(full: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp]:
    start = pd.Timestamp(pd.to_datetime(full["created_at"]).min()) + GAP
    return recorded_from(full, start), start


def won(cal: simfunnel.Calibration) -> pd.DataFrame:
    return cal.observed[cal.observed["stage"] == "won"].set_index("source")


def test_a_start_of_outcome_recording_is_found_with_its_dates(late):
    crm, start = late
    found = outcome_recording_start(crm)
    assert found is not None
    # the first outcome recorded after the start, within days of it
    assert start <= found.start <= start + pd.Timedelta(days=7)
    assert found.rate_before < found.rate_after / 2
    line = found.line()
    assert f"{found.start:%Y-%m-%d}" in line and f"{found.first_lead:%Y-%m-%d}" in line
    assert "\n" not in line


def test_conversion_comes_from_the_cohorts_after_it_and_volume_from_all(full, late):
    crm, _ = late
    kept = simfunnel.calibrate(full, simulate=False)
    assert kept.recording is None  # an export that kept everything has no start
    cut = simfunnel.calibrate(crm, simulate=False)
    assert cut.recording is not None
    assert any("outcomes are recorded from" in line for line in cut.summary_lines())
    averaged = simfunnel.calibrate(crm, simulate=False, outcomes_from="all")
    truth, after, both = won(kept), won(cut), won(averaged)
    # after the start: every source's interval holds what the full export shows
    assert ((after["low"] <= truth["rate"]) & (truth["rate"] <= after["high"])).all(), after
    # averaged with the unrecorded cohorts: understated, the best source below its interval
    assert (both["rate"] < after["rate"]).all()
    assert (both["high"] < truth["rate"]).any()
    # every lead still counts for volume, in the observed table and in the scenario
    assert (after["leads"] == truth["leads"]).all()
    volume = {s.name: s.leads_per_week for s in cut.scenario.sources}
    assert volume == {s.name: s.leads_per_week for s in kept.scenario.sources}


def test_no_start_when_outcomes_take_long_but_were_always_recorded(full):
    # every outcome delayed by MIN_GAP_DAYS: the first comes late, but the early
    # cohorts convert as often as the later ones, so nothing is left out
    slow = full.copy()
    for column in ("opportunity_at", "won_at", "lost_at"):
        slow[column] = pd.to_datetime(slow[column]) + pd.Timedelta(days=MIN_GAP_DAYS + 10)
    assert outcome_recording_start(slow) is None


def test_a_converted_flag_with_months_of_no_outcomes_is_found_too():
    rng = np.random.default_rng(4)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 360, 3000), unit="D")
    converted = (rng.random(3000) < 0.2) & (created >= pd.Timestamp("2024-05-01"))
    crm = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(3000)],
            "source": rng.choice(["web", "events"], 3000),
            "created_at": created.round("min"),
            "status": np.where(converted, "won", "lost"),
        }
    )
    found = outcome_recording_start(crm)
    assert found is not None and not found.dated
    assert found.start == pd.Timestamp("2024-05-01")
    rates = won(simfunnel.calibrate(crm, simulate=False))
    assert ((rates["low"] <= 0.2) & (0.2 <= rates["high"])).all(), rates


def test_cohorts_add_up_to_the_export(late):
    crm, start = late
    cohorts = cohort_conversion(crm)
    assert int(cohorts["leads"].sum()) == len(crm)
    assert int(cohorts["reached"].sum()) == int(crm["status"].eq("won").sum())
    assert (cohorts["low"] >= 0).all() and (cohorts["high"] <= 1).all()
    before = cohorts[cohorts["month"] < start - pd.Timedelta(days=31)]
    after = cohorts[cohorts["month"] > start]
    assert before["rate"].max() < after["rate"].median()


def test_outcomes_from_a_bad_value_is_one_line(full):
    with pytest.raises(CalibrationError, match="outcomes_from: expected auto, all or a date"):
        simfunnel.calibrate(full, simulate=False, outcomes_from="soon")
    with pytest.raises(CalibrationError, match="no lead was created on or after it"):
        simfunnel.calibrate(full, simulate=False, outcomes_from="2099-01-01")


def test_the_cli_says_it_in_one_line_and_takes_outcomes_from(tmp_path, late):
    crm, _ = late
    path = tmp_path / "crm.csv"
    crm.to_csv(path, index=False)
    base = [sys.executable, "-m", "simfunnel", "calibrate", str(path), "--no-simulate"]
    done = subprocess.run(
        [*base, "--out", str(tmp_path / "a.yaml")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "outcomes are recorded from" in line]
    assert len(said) == 1
    bad = subprocess.run(
        [*base, "--out", str(tmp_path / "b.yaml"), "--outcomes-from", "2025-13-40"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--outcomes-from" in bad.stderr
    assert not (tmp_path / "b.yaml").exists()


def test_results_saved_by_the_command_load_back_the_same(tmp_path, late):
    crm, _ = late
    cal = simfunnel.calibrate(crm, simulate=False)
    save_results(cal, tmp_path / "results")
    back, check, test = load_results(tmp_path / "results")
    assert check is None and test is None
    pd.testing.assert_frame_equal(back.estimates, cal.estimates, check_dtype=False)
    pd.testing.assert_frame_equal(back.observed, cal.observed, check_dtype=False)
    assert back.recording == cal.recording
    assert back.summary_lines() == cal.summary_lines()
    assert back.scenario.model_dump() == cal.scenario.model_dump()
    with pytest.raises(CalibrationError, match="not a calibration results folder"):
        load_results(tmp_path)


@pytest.mark.slow
def test_the_written_scenario_reproduces_the_recorded_cohorts(late):
    crm, _ = late
    cal = simfunnel.calibrate(crm, replications=3, workers=2, progress=False)
    assert cal.recording is not None
    check = cal.fit_check(replications=6, workers=2)
    rates = check.table[check.table["stage"] != "leads_per_week"]
    # every observed rate of the recorded cohorts, and every source's volume, reproduced
    assert rates["inside"].all(), rates[["source", "stage", "observed", "simulated"]]
    volumes = check.table[check.table["stage"] == "leads_per_week"]
    assert volumes["inside"].all(), volumes[["source", "observed", "simulated"]]

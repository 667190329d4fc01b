"""Exports without dates: conversion and the score from the rows, volume only when given.

A converted flag and a score by source, with no date at all, still say each source's
conversion and the score's AUC; the volume needs the period the export covers or each
source's leads per week, and is refused in one line without them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.estimate.undated import UndatedExport
from simfunnel.calibration.export import to_crm
from simfunnel.errors import CalibrationError

RATES = {"ads": 0.08, "events": 0.6, "web": 0.3}
MAPPING = {"leads": {"lead_id": "id", "source": "channel", "status": "outcome", "score": "score"}}


def undated(per_source: int = 400, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for name, rate in RATES.items():
        won = rng.random(per_source) < rate
        score = np.clip(0.35 * won + 0.65 * rng.random(per_source), 0, 1)
        parts.append(
            pd.DataFrame(
                {
                    "id": [f"{name}-{i}" for i in range(per_source)],
                    "channel": name,
                    "outcome": np.where(won, "won", "lost"),
                    "score": score.round(4),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def won_rates(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["field"] == "rate.won"].set_index("source")


def test_without_a_period_the_volume_is_refused_with_what_the_rows_tell():
    with pytest.raises(UndatedExport) as caught:
        simfunnel.calibrate(undated(), mapping=MAPPING, simulate=False)
    message = str(caught.value)
    assert "\n" not in message and "--period" in message and "--leads-per-week" in message
    rates = won_rates(caught.value.estimates)
    assert set(rates.index) == set(RATES)
    for name, truth in RATES.items():
        assert rates.loc[name, "low"] <= truth <= rates.loc[name, "high"]
    auc = caught.value.estimates.set_index("field").loc["process.routing.score_auc"]
    assert 0.6 < auc["estimate"] < 0.9 and auc["low"] < auc["estimate"] < auc["high"]


def test_a_period_gives_the_volume_and_a_scenario_that_runs():
    cal = simfunnel.calibrate(
        undated(), mapping=MAPPING, simulate=False, period="2023-01-02..2023-12-31"
    )
    weeks = 364 / 7
    volume = {s.name: s.leads_per_week for s in cal.scenario.sources}
    assert volume == pytest.approx({name: 400 / weeks for name in RATES}, rel=1e-3)
    assert any("volume from the period given" in line for line in cal.summary_lines())
    text = cal.to_yaml()
    assert "flat: the export has no creation dates" in text
    result = simfunnel.simulate(cal.scenario, seed=1)
    leads = result.leads.num_rows if hasattr(result.leads, "num_rows") else len(result.leads)
    assert leads > 0
    with pytest.raises(CalibrationError, match="no creation dates"):
        cal.backtest(0.25)
    with pytest.raises(CalibrationError, match="as_of: the export has no creation dates"):
        simfunnel.calibrate(
            undated(), mapping=MAPPING, period="2023-01-02..2023-12-31", as_of="2023-12-31"
        )


def test_leads_per_week_are_taken_as_given_and_checked():
    given = {"ads": 30.0, "events": 5.0, "web": 12.5}
    cal = simfunnel.calibrate(undated(), mapping=MAPPING, simulate=False, leads_per_week=given)
    assert {s.name: s.leads_per_week for s in cal.scenario.sources} == given
    # conversion still comes from the rows themselves, not the spread copy
    rates = won_rates(cal.estimates)
    assert (rates["n"] == 400).all()
    with pytest.raises(CalibrationError, match="no volume for events, web"):
        simfunnel.calibrate(undated(), mapping=MAPPING, simulate=False, leads_per_week={"ads": 3})
    with pytest.raises(CalibrationError, match="no such source 'adz'"):
        simfunnel.calibrate(
            undated(), mapping=MAPPING, simulate=False, leads_per_week={"adz": 3, **given}
        )


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simfunnel", "calibrate", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp,
    )


def test_the_cli_refuses_in_one_line_after_showing_the_conversion(tmp_path):
    undated().to_csv(tmp_path / "leads.csv", index=False)
    (tmp_path / "map.yaml").write_text(
        "leads:\n  lead_id: id\n  source: channel\n  status: outcome\n  score: score\n"
    )
    base = ["leads.csv", "--mapping", "map.yaml", "--no-simulate"]
    refused = _cli(tmp_path, *base, "--out", "a.yaml")
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "--period" in refused.stderr
    assert "events: lead->won" in refused.stdout and "score AUC" in refused.stdout
    assert not (tmp_path / "a.yaml").exists()
    done = _cli(tmp_path, *base, "--out", "b.yaml", "--leads-per-week", "ads=30")
    assert done.returncode == 2 and "--leads-per-week: no volume for events, web" in done.stderr
    given = [f"--leads-per-week={n}=10" for n in RATES]
    done = _cli(tmp_path, *base, "--out", "c.yaml", *given)
    assert done.returncode == 0, done.stderr
    assert all(s.leads_per_week == 10 for s in simfunnel.load_scenario(tmp_path / "c.yaml").sources)
    dated = to_crm(
        simfunnel.simulate(
            "balanced", seed=1, overrides={"run.horizon_days": 42, "run.warmup_days": 7}
        )
    )
    dated.to_csv(tmp_path / "dated.csv", index=False)
    both = _cli(tmp_path, "dated.csv", "--out", "d.yaml", "--period", "2024-01-01..2024-02-01")
    assert both.returncode == 2 and "only for an export without creation dates" in both.stderr


@pytest.mark.slow
def test_an_undated_flag_export_round_trips_through_the_fit():
    cal = simfunnel.calibrate(
        undated(),
        mapping=MAPPING,
        period="2023-01-02..2023-12-31",
        replications=3,
        workers=2,
        progress=False,
    )
    check = cal.fit_check(replications=6, workers=2)
    rates = check.table[check.table["stage"] != "leads_per_week"]
    assert rates["inside"].all(), rates[["source", "observed", "simulated"]]

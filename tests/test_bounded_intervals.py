"""Intervals that respect what a KPI can be, changes against a baseline near zero, and
intervals without spread, through the real command line and real reports."""

import html
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli

from simfunnel.experiments.comparison import Comparison
from simfunnel.metrics import kpi_bounds
from simfunnel.parameters import read_scenario_dict
from simfunnel.reporting.headline import describe_change

SHORT = '{"run.horizon_days": 60, "run.warmup_days": 7}'


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """volume_heavy with $300 a week per source: too few leads to tire anyone."""
    raw = read_scenario_dict("volume_heavy")
    raw["name"] = "quiet"
    for source in raw["sources"]:
        if source.get("budget_per_week_usd"):
            source["budget_per_week_usd"] = 300
    path = tmp_path_factory.mktemp("scenarios") / "quiet.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _within_bounds(kpi, low, high):
    floor, ceiling = kpi_bounds(kpi)
    return low is None or (floor <= low <= high <= ceiling)


def test_compare_against_a_baseline_near_zero_gives_the_difference(quiet):
    args = ["compare", quiet, "volume_heavy", "-n", "3", "--backend", "serial", "--quiet"]
    args += ["--set", "run.horizon_days=60", "--set", "run.warmup_days=7"]
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kpi"], r["scenario"]): r for r in json.loads(result.stdout)["rows"]}
    assert rows[("burnout_index", "quiet")]["mean"] == 0  # nobody tires
    burnout = rows[("burnout_index", "volume_heavy")]
    assert burnout["baseline_near_zero"] and burnout["rel_change"] is None
    assert burnout["significant"] == (burnout["diff_low"] > 0 or burnout["diff_high"] < 0)
    for (kpi, _), row in rows.items():  # no interval beyond what the KPI can be
        assert _within_bounds(kpi, row["ci_low"], row["ci_high"]), (kpi, row)
        assert row["rel_high"] is None or row["rel_high"] <= 100, (kpi, row)
    text = run_cli(
        *args, "--kpis", "burnout_index,customers,reps_quit,stale_share", env={"COLUMNS": "120"}
    )
    lines = text.stdout.splitlines()
    at = lines.index("Burnout index (0-1)")
    assert lines[at + 1].split()[:5] == ["quiet", "0.000", "all", "replications", "0.000"]
    line = lines[at + 2]
    assert line.split()[0] == "volume_heavy" and line.endswith("(absolute)"), line
    for line in lines:  # a half-width only where the interval is symmetric, so never below 0
        found = re.search(r"^\s+\S+\s+([\d,.]+)%?\s+± ([\d,.]+)", line)
        if found:
            assert float(found.group(1).replace(",", "")) >= float(found.group(2).replace(",", ""))
    assert "too near 0 for a percentage" in text.stdout
    assert not re.search(r"[\d,.]{6,}%", text.stdout)  # no +101,491.4%


@pytest.fixture(scope="module")
def reports(quiet, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    done = {}
    for name, scenarios in (
        ("busy_first", ["volume_heavy", quiet]),
        ("quiet_first", [quiet, "volume_heavy"]),
    ):
        result = run_cli(
            "report",
            "volume_vs_quality",
            "--out",
            str(out / name),
            "-p",
            "scenarios",
            json.dumps(scenarios),
            "-p",
            "team_sizes",
            "[]",
            "-p",
            "replications",
            "3",
            "-p",
            "overrides",
            SHORT,
            "-p",
            "backend",
            "serial",
            "--quiet",
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        facts = json.loads((out / name / "volume_vs_quality.json").read_text())
        page = html.unescape((out / name / "volume_vs_quality.html").read_text())
        done[name] = facts, page
    return done


def test_a_change_without_spread_is_said_in_words(reports):
    facts, page = reports["busy_first"]
    text = facts["comparison_conclusion"]
    assert "lowers burnout by 100% (all replications 0)" in text, text
    assert "100% to 100%" not in text and "100% to 100%" not in page


def test_a_baseline_near_zero_is_reported_as_a_difference(reports):
    facts, page = reports["quiet_first"]
    text = facts["comparison_conclusion"]
    found = re.search(r"raises burnout by (0\.\d+) \(95% CI \+(0\.\d+) to \+(0\.\d+);", text)
    assert found, text
    assert "an absolute difference: the baseline's is too near 0 for a percentage" in text
    diff = facts["differences"]["volume_heavy"]["burnout_index"]
    assert diff["rel_change"] is None and float(found.group(1)) == pytest.approx(
        diff["diff"], abs=5e-3
    )
    assert not re.search(r"\d{2},\d{3}(\.\d)?%", page)  # no percentage above 10,000%


def test_report_intervals_stay_within_each_kpis_bounds(reports):
    for facts, _ in reports.values():
        for name, kpis in facts["scenarios"].items():
            for kpi, entry in kpis.items():
                assert _within_bounds(kpi, entry["ci_low"], entry["ci_high"]), (name, kpi, entry)
        for level in facts["by_level"].values():
            for name, kpis in level.items():
                for kpi, entry in kpis.items():
                    low, high = entry["ci_low"], entry["ci_high"]
                    assert low is None or math.isnan(low) or _within_bounds(kpi, low, high), (
                        name,
                        kpi,
                        entry,
                    )


def test_an_interval_that_rounds_to_one_value_says_what_moved():
    # burnout 0.3 against a few ten-thousandths: the change is -99.9x%, its interval too
    base = np.array([0.30, 0.32, 0.31, 0.29])
    other = np.array([0.0001, 0.0002, 0.0001, 0.0003])
    runs = [
        {"scenario": name, "replication": r, "burnout_index": float(v)}
        for name, values in (("base", base), ("other", other))
        for r, v in enumerate(values)
    ]
    table = Comparison(runs=pd.DataFrame(runs), baseline="base").table(["burnout_index"])
    text = describe_change("burnout", table.loc[("burnout_index", "other")], "burnout_index")
    assert text == (
        "lowers burnout by 100% (from 0.305 to 0.000; the 95% CI rounds to 100% at both ends)"
    )

"""Each report's workbook holds what its page holds, checked against the report's JSON.

The real session reports (tests/conftest.py) are read back with openpyxl: the answer
first, the tables with every mean and interval end equal to the JSON's, human labels,
and an About sheet naming scenarios, seed, replications, team sizes and version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from simfunnel.formatting import kpi_label, parameter_label
from simfunnel.version import __version__

#: An identifier where a label should be: snake_case or a dotted path.
IDENTIFIER = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$|[a-z]\.[a-z]")


def _load(out: Path, stem: str) -> tuple[Any, dict[str, Any]]:
    return openpyxl.load_workbook(out / f"{stem}.xlsx"), json.loads(
        (out / f"{stem}.json").read_text()
    )


def _table(ws: Any) -> list[dict[str, Any]]:
    """The sheet's rows as dicts by heading (the heading row follows a note, if any)."""
    rows = list(ws.iter_rows(values_only=True))
    start = 2 if rows[0][1:] and all(v is None for v in rows[0][1:]) and len(rows[0]) > 2 else 0
    if len(rows) > 1 and all(v is None for v in rows[1]):
        start = 2
    headers = rows[start]
    return [dict(zip(headers, r, strict=True)) for r in rows[start + 1 :]]


def _human(values: list[Any]) -> None:
    for value in values:
        assert value and not IDENTIFIER.search(str(value)), f"not a human label: {value!r}"


def _said(book: Any) -> str:
    """The Decision sheet's answer and reasons, as one text."""
    assert book.sheetnames[0] == "Decision"
    rows = list(book["Decision"].iter_rows(min_row=2, values_only=True))
    return " ".join(text for key, text in rows if key in ("decision", "why"))


def _close(value: Any, expected: Any) -> bool:
    if expected is None:
        return value is None
    return value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def _about(book: Any, headline: dict[str, Any], team_sizes: bool = True) -> dict[str, Any]:
    about = dict(book["About"].iter_rows(min_row=2, values_only=True))
    assert about["simfunnel version"] == __version__
    prov = headline["provenance"]
    if headline["kind"] != "calibration":
        assert about["scenarios"] == ", ".join(prov["scenarios"])
        assert about["seed"] == prov["seed"] and about["replications"] == prov["replications"]
        assert about["team sizes"]
    return about


def test_volume_vs_quality_workbook_holds_the_page(batch_report):
    out, done = batch_report
    assert done.returncode == 0, done.stderr
    folder = sorted(out.glob("01_*"))[0]
    book, facts = _load(folder, folder.name)
    assert book.sheetnames == [
        "Decision",
        "By team size",
        "LTV-CAC and payback",
        "Comparison",
        "About",
    ]
    assert _said(book) == facts["conclusion"]
    assert book["Decision"]["B2"].value == facts["verdict"]
    kpis = {kpi_label(k): k for k in next(iter(next(iter(facts["by_level"].values())).values()))}
    rows = _table(book["By team size"])
    level = parameter_label(facts["parameter"])
    expected = sum(len(k) for s in facts["by_level"].values() for k in s.values())
    assert len(rows) == expected
    _human([r["KPI"] for r in rows])
    for r in rows:
        values = facts["by_level"][str(r[level])][r["strategy"]][kpis[r["KPI"]]]
        assert _close(r["mean"], values["mean"])
        assert _close(r["95% CI low"], values["ci_low"])
        assert _close(r["95% CI high"], values["ci_high"])
    payback = _table(book["LTV-CAC and payback"])
    assert len(payback) == sum(len(s) for s in facts["by_level"].values())
    for r in payback:
        strategy = facts["by_level"][str(r[level])][r["strategy"]]
        for kpi in ("ltv_to_cac", "cac_payback_months"):
            label = kpi_label(kpi)
            assert _close(r[label], strategy[kpi]["mean"])
            assert _close(r[f"{label} 95% CI low"], strategy[kpi]["ci_low"])
            assert _close(r[f"{label} 95% CI high"], strategy[kpi]["ci_high"])
    about = _about(book, facts)
    assert about["team sizes"] == facts["provenance"]["details"]["team sizes"]


def test_budget_mix_workbook_holds_the_page(budget_mix_report):
    out, done = budget_mix_report
    assert done.returncode == 0, done.stderr
    book, facts = _load(out, "budget_mix")
    assert book.sheetnames[:3] == ["Decision", "Summary", "Constraints"]
    assert book.sheetnames[-1] == "About"
    assert _said(book) == facts["conclusion"]
    rec, current = facts["recommendation"], facts["current"]
    rows = {r[None]: r for r in _table(book["Summary"])}
    _human(list(rows))
    headers = list(next(iter(rows.values())))
    recommended, now = headers[1], headers[4]
    assert now == "current split"
    for path, value in rec["decision"].items():
        row = rows[parameter_label(path)]
        assert _close(row[recommended], value)
        assert _close(row[now], current["decision"][path])
    for kpi, values in rec["estimates"].items():
        row = rows[kpi_label(kpi)]
        for i, key in enumerate(("mean", "ci_low", "ci_high")):
            assert _close(row[headers[1 + i]], values[key])
            assert _close(row[headers[4 + i]], current["estimates"][kpi][key])
    constraints = _table(book["Constraints"])
    assert len(constraints) == len(rec["constraints"]) >= 1
    for r, c in zip(constraints, rec["constraints"], strict=True):
        assert r["KPI"] == kpi_label(c["kpi"])
        assert _close(r["mean"], c["mean"]) and _close(r["95% bound"], c["bound"])
    _about(book, facts)


def test_calibration_workbook_holds_the_page(calibration_report):
    out, done = calibration_report
    assert done.returncode == 0, done.stderr
    book, facts = _load(out, "calibration")
    assert book.sheetnames == ["Decision", "Fit check", "Fitted parameters", "Back-test", "About"]
    assert _said(book) == facts["conclusion"]
    assert book["Decision"]["B2"].value == facts["verdict"]
    columns = {
        "Fit check": (
            "fit_check",
            ("source", "stage"),
            {
                "observed": "observed",
                "observed_low": "observed 95% CI low",
                "observed_high": "observed 95% CI high",
                "simulated": "simulated",
                "simulated_low": "simulated 95% CI low",
                "simulated_high": "simulated 95% CI high",
            },
        ),
        "Fitted parameters": (
            "parameters",
            ("parameter", "source"),
            {
                "estimate": "estimate",
                "low": "95% CI low",
                "high": "95% CI high",
            },
        ),
        "Back-test": (
            "backtest",
            ("source", "count"),
            {
                "actual": "actual",
                "forecast": "forecast",
                "low": "95% prediction low",
                "high": "95% prediction high",
            },
        ),
    }
    for sheet, (key, labels, numbers) in columns.items():
        rows = _table(book[sheet])
        assert len(rows) == len(facts[key]) >= 1, sheet
        for r, record in zip(rows, facts[key], strict=True):
            _human([r[c] for c in labels])
            for field, heading in numbers.items():
                assert _close(r[heading], record[field]), (sheet, field)
    about = _about(book, facts)
    assert about["input"] == facts["provenance"]["input"]


def test_scenario_workbook_holds_the_page(scenario_report):
    out, done = scenario_report
    assert done.returncode == 0, done.stderr
    book, facts = _load(out, "scenario")
    assert book.sheetnames == ["Decision", "KPIs", "About"]
    assert _said(book) == facts["conclusion"] == facts["verdict"]
    rows = {r["KPI"]: r for r in _table(book["KPIs"])}
    _human(list(rows))
    assert len(rows) == len(facts["kpis"])
    for kpi, values in facts["kpis"].items():
        row = rows[kpi_label(kpi)]
        assert _close(row["mean"], values["mean"])
        assert _close(row["95% CI low"], values["ci_low"])
        assert _close(row["95% CI high"], values["ci_high"])
    _about(book, facts)


def test_sweep_workbook_holds_the_page(sweep_report):
    out, done = sweep_report
    assert done.returncode == 0, done.stderr
    book, facts = _load(out, "parameter_sweep")
    assert book.sheetnames == ["Decision", "Best points", "Pareto front", "Sensitivity", "About"]
    assert _said(book) == facts["conclusion"]
    best = _table(book["Best points"])
    assert len(best) == len(facts["best"])
    for r, record in zip(best, facts["best"], strict=True):
        assert _close(r[kpi_label("cac")], record["cac"])
    sens = _table(book["Sensitivity"])
    _human([r["KPI"] for r in sens] + [r["parameter"] for r in sens])
    _about(book, facts)


def test_a_recommended_change_is_set_against_the_current_split(budget_mix_report, tmp_path):
    """A recommendation that changes the split: its change against the current one, with
    the interval, beside both estimates (the session report keeps the current split, so
    its JSON is given a versus-current block as a change's would have)."""
    from simfunnel.reporting.workbook import headline_sheets, write_workbook

    out, done = budget_mix_report
    assert done.returncode == 0, done.stderr
    facts = json.loads((out / "budget_mix.json").read_text())
    facts["recommendation"]["label"] = "trial 3"
    facts["recommendation"]["versus_current"] = {
        "cac": {"rel_change": -0.2, "rel_low": -0.3, "rel_high": -0.1, "significant": True}
    }
    path = write_workbook(headline_sheets(facts, {"report": "budget_mix"}), tmp_path / "b.xlsx")
    rows = {r[None]: r for r in _table(openpyxl.load_workbook(path)["Summary"])}
    cac = rows[kpi_label("cac")]
    assert cac["change vs current"] == pytest.approx(-0.2)
    assert cac["change vs current 95% CI low"] == pytest.approx(-0.3)
    assert cac["change vs current 95% CI high"] == pytest.approx(-0.1)
    assert cac["significant"] == "yes"
    assert "recommended (trial 3)" in cac


def test_the_split_by_team_size_has_labels_and_intervals(budget_mix_report, tmp_path):
    """The search by team size, as the headline records it (the session report skips it,
    so its JSON is given two sizes): sources as labels, the objective with its interval."""
    from simfunnel.reporting.workbook import headline_sheets, write_workbook

    out, done = budget_mix_report
    assert done.returncode == 0, done.stderr
    facts = json.loads((out / "budget_mix.json").read_text())
    split = {p.split(".")[1]: v for p, v in facts["recommendation"]["decision"].items()}
    cac = facts["recommendation"]["estimates"]["cac"]
    facts["by_team_size"] = [
        {
            "reps": reps,
            "feasible": True,
            "candidate": candidate,
            **split,
            "cac": cac["mean"],
            "cac_low": cac["ci_low"],
            "cac_high": cac["ci_high"],
            "tied": 1,
        }
        for reps, candidate in ((8, "current"), (14, "trial 2"))
    ]
    path = write_workbook(headline_sheets(facts, {"report": "budget_mix"}), tmp_path / "t.xlsx")
    rows = _table(openpyxl.load_workbook(path)["By team size"])
    assert [r["team size (reps)"] for r in rows] == [8, 14]
    assert [r["verdict"] for r in rows] == ["keep the current split", "change the split"]
    _human(list(rows[0]))
    for source, value in split.items():
        assert rows[1][parameter_label(f"sources.{source}.budget_per_week_usd")] == value
    label = kpi_label("cac")
    assert _close(rows[0][label], cac["mean"]) and _close(
        rows[0][f"{label} 95% CI low"], cac["ci_low"]
    )
    assert _close(rows[1][f"{label} 95% CI high"], cac["ci_high"])


def test_sweep_points_carry_their_intervals(sweep_report, tmp_path):
    """Points run more than once: each KPI's 95% t interval beside its mean (the session
    sweep runs each point once, so its JSON is given standard errors and 3 runs)."""
    from scipy import stats

    from simfunnel.reporting.workbook import headline_sheets, write_workbook

    out, done = sweep_report
    assert done.returncode == 0, done.stderr
    facts = json.loads((out / "parameter_sweep.json").read_text())
    for record in facts["best"]:
        record.update({"n_ok": 3, "cac_sem": 100.0, "burnout_index_sem": 0.5})
    path = write_workbook(headline_sheets(facts, {}), tmp_path / "s.xlsx")
    rows = _table(openpyxl.load_workbook(path)["Best points"])
    t = float(stats.t.ppf(0.975, 2))
    label = kpi_label("cac")
    for r, record in zip(rows, facts["best"], strict=True):
        assert _close(r[f"{label} 95% CI low"], record["cac"] - t * 100.0)
        assert _close(r[f"{label} 95% CI high"], record["cac"] + t * 100.0)
        # a burnout index lies in 0-1: its interval is cut there
        assert r[f"{kpi_label('burnout_index')} 95% CI low"] == 0

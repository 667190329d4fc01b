"""The sheets of each report's workbook: what its page holds, from its headline JSON.

Each workbook opens with the page's answer (a ``Decision`` sheet), then the tables the
page shows, every estimate beside its 95% interval, with human labels, and ends with an
``About`` sheet: scenarios, seed, replications, team sizes, the report's parameters and
simfunnel's version. :func:`simfunnel.reporting.workbook.headline_sheets` calls these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simfunnel.formatting import kpi_kind, kpi_label, parameter_kind, parameter_label
from simfunnel.reporting.calibration import _PARAMETER_LABELS
from simfunnel.reporting.workbook import Cell, Sheet

#: Interval columns after an estimate's heading.
INTERVAL = ("mean", "ci_low", "ci_high")


def words(name: str) -> str:
    """An identifier (a source, a stage) in words: ``organic_search`` -> ``organic search``."""
    return str(name).replace("_", " ").replace(".", " ")


def decision_text(headline: Mapping[str, Any]) -> list[list[Any]]:
    """The Decision sheet's rows: the page's answer, then the reasons given with it."""
    conclusion = str(headline.get("conclusion") or "")
    verdict = headline.get("verdict")
    rows: list[list[Any]] = []
    if isinstance(verdict, str) and " " in verdict and verdict != conclusion:
        rows.append(["decision", verdict])
        rest = conclusion.removeprefix(verdict).strip()
        if rest:
            rows.append(["why", rest])
    elif conclusion:
        rows.append(["decision", conclusion])
    warnings = headline.get("warnings") or []
    rows += [["warning", str(w)] for w in warnings if str(w) not in conclusion]
    return rows


def decision_sheet(headline: Mapping[str, Any]) -> Sheet:
    """The page's answer, first in every workbook."""
    return Sheet("Decision", ["", "the answer, as the page states it"], decision_text(headline))


def about_facts(headline: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """What the About sheet lists first: the run's scenarios, seed, replications, team sizes."""
    prov = headline.get("provenance") or {}
    out: dict[str, Any] = {"report": facts.get("report", headline.get("kind", ""))}
    if headline.get("kind") == "calibration":
        out.update({str(k): v for k, v in prov.items()})
        return {**out, **facts}
    scenarios = prov.get("scenarios") or headline.get("scenario")
    if scenarios:
        out["scenarios"] = ", ".join(scenarios) if isinstance(scenarios, list) else scenarios
    for key in ("seed", "replications"):
        if prov.get(key) is not None:
            out[key] = prov[key]
    details = dict(prov.get("details") or {})
    if "team sizes" in details:
        out["team sizes"] = details.pop("team sizes")
    elif headline.get("levels") and headline.get("parameter") == "team.reps":
        out["team sizes"] = ", ".join(str(x) for x in headline["levels"]) + " reps"
    elif headline.get("by_team_size"):
        out["team sizes"] = ", ".join(str(r.get("team", "")) for r in headline["by_team_size"])
    elif "team.reps" in (prov.get("overrides") or {}):
        out["team sizes"] = f"{prov['overrides']['team.reps']} reps"
    else:
        out["team sizes"] = "the scenario's own"
    if prov.get("horizon_days") is not None:
        out["horizon (days)"] = prov["horizon_days"]
        out["warm-up (days)"] = prov.get("warmup_days")
    if prov.get("overrides"):
        out["overrides"] = "; ".join(
            f"{parameter_label(k)} = {v}" for k, v in prov["overrides"].items()
        )
    out.update(details)
    if prov.get("cost_defaults"):
        out["cost figures that are defaults"] = "; ".join(prov["cost_defaults"])
    if prov.get("assumptions"):
        out["assumptions (docs/assumptions.md)"] = "; ".join(prov["assumptions"])
    if prov.get("date"):
        out["run on"] = prov["date"]
    return {**out, **{k: v for k, v in facts.items() if k != "report"}}


def _interval_headers(label: str) -> list[str]:
    return [label, f"{label} 95% CI low", f"{label} 95% CI high"]


def _estimate(kpi: str, values: Mapping[str, Any] | None) -> list[Cell]:
    values = values or {}
    return [Cell(values.get(k), kpi_kind(kpi)) for k in INTERVAL]


def by_level_sheets(headline: Mapping[str, Any]) -> list[Sheet]:
    """volume_vs_quality: every KPI by team size, and LTV/CAC and payback by team size."""
    by_level = headline.get("by_level") or {}
    if not by_level:
        return []
    parameter = str(headline.get("parameter", "team.reps"))
    level_label = parameter_label(parameter)
    level_kind = parameter_kind(parameter)
    levels = {str(x): x for x in headline.get("levels", [])}
    table = Sheet(
        "By team size", [level_label, "strategy", "KPI", "mean", "95% CI low", "95% CI high"]
    )
    payback = Sheet(
        "LTV-CAC and payback",
        [
            level_label,
            "strategy",
            *_interval_headers(kpi_label("ltv_to_cac")),
            *_interval_headers(kpi_label("cac_payback_months")),
        ],
        note="LTV/CAC: healthy is 3x; CAC payback: healthy is under 12 months "
        "(docs/assumptions.md).",
    )
    for key, strategies in by_level.items():
        level = Cell(levels.get(key, key), level_kind)
        for name, kpis in strategies.items():
            for kpi, values in kpis.items():
                table.rows.append([level, name, kpi_label(kpi), *_estimate(kpi, values)])
            payback.rows.append(
                [
                    level,
                    name,
                    *_estimate("ltv_to_cac", kpis.get("ltv_to_cac")),
                    *_estimate("cac_payback_months", kpis.get("cac_payback_months")),
                ]
            )
    return [table, payback]


def budget_mix_sheets(headline: Mapping[str, Any]) -> list[Sheet]:
    """budget_mix: the recommended split against the current one, constraints, team sizes."""
    rec = headline.get("recommendation") or {}
    current = headline.get("current") or {}
    label = str(rec.get("label", ""))
    summary = Sheet(
        "Summary",
        [
            "",
            *_interval_headers(f"recommended ({label})" if label else "recommended"),
            *_interval_headers("current split"),
        ],
        note="Weekly budget by source, then each KPI's mean with its 95% interval.",
    )
    now = current.get("decision", {})
    versus = rec.get("versus_current") or {}
    if versus:  # the recommendation is a change: how far from the current split
        summary.headers += [*_interval_headers("change vs current"), "significant"]
    for path, value in (rec.get("decision") or {}).items():
        summary.rows.append(
            [
                parameter_label(path),
                Cell(value, parameter_kind(path)),
                None,
                None,
                Cell(now.get(path), parameter_kind(path)),
                None,
                None,
                *([None] * 4 if versus else []),
            ]
        )
    estimates = current.get("estimates", {})
    for kpi, values in (rec.get("estimates") or {}).items():
        row = [kpi_label(kpi), *_estimate(kpi, values), *_estimate(kpi, estimates.get(kpi))]
        if versus:
            against = versus.get(kpi, {})
            row += [Cell(against.get(k), "change") for k in ("rel_change", "rel_low", "rel_high")]
            row.append(_yes(against.get("significant")) if against else None)
        summary.rows.append(row)
    sheets = [summary]
    constraints = Sheet("Constraints", ["KPI", "limit", "mean", "95% bound", "met"])
    for c in rec.get("constraints") or []:
        kind = kpi_kind(c["kpi"])
        constraints.rows.append(
            [
                kpi_label(c["kpi"]),
                f"{c['op']} {c['limit']}",
                Cell(c.get("mean"), kind),
                Cell(c.get("bound"), kind),
                "yes" if c.get("met") else "no",
            ]
        )
    sheets.append(constraints)
    team = headline.get("by_team_size") or []
    if team:
        sheets.append(_team_sheet(team, headline))
    return sheets


def _team_sheet(team: list[dict[str, Any]], headline: Mapping[str, Any]) -> Sheet:
    """The split re-optimised at each team size: the verdict, the split, the objective."""
    objectives = headline.get("objectives") or [{"kpi": "cac"}]
    objective = str(objectives[0]["kpi"])
    own = {"reps", "feasible", "candidate", "tied", *(objective + s for s in ("", "_low", "_high"))}
    sources = [k for k in dict.fromkeys(k for r in team for k in r) if k not in own]
    sheet = Sheet(
        "By team size",
        [
            "team size (reps)",
            "verdict",
            *(parameter_label(f"sources.{s}.budget_per_week_usd") for s in sources),
            *_interval_headers(kpi_label(objective)),
            "mixes tied with it",
        ],
    )
    for r in team:
        if not r.get("feasible"):
            verdict = "no mix meets the constraints"
        elif r.get("candidate") == "current":
            verdict = "keep the current split"
        else:
            verdict = "change the split"
        sheet.rows.append(
            [
                r.get("reps"),
                verdict,
                *(Cell(r.get(s), "usd") for s in sources),
                *(Cell(r.get(objective + s), kpi_kind(objective)) for s in ("", "_low", "_high")),
                r.get("tied"),
            ]
        )
    return sheet


_FIT_COLUMNS = (
    ("observed", "observed"),
    ("observed_low", "observed 95% CI low"),
    ("observed_high", "observed 95% CI high"),
    ("simulated", "simulated"),
    ("simulated_low", "simulated 95% CI low"),
    ("simulated_high", "simulated 95% CI high"),
    ("off", "simulated off by (relative)"),
)
_PARAMETER_COLUMNS = (
    ("start", "start"),
    ("estimate", "estimate"),
    ("low", "95% CI low"),
    ("high", "95% CI high"),
)
_BACKTEST_COLUMNS = (
    ("actual", "actual"),
    ("forecast", "forecast"),
    ("low", "95% prediction low"),
    ("high", "95% prediction high"),
    ("error", "error (relative)"),
)


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def calibration_sheets(headline: Mapping[str, Any]) -> list[Sheet]:
    """calibration: the fit check, the fitted parameters and the back-test."""
    fit = Sheet(
        "Fit check",
        ["source", "stage", *(h for _, h in _FIT_COLUMNS), "inside the interval"],
    )
    for r in headline.get("fit_check", []):
        kind = "number" if r.get("stage") == "leads_per_week" else "share"
        fit.rows.append(
            [words(r.get("source", "")), words(r.get("stage", ""))]
            + [Cell(r.get(k), "change" if k == "off" else kind) for k, _ in _FIT_COLUMNS]
            + [_yes(r.get("inside"))]
        )
    params = Sheet(
        "Fitted parameters",
        [
            "parameter",
            "source",
            *(h for _, h in _PARAMETER_COLUMNS),
            "method",
            "identified",
            "at a bound",
            "note",
        ],
    )
    for r in headline.get("parameters", []):
        params.rows.append(
            [
                _PARAMETER_LABELS.get(r.get("parameter", ""), words(r.get("parameter", ""))),
                words(r.get("source", "")),
            ]
            + [Cell(r.get(k), "share") for k, _ in _PARAMETER_COLUMNS]
            + [
                r.get("method", ""),
                _yes(r.get("identified")),
                _yes(r.get("at_bound")),
                r.get("note", ""),
            ]
        )
    back = Sheet(
        "Back-test",
        ["source", "count", *(h for _, h in _BACKTEST_COLUMNS), "inside the interval"],
    )
    for r in headline.get("backtest", []):
        back.rows.append(
            [words(r.get("source", "")), words(r.get("count", ""))]
            + [Cell(r.get(k), "change" if k == "error" else "number") for k, _ in _BACKTEST_COLUMNS]
            + [_yes(r.get("inside"))]
        )
    return [fit, params, back]

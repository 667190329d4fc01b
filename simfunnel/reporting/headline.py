"""Headline numbers of a report, and the sentences written from them.

Each notebook ends by writing a JSON file of its headline numbers: a ``summary`` of
flat name -> number pairs (what a batch index tabulates) and the details behind it.
Conclusions are composed from the numbers, never written by hand.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from simfunnel.experiments.across import AcrossComparison
from simfunnel.experiments.comparison import Comparison, excludes_zero

#: The KPIs the strategy comparison leads with, and how to speak of them.
HEADLINE = (("cac", "CAC"), ("burnout_index", "burnout"), ("revenue", "revenue"))


#: Why a ratio KPI can be undefined: its denominator.
UNDEFINED_BECAUSE = {
    "cac": "no customers",
    "cpl": "no leads",
    "conversion_rate": "no leads",
    "contact_rate": "no leads",
    "return_on_spend": "no cost",
    "median_response_hours": "no lead attempted",
    "p90_response_hours": "no lead attempted",
    "rep_utilization": "no paid hours",
    "burnout_index": "no rep employed",
}


def format_kpi(kpi: str, value: Any, spec: str = ",.0f", prefix: str = "") -> str:
    """A KPI value for a sentence, or why it is undefined.

    ``format_kpi("cac", 1234.5, prefix="$")`` is ``"$1,234"``; an undefined value
    (NaN, None or infinite, as CAC is without customers) reads ``"undefined (no
    customers)"``. Every notebook and every sentence of the reporting library
    formats KPIs through this function, so an undefined KPI never breaks a report.
    """
    if value is None or not math.isfinite(float(value)):
        return f"undefined ({UNDEFINED_BECAUSE.get(kpi, 'no data')})"
    return f"{prefix}{float(value):{spec}}"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def describe_change(label: str, row: pd.Series) -> str:
    """``lowers CAC by 34% (95% CI 29% to 39%)``, or that it does not change it.

    Whether the change is called significant follows from the interval printed
    beside it, and from nothing else (:func:`~simfunnel.experiments.comparison.excludes_zero`).
    """
    rel, low, high = float(row["rel_change"]), float(row["rel_low"]), float(row["rel_high"])
    if not all(math.isfinite(v) for v in (rel, low, high)):
        return f"leaves {label} undetermined (too few defined values)"
    if not excludes_zero(low, high):
        return (
            f"does not change {label} significantly ({_pct(rel)}, 95% CI "
            f"{_pct(low)} to {_pct(high)})"
        )
    verb = "raises" if rel > 0 else "lowers"
    a, b = sorted((abs(low), abs(high)))
    return f"{verb} {label} by {_pct(abs(rel))} (95% CI {_pct(a)} to {_pct(b)})"


def conclusion(comparison: Comparison, table: pd.DataFrame | None = None) -> str:
    """Sentences comparing each strategy with the baseline on CAC, burnout and revenue."""
    table = comparison.table([k for k, _ in HEADLINE]) if table is None else table
    sentences = []
    for name in comparison.scenarios[1:]:
        parts = [describe_change(label, table.loc[(kpi, name)]) for kpi, label in HEADLINE]
        sentences.append(
            f"Against {comparison.baseline}, {name} {parts[0]}, {parts[1]}, and {parts[2]}."
        )
    cac = table.loc["cac"]["mean"].astype(float)
    if cac.notna().any():
        best = str(cac.idxmin())
        sentences.append(
            f"Lowest CAC: {best} ({format_kpi('cac', cac[best], prefix='$')} per customer, mean of "
            f"{len(comparison.runs) // len(comparison.scenarios)} replications)."
        )
    return " ".join(sentences)


def comparison_headline(comparison: Comparison) -> dict[str, Any]:
    """The headline numbers of a strategy comparison, JSON-ready."""
    kpis = [k for k, _ in HEADLINE] + [
        "customers",
        "total_cost",
        "median_response_hours",
        "stale_share",
        "reps_quit",
    ]
    table = comparison.table(kpis)
    scenarios: dict[str, Any] = {}
    differences: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for name in comparison.scenarios:
        scenarios[name] = {}
        for kpi in kpis:
            row = table.loc[(kpi, name)]
            scenarios[name][kpi] = {k: _clean(row[k]) for k in ("mean", "ci_low", "ci_high")}
            if name != comparison.baseline:
                differences.setdefault(name, {})[kpi] = {
                    k: _clean(row[k])
                    for k in (
                        "diff",
                        "diff_low",
                        "diff_high",
                        "rel_change",
                        "rel_low",
                        "rel_high",
                        "significant",
                    )
                }
        for kpi, _ in HEADLINE:
            summary[f"{kpi}[{name}]"] = _clean(table.loc[(kpi, name), "mean"])
    return {
        "kind": "volume_vs_quality",
        "baseline": comparison.baseline,
        "replications": int(len(comparison.runs) // len(comparison.scenarios)),
        "confidence": comparison.confidence,
        "scenarios": scenarios,
        "differences": differences,
        "conclusion": conclusion(comparison, table),
        "summary": summary,
    }


def _money(x: float) -> str:
    return "undefined (no customers)" if not math.isfinite(x) else f"${x:,.0f}"


def payback_sentence(name: str, table: pd.DataFrame) -> str:
    """Whether a strategy pays back: its LTV/CAC and CAC payback with intervals.

    LTV counts a customer's whole expected life (monthly gross margin over monthly
    churn); the payback months ignore churn, so they are quoted only where LTV/CAC
    shows the customers do pay back.
    """
    ratio = table.loc[("ltv_to_cac", name)]
    months = table.loc[("cac_payback_months", name)]
    r, r_lo, r_hi = (float(ratio[k]) for k in ("mean", "ci_low", "ci_high"))
    m = float(months["mean"])
    if not math.isfinite(r):
        return f"{name}: LTV/CAC undefined (no customers)."
    band = f"LTV/CAC {r:.1f} (95% CI {r_lo:.1f} to {r_hi:.1f})"
    if r_hi < 1:
        return (
            f"{name} does not pay back: {band}; over their whole expected life its customers "
            "bring less gross margin than they cost."
        )
    if r_lo >= 3 and m <= 12:
        return f"{name} pays back well: {band}, CAC back in {m:.0f} months (healthy: 3x, <12)."
    if r_lo > 1:
        return (
            f"{name} pays back, slowly: {band}, CAC back in {m:.0f} months of gross margin "
            "(domain.md: healthy is 3x and under 12 months; the median private SaaS takes ~23)."
        )
    return f"{name} may or may not pay back: {band}."


def across_headline(across: AcrossComparison, own_level: Any) -> dict[str, Any]:
    """The headline of the team-size view: where the answer changes, then the own team.

    ``own_level`` is the level the scenarios themselves set (their own team size); the
    paragraph on it explains the largest CAC gap by capacity when capacity is the cause.
    """
    kpis = [
        "cac",
        "ltv_to_cac",
        "cac_payback_months",
        "revenue",
        "customers",
        "burnout_index",
        "rep_utilization",
        "stale_share",
        "profit",
    ]
    table = across.table(kpis)
    words = across._level_words
    sentences = [across.verdict("cac"), across.verdict("ltv_to_cac")]
    own = across.comparisons[own_level].table(kpis) if own_level in across.comparisons else None
    per_level: dict[str, Any] = {}
    for level in across.levels:
        level_table = table.loc[level]
        per_level[str(level)] = {
            name: {
                kpi: {
                    k: _clean(level_table.loc[(kpi, name), k])
                    for k in ("mean", "ci_low", "ci_high")
                }
                for kpi in kpis
            }
            for name in across.scenarios
        }
    if own is not None:
        cac = own.xs("cac")["mean"].astype(float)
        parts = [
            f"{name} {_money(cac[name])} a customer ({own.loc[('customers', name), 'mean']:,.0f} "
            "customers)"
            for name in across.scenarios
        ]
        sentences.append(
            f"With {words(own_level)} (the scenarios' own team): " + "; ".join(parts) + "."
        )
        # a large gap gets its reason: the team's load
        finite = cac.dropna()
        if len(finite) >= 2 and finite.max() > 1.5 * finite.min():
            worst = str(finite.idxmax())
            util = float(own.loc[("rep_utilization", worst), "mean"])
            stale = float(own.loc[("stale_share", worst), "mean"])
            if util > 0.85:
                sentences.append(
                    f"The gap is mostly capacity: {worst} keeps these reps {util:.0%} busy and "
                    f"loses {stale:.0%} of its leads before anyone calls them."
                )
        sentences.extend(payback_sentence(name, own) for name in across.scenarios)
    base = comparison_headline(across.comparisons[own_level]) if own is not None else {}
    summary: dict[str, Any] = dict(base.get("summary", {}))
    for level in across.levels:
        for name in across.scenarios:
            summary[f"cac[{name}, {words(level)}]"] = _clean(
                table.loc[(level, "cac", name), "mean"]
            )
    return {
        **base,
        "comparison_conclusion": base.get("conclusion", ""),
        "kind": "volume_vs_quality",
        "parameter": across.parameter,
        "levels": [_clean(x) for x in across.levels],
        "own_level": _clean(own_level),
        "baseline": across.scenarios[0],
        "replications": int(
            len(across.comparisons[across.levels[0]].runs) // len(across.scenarios)
        ),
        "confidence": across.confidence,
        "verdicts": {"cac": sentences[0], "ltv_to_cac": sentences[1]},
        "by_level": per_level,
        "conclusion": " ".join(sentences),
        "summary": summary,
    }


def scenario_headline(name: str, summary: pd.DataFrame, replications: int) -> dict[str, Any]:
    """The headline numbers of one scenario: every KPI's mean and interval."""
    kpis = {
        kpi: {k: _clean(row[k]) for k in ("mean", "ci_low", "ci_high", "rel_half_width")}
        for kpi, row in summary.iterrows()
    }
    flat = {
        k: kpis[k]["mean"]
        for k in ("cac", "customers", "revenue", "burnout_index", "median_response_hours")
        if k in kpis
    }
    return {
        "kind": "scenario",
        "scenario": name,
        "replications": replications,
        "kpis": kpis,
        "summary": flat,
    }


def scenario_sentence(facts: dict[str, Any]) -> str:
    """The closing line of a scenario report, from :func:`scenario_headline`'s numbers.

    ``**balanced**: CAC $3,514, 120.4 customers, burnout 0.21 (means of 10
    replications).``; an undefined KPI reads ``undefined (...)``.
    """
    summary = facts["summary"]
    return (
        f"**{facts['scenario']}**: CAC {format_kpi('cac', summary.get('cac'), prefix='$')}, "
        f"{format_kpi('customers', summary.get('customers'), '.1f')} customers, burnout "
        f"{format_kpi('burnout_index', summary.get('burnout_index'), '.2f')} "
        f"(means of {facts['replications']} replications)."
    )


def sweep_headline(
    spec: dict[str, Any],
    means: pd.DataFrame,
    best: pd.DataFrame,
    front: pd.DataFrame,
    sensitivity: pd.DataFrame,
    objective: str,
    constraints: Any,
) -> dict[str, Any]:
    """The headline numbers of a sweep: best points, the Pareto front, sensitivity."""

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {str(k): _clean(v) for k, v in row.items()}
            for row in frame.reset_index().to_dict(orient="records")
        ]

    summary: dict[str, Any] = {"points": len(means), "pareto_points": len(front)}
    if len(best):
        summary[f"best {objective}"] = _clean(best[objective].iloc[0])
    from simfunnel.experiments.analysis import describe_constraints

    return {
        "kind": "parameter_sweep",
        "spec": spec,
        "objective": objective,
        "constraints": describe_constraints(constraints),
        "points": len(means),
        "best": records(best),
        "pareto_front": records(front),
        "sensitivity": records(sensitivity),
        "summary": summary,
    }


def write_headline(headline: dict[str, Any], path: str | Path) -> Path:
    """Write headline numbers as JSON (NaN as null), atomically."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(headline, indent=2, default=_clean, allow_nan=False)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out)  # whole or not at all: never a half-written file
    return out

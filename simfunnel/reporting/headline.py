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

import numpy as np
import pandas as pd

from simfunnel.experiments.across import AcrossComparison
from simfunnel.experiments.comparison import Comparison, excludes_zero
from simfunnel.experiments.spec import SweepSpec

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


def _signed_pct(x: float) -> str:
    text = f"{100 * x:+.0f}%"
    return "0%" if text in ("+0%", "-0%") else text


def describe_change(label: str, row: pd.Series, kpi: str | None = None) -> str:
    """``lowers CAC by 34% (95% CI 29% to 39%)``, or that it does not change it.

    Whether the change is called significant follows from the interval printed
    beside it, and from nothing else (:func:`~simfunnel.experiments.comparison.excludes_zero`).
    Against a baseline near zero (the row's ``baseline_near_zero``) the change is the
    absolute difference, with a note; an interval without spread is said in words.
    """
    from simfunnel.formatting import (
        format_difference,
        format_number,
        kpi_kind,
    )

    kind = kpi_kind(kpi) if kpi else "number"
    if bool(row.get("baseline_near_zero", False)):
        diff, low, high = float(row["diff"]), float(row["diff_low"]), float(row["diff_high"])
        if not all(math.isfinite(v) for v in (diff, low, high)):
            return f"leaves {label} undetermined (too few defined values)"
        note = "an absolute difference: the baseline's is too near 0 for a percentage"
        if low == high:
            band = f"the same in every replication; {note}"
        else:
            band = (
                f"95% CI {format_difference(low, kind)} to {format_difference(high, kind)}; {note}"
            )
        if not excludes_zero(low, high):
            return (
                f"does not change {label} significantly ({format_difference(diff, kind)}, {band})"
            )
        verb = "raises" if diff > 0 else "lowers"
        return f"{verb} {label} by {format_difference(abs(diff), kind).lstrip('+')} ({band})"
    rel, low, high = float(row["rel_change"]), float(row["rel_low"]), float(row["rel_high"])
    if not all(math.isfinite(v) for v in (rel, low, high)):
        return f"leaves {label} undetermined (too few defined values)"
    if low == high:  # no spread: "100% (95% CI 100% to 100%)" would claim a precision
        mean, ci_low, ci_high = (float(row.get(k, math.nan)) for k in ("mean", "ci_low", "ci_high"))
        value = "0" if mean == 0 else format_number(mean, kind)
        same = (
            f"all replications {value}"
            if ci_low == ci_high == mean
            else "the same change in every replication"
        )
        if rel == 0:
            return f"does not change {label} ({same})"
        verb = "raises" if rel > 0 else "lowers"
        return f"{verb} {label} by {_pct(abs(rel))} ({same})"
    if _pct(abs(low)) == _pct(abs(high)) and excludes_zero(low, high):
        # the printed interval collapses ("100% (95% CI 100% to 100%)"): say what moved
        mean = float(row.get("mean", math.nan))
        base = mean - float(row.get("diff", math.nan))
        verb = "raises" if rel > 0 else "lowers"
        return (
            f"{verb} {label} by {_pct(abs(rel))} (from {format_number(base, kind, statistic=True)} "
            f"to {format_number(mean, kind, statistic=True)}; the 95% CI rounds to "
            f"{_pct(abs(rel))} at both ends)"
        )
    if not excludes_zero(low, high):  # a change either way: every end signed
        return (
            f"does not change {label} significantly ({_signed_pct(rel)}, 95% CI "
            f"{_signed_pct(low)} to {_signed_pct(high)})"
        )
    verb = "raises" if rel > 0 else "lowers"
    a, b = sorted((abs(low), abs(high)))
    return f"{verb} {label} by {_pct(abs(rel))} (95% CI {_pct(a)} to {_pct(b)})"


def conclusion(comparison: Comparison, table: pd.DataFrame | None = None) -> str:
    """Sentences comparing each strategy with the baseline on CAC, burnout and revenue."""
    table = comparison.table([k for k, _ in HEADLINE]) if table is None else table
    sentences = []
    for name in comparison.scenarios[1:]:
        parts = [describe_change(label, table.loc[(kpi, name)], kpi) for kpi, label in HEADLINE]
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


def payback_words(name: str, ratio: float, low: float, high: float, months: float) -> str:
    """Whether a strategy pays back, from its LTV/CAC interval and CAC payback months.

    Healthy is LTV/CAC of 3 or more and CAC back within 12 months (docs/assumptions.md).
    The months ignore churn, so they are quoted only where LTV/CAC shows the customers
    do pay back.
    """
    if not math.isfinite(ratio):
        return f"{name}: LTV/CAC undefined (no customers)."
    band = f"LTV/CAC {ratio:.1f} (95% CI {low:.1f} to {high:.1f})"
    if high < 1:
        return (
            f"{name} does not pay back: {band}; over their whole expected life its customers "
            "bring less gross margin than they cost."
        )
    if low >= 3 and months <= 12:
        return f"{name} pays back well: {band}, CAC back in {months:.0f} months (healthy: 3x, <12)."
    if low > 1:
        return (
            f"{name} pays back, slowly: {band}, CAC back in {months:.0f} months of gross margin "
            "(docs/assumptions.md: healthy is 3x and under 12 months; the median private SaaS "
            "takes ~23)."
        )
    return f"{name} may or may not pay back: {band}."


def payback_sentence(name: str, table: pd.DataFrame) -> str:
    """Whether a strategy pays back: its LTV/CAC and CAC payback with intervals.

    LTV counts a customer's whole expected life (monthly gross margin over monthly
    churn); see :func:`payback_words`.
    """
    ratio = table.loc[("ltv_to_cac", name)]
    months = table.loc[("cac_payback_months", name)]
    return payback_words(
        name,
        float(ratio["mean"]),
        float(ratio["ci_low"]),
        float(ratio["ci_high"]),
        float(months["mean"]),
    )


def decision_sentence(
    across: AcrossComparison, level: Any, window_days: float | None = None
) -> str:
    """The decision at one level (the team the business has), led by what to choose.

    Which strategy gives the lowest CAC, with its interval and customers, against
    each other strategy; or, when the lowest are statistically tied on CAC (paired, on
    the log scale: :meth:`AcrossComparison.standing`), that the choice among them
    rests on the other KPIs.
    """
    table = across.comparisons[level].table(["cac", "customers"])
    words = across._level_words(level)
    span = f" in {window_days:,.0f} days" if window_days else ""

    def cost(name: str) -> str:
        row = table.loc[("cac", name)]
        return _money(float(row["mean"]))

    def band(name: str) -> str:
        row = table.loc[("cac", name)]
        low, high = float(row["ci_low"]), float(row["ci_high"])
        if not (math.isfinite(low) and math.isfinite(high)):
            return ""
        return f"95% CI {_money(low)} to {_money(high)}; "

    def won(name: str) -> str:
        return f"{float(table.loc[('customers', name), 'mean']):,.0f}"

    standing = across.standing(level, "cac")
    others = [s for s in across.scenarios if s not in standing.best]
    against = "; ".join(f"{s} wins {won(s)} at {cost(s)} each" for s in others)
    if not standing.tied:
        best = standing.best[0]
        text = (
            f"Decision: with {words}, choose {best}: {cost(best)} a customer "
            f"({band(best)}{won(best)} customers{span})"
        )
        return text + (f", where {against}." if against else ".")
    names = list(standing.best)
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    tied = "; ".join(f"{s} {cost(s)} a customer ({band(s)}{won(s)} customers{span})" for s in names)
    text = (
        f"Decision: with {words}, {listed} are statistically tied on CAC: {tied}; "
        "choose between them on LTV/CAC and burnout below"
    )
    return text + (f". {against[:1].upper() + against[1:]}." if against else ".")


def across_headline(
    across: AcrossComparison, own_level: Any, window_days: float | None = None
) -> dict[str, Any]:
    """The headline of the team-size view: the decision, where the answer changes, details.

    ``own_level`` is the level the scenarios themselves set (their own team size); the
    decision is made there, and the paragraph on it explains the largest CAC gap by
    capacity when capacity is the cause. ``window_days`` (the days whose leads are
    counted) lets the decision say over what time the customers come.
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
    decision = decision_sentence(across, own_level, window_days) if own is not None else ""
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
        "verdict": decision,
        "conclusion": " ".join([decision, *sentences]) if decision else " ".join(sentences),
        "summary": summary,
    }


def scenario_headline(
    name: str,
    summary: pd.DataFrame,
    replications: int,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The headline numbers of one scenario: every KPI's mean and interval, and the verdict.

    ``provenance`` (:meth:`Provenance.to_dict`) is stored as it is; its horizon and
    warm-up let the verdict say over how many days the customers were counted.
    """
    kpis = {
        kpi: {k: _clean(row[k]) for k in ("mean", "ci_low", "ci_high", "rel_half_width")}
        for kpi, row in summary.iterrows()
    }
    flat = {
        k: kpis[k]["mean"]
        for k in (
            "cac",
            "customers",
            "revenue",
            "burnout_index",
            "median_response_hours",
            "ltv_to_cac",
            "cac_payback_months",
        )
        if k in kpis
    }
    facts: dict[str, Any] = {
        "kind": "scenario",
        "scenario": name,
        "replications": replications,
        "kpis": kpis,
        "summary": flat,
    }
    if provenance is not None:
        facts["provenance"] = provenance
    facts["verdict"] = scenario_sentence(facts)
    facts["conclusion"] = facts["verdict"]
    return facts


def _interval(
    kpi: str, entry: dict[str, Any] | None, spec: str, prefix: str = "", unit: str = ""
) -> str:
    """``$3,514 each (95% CI $3,300 to $3,700)``; the mean alone without an interval."""
    entry = entry or {}
    mean = format_kpi(kpi, entry.get("mean"), spec, prefix)
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if mean.startswith("undefined"):
        return mean
    mean += unit
    if (
        low is None
        or high is None
        or not (math.isfinite(float(low)) and math.isfinite(float(high)))
    ):
        return mean
    if float(low) == float(high):
        return f"{mean} (the same in every replication)"
    return f"{mean} (95% CI {prefix}{float(low):{spec}} to {prefix}{float(high):{spec}})"


def scenario_sentence(facts: dict[str, Any]) -> str:
    """The verdict of a scenario report, from :func:`scenario_headline`'s numbers.

    What the scenario wins and at what cost, each with its interval; whether it pays
    back; and how hard it works the team. An undefined KPI reads ``undefined (...)``.
    """
    kpis = facts.get("kpis") or {k: {"mean": v} for k, v in facts.get("summary", {}).items()}
    name = facts["scenario"]
    prov = facts.get("provenance") or {}
    window = ""
    if "horizon_days" in prov:
        window = f" in {prov['horizon_days'] - prov.get('warmup_days', 0):,.0f} days"
    customers = _interval("customers", kpis.get("customers"), ",.0f", unit=" customers")
    cac = _interval("cac", kpis.get("cac"), ",.0f", "$", unit=" each")
    if cac.startswith("undefined"):
        sentences = [f"{name} wins {customers}{window}, so its CAC is {cac}."]
    else:
        sentences = [f"{name} wins {customers}{window}, at {cac}."]
    ratio = kpis.get("ltv_to_cac")
    if ratio and ratio.get("mean") is not None:
        months = (kpis.get("cac_payback_months") or {}).get("mean")

        def number(x: Any) -> float:
            return math.nan if x is None else float(x)

        sentences.append(
            payback_words(
                "It",
                number(ratio.get("mean")),
                number(ratio.get("ci_low")),
                number(ratio.get("ci_high")),
                number(months),
            )
        )
    team = []
    util = (kpis.get("rep_utilization") or {}).get("mean")
    if util is not None:
        team.append(f"its reps are {float(util):.0%} busy")
    burnout = format_kpi("burnout_index", (kpis.get("burnout_index") or {}).get("mean"), ".2f")
    team.append(f"their burnout index is {burnout} (0: rested, 1: exhausted)")
    stale = (kpis.get("stale_share") or {}).get("mean")
    if stale is not None and float(stale) >= 0.005:
        team.append(f"{float(stale):.0%} of leads go stale before anyone calls them")
    text = "; ".join(team)
    sentences.append(text[:1].upper() + text[1:] + ".")
    sentences.append(f"(Means of {facts['replications']} replications.)")
    return " ".join(sentences)


def _point_words(row: pd.Series, parameters: list[str]) -> str:
    from simfunnel.formatting import format_number, parameter_kind, parameter_label

    parts = []
    for path in parameters:
        value = row[path]
        shown = (
            format_number(value, parameter_kind(path))
            if isinstance(value, int | float) and not isinstance(value, bool)
            else str(value)
        )
        parts.append(f"{parameter_label(path)} = {shown}")
    return ", ".join(parts)


def point_interval(row: pd.Series, kpi: str, confidence: float = 0.95) -> tuple[float, float]:
    """Student's t interval of a sweep point's mean, from its standard error and ``n_ok``.

    Cut to the values the KPI can take (:func:`~simfunnel.metrics.kpi_bounds`): a
    point's burnout interval does not reach below 0.
    """
    from scipy import stats

    from simfunnel.metrics import kpi_bounds

    mean, sem, n = float(row[kpi]), float(row.get(f"{kpi}_sem", math.nan)), int(row["n_ok"])
    if n < 2 or not math.isfinite(sem):
        return math.nan, math.nan
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    floor, ceiling = kpi_bounds(kpi)
    return max(mean - t * sem, floor), min(mean + t * sem, ceiling)


def sweep_sentence(
    means: pd.DataFrame,
    best: pd.DataFrame,
    parameters: list[str],
    objective: str,
    minimize: bool,
    rule: str,
    meeting: int | None = None,
) -> str:
    """The verdict of a sweep: the best point under the constraints, with its interval.

    ``best`` may be cut to the top few points; ``meeting`` is how many of ``means``
    meet the constraints (by default ``len(best)``, right only when ``best`` is whole).
    """
    from simfunnel.formatting import format_interval, format_number, kpi_kind, kpi_label

    word = "lowest" if minimize else "highest"
    label = kpi_label(objective)
    if best.empty:
        return (
            f"No point of the {len(means)} swept meets {rule}: relax the constraints or "
            "sweep other values."
        )
    row = best.iloc[0]
    kind = kpi_kind(objective)
    low, high = point_interval(row, objective)
    band = (
        f" (all {int(row['n_ok'])} replications {format_number(low, kind)})"
        if math.isfinite(low) and low == high
        else f" (95% CI {format_interval(low, high, kind)}, {int(row['n_ok'])} replications)"
        if math.isfinite(low)
        else f" ({int(row['n_ok'])} replication{'s' if int(row['n_ok']) != 1 else ''}, no interval)"
    )
    value = format_number(row[objective], kind, statistic=True)
    text = (
        f"Best under {rule}: {_point_words(row, parameters)} gives the {word} "
        f"{label}, {value}{band}; {len(best) if meeting is None else meeting} of {len(means)} "
        "points meet the constraints."
    )
    if "ltv_to_cac" in row.index and math.isfinite(float(row["ltv_to_cac"])):
        low, high = point_interval(row, "ltv_to_cac")
        months = float(row.get("cac_payback_months", math.nan))
        text += " " + payback_words(
            "That point", float(row["ltv_to_cac"]), low, high, months
        ).replace("its customers", "the customers")
    return text


def sweep_bound_warnings(
    spec: SweepSpec, best: pd.DataFrame, front: pd.DataFrame | None = None
) -> list[str]:
    """Where the best point, or most of the Pareto front, sits at an end of a swept range.

    The optimum (or the best trade-offs) may then lie outside what was swept, and the
    range should be widened. Only numeric ranges or levels are checked.
    """
    from simfunnel.formatting import format_number, parameter_kind, parameter_label

    warnings = []
    row = best.iloc[0] if not best.empty else None
    for p in spec.parameters:
        if not p.is_numeric:
            continue
        values = [float(v) for v in (p.range if p.range is not None else p.levels or ())]
        low, high = min(values), max(values)
        label = parameter_label(p.path)
        if row is not None:
            value = float(row[p.path])
            end = "lowest" if value <= low else "highest" if value >= high else ""
            if end:
                shown = format_number(value, parameter_kind(p.path))
                warnings.append(
                    f"The best point sits at the {end} value swept of {label} "
                    f"({shown}): the optimum may lie beyond the range; widen it to be sure."
                )
        if front is not None and len(front) >= 2:
            at = front[p.path].astype(float)
            for end, edge in (("lowest", low), ("highest", high)):
                count = int((at == edge).sum())
                if count > len(front) / 2:
                    shown = format_number(edge, parameter_kind(p.path))
                    warnings.append(
                        f"{count} of the {len(front)} Pareto points sit at the {end} value "
                        f"swept of {label} ({shown}): better trade-offs may lie beyond it."
                    )
    return warnings


def sweep_headline(
    spec: dict[str, Any],
    means: pd.DataFrame,
    best: pd.DataFrame,
    front: pd.DataFrame,
    sensitivity: pd.DataFrame,
    objective: str,
    constraints: Any,
    minimize: bool = True,
    warnings: list[str] | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The headline numbers of a sweep: the verdict, best points, Pareto front, sensitivity."""

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {str(k): _clean(v) for k, v in row.items()}
            for row in frame.reset_index().to_dict(orient="records")
        ]

    summary: dict[str, Any] = {"points": len(means), "pareto_points": len(front)}
    if len(best):
        summary[f"best {objective}"] = _clean(best[objective].iloc[0])
    from simfunnel.experiments.analysis import best_points, describe_constraints

    parameters = [p["path"] for p in spec.get("parameters", [])]
    # counted over every point, not over ``best``, which is cut to the top few
    meeting = len(
        best_points(means, objective, minimize=minimize, constraints=constraints, top=len(means))
    )
    summary["points meeting the constraints"] = meeting
    verdict = sweep_sentence(
        means, best, parameters, objective, minimize, human_rule(constraints), meeting
    )
    out: dict[str, Any] = {
        "kind": "parameter_sweep",
        "verdict": verdict,
        "conclusion": " ".join([verdict, *(warnings or [])]),
        "warnings": list(warnings or []),
        "spec": spec,
        "objective": objective,
        "constraints": describe_constraints(constraints),
        "points": len(means),
        "points_meeting_constraints": meeting,
        "best": records(best),
        "pareto_front": records(front),
        "sensitivity": records(sensitivity),
        "summary": summary,
    }
    if provenance is not None:
        out["provenance"] = provenance
    return out


def human_rule(constraints: Any) -> str:
    """Constraints in words: ``burnout index (0-1) at most 0.500``, or ``no constraint``."""
    from simfunnel.experiments.analysis import constraint_list
    from simfunnel.formatting import format_number, kpi_kind, kpi_label

    words = {"<=": "at most", ">=": "at least", "<": "below", ">": "above"}
    parts = [
        f"{kpi_label(k)[:1].lower() + kpi_label(k)[1:]} {words.get(op, op)} "
        f"{format_number(v, kpi_kind(k))}"
        for k, op, v in constraint_list(constraints)
    ]
    return " and ".join(parts) or "no constraint"


# One-sentence takeaways, one per figure, written from the data the figure draws.


def funnel_takeaway(funnel: pd.DataFrame) -> str:
    """Where the funnel loses most leads, and which source converts best and worst."""
    from simfunnel.reporting.plots import stage_rates

    stages = ["leads", "contacted", "qualified", "opportunities", "won"]
    totals = [float(funnel[s].sum()) for s in stages]
    rates = stage_rates(totals)
    step = min(range(1, len(stages)), key=lambda k: rates[k] if math.isfinite(rates[k]) else 2)
    share = funnel["won"] / funnel["leads"].where(funnel["leads"] > 0)
    text = (
        f"Of {totals[0]:,.0f} leads, {_pct(totals[-1] / totals[0] if totals[0] else 0)} "
        f"were won; the narrowest step is {stages[step - 1]} to {stages[step]} "
        f"({rates[step]:.0%} get through)"
    )
    if share.notna().sum() >= 2:
        hi, lo = str(share.idxmax()), str(share.idxmin())
        text += (
            f"; {hi} converts best ({share[hi]:.1%} of its leads won), {lo} worst ({share[lo]:.1%})"
        )
    return text + "."


def response_takeaway(bins: pd.DataFrame) -> str:
    """How fast leads got a first attempt, and how many never did (from ``response_bins``)."""
    from simfunnel.reporting.plots import NEVER_WORKED

    per_bin = bins.sum(axis=1)
    total = float(per_bin.sum())
    if not total:
        return "No lead arrived."
    within_hour = float(per_bin.iloc[:3].sum()) / total
    within_day = float(per_bin.iloc[:5].sum()) / total
    never = float(per_bin.get(NEVER_WORKED, 0)) / total
    return (
        f"{within_hour:.0%} of leads got a first attempt within an hour and {within_day:.0%} "
        f"within a day; {never:.0%} were never attempted (gone stale or still waiting)."
    )


def reps_takeaway(reps: pd.DataFrame) -> str:
    """The team's mean utilisation, how fatigue moved, and how many reps quit."""
    team = reps.groupby("week").agg(
        utilization=("utilization", "mean"), fatigue=("fatigue", "mean")
    )
    if team.empty:
        return "No rep worked."
    quits = int(reps["quit"].sum())
    return (
        f"The team was {team['utilization'].mean():.0%} busy on average; mean fatigue went "
        f"from {team['fatigue'].iloc[0]:.2f} in the first week to {team['fatigue'].iloc[-1]:.2f} "
        f"in the last (0 to 1); {quits} rep{'s' if quits != 1 else ''} quit."
    )


def cost_takeaway(costs: pd.DataFrame) -> str:
    """Which source's customers cost most and least, and by how much."""
    cac = costs["cac"].astype(float)
    finite = cac[np.isfinite(cac)]
    if finite.empty:
        return "No source won a customer, so no CAC is defined."
    hi, lo = str(finite.idxmax()), str(finite.idxmin())
    text = f"A customer costs {_money(finite[lo])} from {lo}"
    if hi != lo:
        text += f" and {_money(finite[hi])} from {hi} ({finite[hi] / finite[lo]:.1f}x as much)"
        cpl = costs["cpl"].astype(float)
        if cpl[hi] < cpl[lo]:
            text += (
                f", although {hi}'s leads are the cheaper ({_money(cpl[hi])} against "
                f"{_money(cpl[lo])} a lead)"
            )
    missing = [str(s) for s in cac.index if not np.isfinite(cac[s])]
    if missing:
        text += f"; {', '.join(missing)} won no customer"
    return text + "."


def heatmap_takeaway(means: pd.DataFrame, x: str, y: str, kpi: str, parameters: Any = None) -> str:
    """The best and worst cells of a heatmap, by their parameters (and what they average)."""
    from simfunnel.formatting import (
        format_number,
        kpi_kind,
        kpi_label,
        parameter_kind,
        parameter_label,
    )
    from simfunnel.metrics import higher_is_better
    from simfunnel.reporting.plots import averaging_note

    grid = means.pivot_table(index=y, columns=x, values=kpi, aggfunc="mean").stack()
    grid = grid[np.isfinite(grid.astype(float))]
    if grid.empty:
        return f"{kpi_label(kpi)} is undefined everywhere."
    good = higher_is_better(kpi)
    best = grid.idxmax() if good else grid.idxmin()
    worst = grid.idxmin() if good else grid.idxmax()
    kind = kpi_kind(kpi)

    def where(cell: tuple[Any, Any]) -> str:
        def shown(path: str, value: Any) -> str:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return format_number(value, parameter_kind(path))
            return str(value)

        return (
            f"{parameter_label(x)} {shown(x, cell[1])} and {parameter_label(y)} {shown(y, cell[0])}"
        )

    note = averaging_note(means, x, y, parameters)
    return (
        f"Best {kpi_label(kpi)}: {format_number(grid[best], kind, statistic=True)} at "
        f"{where(best)}; worst {format_number(grid[worst], kind, statistic=True)} at "
        f"{where(worst)}" + (f" ({note})." if note else ".")
    )


def sensitivity_takeaway(table: pd.DataFrame, kpi: str) -> str:
    """The parameter that moves a KPI most (by the table's own index)."""
    from simfunnel.formatting import kpi_label, parameter_label

    rows = table[table["kpi"] == kpi]
    column = next((c for c in ("ST", "mu_star", "spearman") if c in rows.columns), None)
    if rows.empty or column is None or rows[column].abs().isna().all():
        return f"No sensitivity of {kpi_label(kpi)} could be estimated."
    top = rows.loc[rows[column].abs().idxmax()]
    name = {"ST": "total-order Sobol index", "mu_star": "Morris mu*", "spearman": "Spearman"}
    return (
        f"{kpi_label(kpi)} moves most with {parameter_label(str(top['parameter']))} "
        f"({name[column]} {float(top[column]):.2f})."
    )


def pareto_takeaway(means: pd.DataFrame, front: pd.DataFrame) -> str:
    """How many points are on the front, and its range of CAC."""
    if front.empty:
        return "No point is on the Pareto front."
    return (
        f"{len(front)} of {len(means)} points are on the Pareto front (none can gain on "
        f"revenue, CAC or burnout without losing on another); their CAC runs from "
        f"{_money(float(front['cac'].min()))} to {_money(float(front['cac'].max()))}."
    )


def across_load_takeaway(table: pd.DataFrame) -> str:
    """How busy the busiest strategy keeps the smallest and the largest team.

    ``table`` is :meth:`AcrossComparison.table` with ``rep_utilization`` and
    ``burnout_index``.
    """
    levels = list(dict.fromkeys(table.index.get_level_values(0)))
    util = table.xs("rep_utilization", level="kpi")["mean"].astype(float)
    burnout = table.xs("burnout_index", level="kpi")["mean"].astype(float)
    parts = []
    for level in dict.fromkeys((levels[0], levels[-1])):
        at = util.xs(level, level=0)
        name = str(at.idxmax())
        parts.append(
            f"with {level} reps, {name} keeps them {at[name]:.0%} busy (burnout "
            f"{burnout.loc[(level, name)]:.2f})"
        )
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "; above about 85% for weeks, fatigue builds."


def best_of_takeaway(table: pd.DataFrame, kpis: list[str] | tuple[str, ...]) -> str:
    """For each KPI of a ``Comparison.table()``, which strategy does best, with its mean."""
    from simfunnel.formatting import format_number, kpi_kind, kpi_label
    from simfunnel.metrics import higher_is_better

    parts = []
    for kpi in kpis:
        means = table.loc[kpi]["mean"].astype(float).dropna()
        if means.empty:
            continue
        name = str(means.idxmax() if higher_is_better(kpi) else means.idxmin())
        value = format_number(means[name], kpi_kind(kpi), statistic=True)
        parts.append(f"{kpi_label(kpi)}: {name} ({value})")
    return "Best on " + "; ".join(parts) + "." if parts else "No KPI is defined."


def write_headline(headline: dict[str, Any], path: str | Path) -> Path:
    """Write headline numbers as JSON (NaN as null), atomically."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(headline, indent=2, default=_clean, allow_nan=False)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out)  # whole or not at all: never a half-written file
    return out

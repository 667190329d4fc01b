"""Headline numbers of a report, and the sentences written from them.

Each notebook ends by writing a JSON file of its headline numbers: a ``summary`` of
flat name -> number pairs (what a batch index tabulates) and the details behind it.
Conclusions are composed from the numbers, never written by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from simfunnel.experiments.comparison import Comparison, excludes_zero

#: The KPIs the strategy comparison leads with, and how to speak of them.
HEADLINE = (("cac", "CAC"), ("burnout_index", "burnout"), ("revenue", "revenue"))


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
            f"Lowest CAC: {best} (${cac[best]:,.0f} per customer, mean of "
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
    """Write headline numbers as JSON (NaN as null)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(headline, indent=2, default=_clean, allow_nan=False))
    return out

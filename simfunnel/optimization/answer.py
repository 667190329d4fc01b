"""The answer in words: the decision first, numbers formatted for people, and warnings.

Pure functions of a :class:`~simfunnel.optimization.select.Choice` and its spec; the
verdict and the sentence that leads with it are :mod:`simfunnel.optimization.verdict`'s.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from simfunnel.formatting import parameter_label
from simfunnel.metrics import KPI_DOCS
from simfunnel.optimization.spec import OptimizeSpec, base_scenario, budget_path

_LABELS = {
    "cac": "CAC",
    "cpl": "CPL",
    "ltv": "LTV",
    "ltv_to_cac": "LTV/CAC",
    "cac_payback_months": "CAC payback",
    "burnout_index": "Burnout",
    "reps_quit": "Reps quitting",
}


def kpi_label(kpi: str) -> str:
    """A KPI's name for a sentence: ``CAC``, ``Burnout``, ``Stale share``."""
    text = _LABELS.get(kpi, kpi.replace("_", " "))
    return text[0].upper() + text[1:]


def _unit(kpi: str) -> str:
    doc = KPI_DOCS.get(kpi, "")
    return doc[doc.rfind("(") + 1 : doc.rfind(")")] if "(" in doc else ""


def money(value: float) -> str:
    """Dollars for people: three significant figures, thousands separated (``$24,100``)."""
    if not math.isfinite(value):
        return "-"
    if value == 0:
        return "$0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1000:
        digits = math.floor(math.log10(value)) + 1
        value = round(value, 3 - digits)
        return f"{sign}${value:,.0f}"
    return f"{sign}${value:,.0f}" if value >= 10 else f"{sign}${value:,.2f}"


def number(value: float) -> str:
    """A plain number for people: thousands separated, or two or three significant figures."""
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 1000:
        return money(value).replace("$", "")
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def percent(share: float, signed: bool = False) -> str:
    """``19%`` (or ``+19%``), from a share."""
    if not math.isfinite(share):
        return "-"
    text = f"{100 * share:+.0f}%" if signed else f"{100 * share:.0f}%"
    return text if abs(share) >= 0.005 or not signed else f"{100 * share:+.1f}%"


def kpi_value(kpi: str, value: float) -> str:
    """A KPI value in its unit: dollars, shares as percentages, hours, counts."""
    unit = _unit(kpi)
    if unit.startswith("USD"):
        return money(value)
    if unit.startswith("share"):
        return f"{100 * value:.1f}%" if math.isfinite(value) else "-"
    if unit.startswith("hours"):
        return f"{number(value)} h"
    if kpi == "burnout_index":
        return f"{value:.2f}" if math.isfinite(value) else "-"
    return number(value)


def kpi_interval(kpi: str, low: float, high: float) -> str:
    """``$22,900-25,400``, ``0.25-0.31``."""
    a, b = kpi_value(kpi, low), kpi_value(kpi, high)
    if a.startswith("$") and b.startswith("$"):
        b = b[1:]
    return f"{a}-{b}"


def constraint_words(spec: OptimizeSpec) -> str:
    """The constraints in words: ``Burnout at most 0.35 and CAC at most $20,000``."""
    words = {"<=": "at most", ">=": "at least", "<": "below", ">": "above"}
    return _join(
        [
            f"{kpi_label(c.kpi)} {words.get(c.op, c.op)} {kpi_value(c.kpi, c.value)}"
            for c in spec.constraint_list()
        ]
    )


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def describe_decision(spec: OptimizeSpec, decision: dict[str, Any]) -> str:
    """``Put $13,500 a week in referral, ... and nothing in paid social, with 14 reps``."""
    clauses = []
    if spec.budget is not None:
        amounts = sorted(
            ((decision[budget_path(s)], s) for s in spec.budget.sources),
            key=lambda pair: -float(pair[0]),
        )
        parts = []
        for k, (amount, source) in enumerate(amounts):
            name = source.replace("_", " ")
            if float(amount) <= 0:
                parts.append(f"nothing in {name}")
            else:
                parts.append(f"{money(float(amount))}{' a week' if k == 0 else ''} in {name}")
        clauses.append("Put " + _join(parts))
    others = []
    for p in spec.parameters:
        value = decision[p.path]
        if p.path == "team.reps":
            others.append(f"{value} reps")
        else:
            shown = (
                number(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else str(value)
            )
            others.append(f"{parameter_label(p.path)} = {shown}")
    if clauses and others:
        return f"{clauses[0]}, with {_join(others)}"
    if clauses:
        return clauses[0]
    return "Set " + _join(others)


def bound_warnings(spec: OptimizeSpec, decision: dict[str, Any]) -> list[str]:
    """Where the chosen decision sits on a bound of the search space, say so."""
    warnings = []
    for p in spec.parameters:
        if p.range is None:
            continue
        value = float(decision[p.path])
        low, high = float(p.range[0]), float(p.range[1])
        tolerance = 0.01 * (high - low)
        if value >= high - tolerance:
            warnings.append(
                f"{parameter_label(p.path)} at the maximum of {number(high)}: widen the range"
            )
        elif value <= low + tolerance:
            warnings.append(
                f"{parameter_label(p.path)} at the minimum of {number(low)}: widen the range"
            )
    if spec.budget is not None:
        lows, highs = spec.budget.dollar_bounds()
        shares_lo, shares_hi = spec.budget.bounds()
        for k, source in enumerate(spec.budget.sources):
            amount = float(decision[budget_path(source)])
            if shares_hi[k] < 1 and amount >= highs[k]:
                warnings.append(
                    f"{source.replace('_', ' ')} at its maximum share of {percent(shares_hi[k])}: "
                    "raise budget.max_share"
                )
            elif shares_lo[k] > 0 and amount <= lows[k]:
                warnings.append(
                    f"{source.replace('_', ' ')} at its minimum share of {percent(shares_lo[k])}: "
                    "lower budget.min_share"
                )
    return warnings


def common_feature(spec: OptimizeSpec, decisions: list[dict[str, Any]]) -> str:
    """What every tied mix shares: the source they all fund most heavily."""
    if spec.budget is None or len(decisions) < 2:
        return ""
    total = float(spec.budget.total_per_week_usd)
    floors = {
        s: min(float(d[budget_path(s)]) for d in decisions) / total for s in spec.budget.sources
    }
    source, share = max(floors.items(), key=lambda kv: kv[1])
    if share < 0.2:
        return ""
    floor = math.floor(share * 20) / 20  # a round 5% step below the smallest share
    return f"all of them keep {source.replace('_', ' ')} at {percent(floor)} or more"


def current_summary(spec: OptimizeSpec) -> str:
    """``the current split: $8,000 in referral ...`` (for reports)."""
    base = base_scenario(spec)
    if spec.budget is None:
        return ""
    amounts = [
        f"{money(float(base.sources[base.source_names.index(s)].budget_per_week_usd or 0))} "
        f"in {s.replace('_', ' ')}"
        for s in spec.budget.sources
    ]
    return "the current split: " + _join(amounts)


def clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities as null, numpy scalars as Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def table_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready records."""
    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]

"""Tables for people: human labels, units, percentages, thousands separators.

Each function takes the library's tidy frame and returns a small frame of text,
formatted through :mod:`simfunnel.formatting` (the command line's formats), for a
notebook to show. No raw identifiers as labels, no scientific notation, and the
baseline's own rows read ``baseline`` rather than zero differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from simfunnel.formatting import (
    NEAR_ZERO_NOTE,
    format_change,
    format_change_interval,
    format_difference,
    format_difference_interval,
    format_interval,
    format_number,
    kpi_kind,
    kpi_label,
    parameter_kind,
    parameter_label,
)
from simfunnel.reporting.plots import stage_rates

_STAGES = (
    ("leads", "Leads"),
    ("contacted", "Contacted"),
    ("qualified", "Qualified"),
    ("opportunities", "Opportunities"),
    ("won", "Won"),
)


def _headed(table: pd.DataFrame, heading: str | None = None) -> pd.DataFrame:
    """The index's name moved onto the heading row, so a table has one row of headings."""
    heading = heading if heading is not None else str(table.index.name or "")
    table.index.name = None
    table.columns.name = heading
    return table


def kpi_table(summary: pd.DataFrame, kpis: Sequence[str]) -> pd.DataFrame:
    """Mean and 95% interval of each KPI, from :func:`simfunnel.summarize`."""
    rows = []
    for kpi in kpis:
        if kpi not in summary.index:
            continue
        row = summary.loc[kpi]
        kind = kpi_kind(kpi)
        rows.append(
            {
                "KPI": kpi_label(kpi),
                "mean": format_number(row["mean"], kind, statistic=True),
                "95% interval": format_interval(row["ci_low"], row["ci_high"], kind),
            }
        )
    return _headed(pd.DataFrame(rows).set_index("KPI"))


def funnel_table(funnel: pd.DataFrame) -> pd.DataFrame:
    """Leads at each stage by source, each with the share of the previous stage."""
    rows = {}
    for source, row in funnel.iterrows():
        counts = [float(row[key]) for key, _ in _STAGES]
        rates = stage_rates(counts)
        cells = {"Leads": f"{counts[0]:,.0f}"}
        for (_, label), count, rate in zip(_STAGES[1:], counts[1:], rates[1:], strict=True):
            cells[label] = f"{count:,.0f} ({format_number(rate, 'share')})"
        cells["Lead to won"] = format_number(row.get("lead_to_won"), "share")
        rows[str(source)] = cells
    return _headed(pd.DataFrame.from_dict(rows, orient="index"), "source")


def costs_table(costs: pd.DataFrame) -> pd.DataFrame:
    """What each source costs and brings: leads, customers, CPL, CAC, LTV, LTV/CAC."""
    columns = [
        ("leads", "Leads", "count"),
        ("customers", "Customers", "count"),
        ("cpl", "Cost per lead", "usd"),
        ("total_cost", "Cost (all)", "usd"),
        ("cac", "CAC", "usd"),
        ("ltv", "LTV", "usd"),
        ("ltv_to_cac", "LTV/CAC", "ratio"),
        ("rep_time_share", "Share of rep time", "share"),
    ]
    table = pd.DataFrame(
        {
            label: [format_number(v, kind) for v in costs[key]]
            for key, label, kind in columns
            if key in costs
        },
        index=costs.index.astype(str),
    )
    return _headed(table, "source")


def comparison_table(table: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """A strategy comparison (``Comparison.table()``) for people.

    Mean with its interval, the change against the baseline with its paired interval,
    and whether the change is significant; the baseline's rows read ``baseline``.
    """
    rows = []
    for (kpi, name), row in table.iterrows():
        kind = kpi_kind(str(kpi))
        out = {
            "KPI": kpi_label(str(kpi)),
            "strategy": str(name),
            "mean": format_number(row["mean"], kind, statistic=True),
            "95% interval": format_interval(row["ci_low"], row["ci_high"], kind),
        }
        if name == baseline:
            out |= {"change vs baseline": "baseline", "95% interval of the change": "", "": ""}
        elif bool(row.get("baseline_near_zero", False)):
            # a percentage of a baseline near 0 says nothing: the difference instead
            out |= {
                "change vs baseline": f"{format_difference(row['diff'], kind)} ({NEAR_ZERO_NOTE})",
                "95% interval of the change": format_difference_interval(
                    row["diff_low"], row["diff_high"], kind
                ),
                "": "significant" if bool(row["significant"]) else "not significant",
            }
        else:
            significant = bool(row["significant"])
            out |= {
                "change vs baseline": format_change(row["rel_change"]),
                "95% interval of the change": format_change_interval(
                    row["rel_low"], row["rel_high"]
                ),
                "": "significant" if significant else "not significant",
            }
        rows.append(out)
    return pd.DataFrame(rows).set_index(["KPI", "strategy"])


def sweep_table(
    means: pd.DataFrame, parameters: Sequence[str], kpis: Sequence[str]
) -> pd.DataFrame:
    """Sweep points: parameters and KPI means, labelled and formatted."""
    out = pd.DataFrame(index=means.index)
    for path in parameters:
        kind = parameter_kind(path)
        out[parameter_label(path)] = [
            format_number(v, kind) if isinstance(v, int | float) else str(v) for v in means[path]
        ]
    for kpi in kpis:
        if kpi in means:
            out[kpi_label(kpi)] = [
                format_number(v, kpi_kind(kpi), statistic=True) for v in means[kpi]
            ]
    return _headed(out, "point")


def sensitivity_table(table: pd.DataFrame) -> pd.DataFrame:
    """A sensitivity table (``simfunnel.sensitivity``) with labels, indices to 2 decimals."""
    out = pd.DataFrame(
        {
            "KPI": [kpi_label(str(k)) for k in table["kpi"]],
            "setting": [parameter_label(str(p)) for p in table["parameter"]],
        }
    )
    names = {
        "S1": "first-order Sobol S1",
        "ST": "total-order Sobol ST",
        "mu_star": "Morris mu*",
        "sigma": "Morris sigma",
        "spearman": "Spearman",
        "p_value": "p-value",
    }
    for column, label in names.items():
        if column in table:
            out[label] = [format_number(v, "ratio") for v in table[column]]
    return out.set_index(["KPI", "setting"])


def across_table(table: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """One KPI across the varied parameter (rows) and strategies (columns), with intervals.

    ``table`` is :meth:`AcrossComparison.table` (indexed by level, KPI and strategy).
    """
    parameter = str(table.index.names[0])
    rows = table.xs(kpi, level="kpi")
    kind = kpi_kind(kpi)
    out: dict[str, dict[str, str]] = {}
    for (level, name), row in rows.iterrows():
        words = f"{level} reps" if parameter == "team.reps" else f"{parameter} = {level}"
        mean = format_number(row["mean"], kind, statistic=True)
        band = format_interval(row["ci_low"], row["ci_high"], kind)
        out.setdefault(words, {})[str(name)] = f"{mean} ({band})" if band != "-" else mean
    return _headed(pd.DataFrame.from_dict(out, orient="index"), kpi_label(kpi))

"""Figures for notebooks and reports. Each takes DataFrames and returns a Figure.

Every figure has a title and axes labelled with units; strategies and sources keep
their colours (:mod:`simfunnel.reporting.colors`) across every figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simfunnel.metrics import KPI_DOCS
from simfunnel.reporting.colors import source_color, strategy_color

_STAGES = ("leads", "contacted", "qualified", "opportunities", "won")


def _figure(
    figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: Any
) -> tuple[Figure, Any]:
    """A figure outside pyplot's global state: shown only when a notebook shows it."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


@FuncFormatter
def _plain_numbers(value: float, _pos: int) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def kpi_label(kpi: str) -> str:
    """An axis label for a KPI, with its unit from :data:`KPI_DOCS`."""
    doc = KPI_DOCS.get(kpi, "")
    unit = doc[doc.rfind("(") + 1 : doc.rfind(")")].split(";")[0] if "(" in doc else ""
    return f"{kpi.replace('_', ' ')} ({unit})" if unit else kpi.replace("_", " ")


def funnel_chart(funnel: pd.DataFrame, title: str = "Funnel by source") -> Figure:
    """Counts at each stage, by source (log scale), from ``result.funnel()``."""
    fig, ax = _figure((8, 4.2))
    width = 0.8 / max(1, len(funnel))
    x = np.arange(len(_STAGES))
    for k, (source, row) in enumerate(funnel.iterrows()):
        counts = [max(float(row[s]), 0.5) for s in _STAGES]
        ax.bar(x + k * width, counts, width, label=str(source), color=source_color(str(source)))
    ax.set_yscale("log")
    ax.set_xticks(x + width * (len(funnel) - 1) / 2, [s.capitalize() for s in _STAGES])
    ax.set_xlabel("funnel stage")
    ax.set_ylabel("leads reaching the stage (count, log scale)")
    ax.set_title(title)
    ax.legend(title="source", fontsize=8)
    fig.tight_layout()
    return fig


def response_time_chart(leads: pd.DataFrame, title: str = "Speed to lead") -> Figure:
    """Distribution of the delay to the first attempt, by source (log-spaced bins)."""
    fig, ax = _figure((8, 4))
    delays = leads[leads["first_response_hours"].notna()]
    positive = delays["first_response_hours"].clip(lower=1 / 60)
    bins = np.logspace(np.log10(1 / 60), np.log10(max(2.0, float(positive.max()))), 30)
    for source, group in delays.groupby("source", observed=True):
        ax.hist(
            group["first_response_hours"].clip(lower=1 / 60),
            bins=bins,
            histtype="step",
            linewidth=1.8,
            label=str(source),
            color=source_color(str(source)),
        )
    ax.set_xscale("log")
    ax.set_xlabel("delay from arrival to first attempt (hours, log scale)")
    ax.set_ylabel("leads (count)")
    ax.set_title(title)
    ax.legend(title="source", fontsize=8)
    fig.tight_layout()
    return fig


def rep_timeline(reps: pd.DataFrame, title: str = "Reps over time") -> Figure:
    """Weekly utilisation and fatigue of each rep (thin) and the team (thick); quits marked."""
    fig, (top, bottom) = _figure((8, 5.5), 2, 1, sharex=True)
    for _, group in reps.groupby("rep"):
        top.plot(group["week"], group["utilization"], color="0.75", linewidth=0.6)
        bottom.plot(group["week"], group["fatigue"], color="0.75", linewidth=0.6)
    team = reps.groupby("week").agg(
        utilization=("utilization", "mean"), fatigue=("fatigue", "mean")
    )
    top.plot(team.index, team["utilization"], color="black", linewidth=2, label="team mean")
    bottom.plot(team.index, team["fatigue"], color="#d62728", linewidth=2, label="team mean")
    quits = reps[reps["quit"]]
    if len(quits):
        bottom.scatter(
            quits["week"],
            quits["fatigue"],
            marker="x",
            color="black",
            zorder=3,
            label=f"quit ({len(quits)})",
        )
    top.set_ylabel("utilisation (share of paid hours)")
    bottom.set_ylabel("fatigue (0 to 1)")
    bottom.set_xlabel("week of the run")
    top.set_title(title)
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cost_breakdown(costs: pd.DataFrame, title: str = "What makes up CAC") -> Figure:
    """Cost per customer by source, split into marketing, sales, nurture and hiring."""
    fig, ax = _figure((8, 4))
    parts = ["marketing_spend", "sales_cost", "nurture_cost", "hiring_cost"]
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    customers = costs["customers"].where(costs["customers"] > 0)
    bottom = np.zeros(len(costs))
    for part, color in zip(parts, colors, strict=True):
        per_customer = (costs[part] / customers).fillna(0).to_numpy()
        ax.bar(
            costs.index.astype(str),
            per_customer,
            bottom=bottom,
            color=color,
            label=part.replace("_", " "),
        )
        bottom += per_customer
    for k, (source, row) in enumerate(costs.iterrows()):
        text = f"${row['cac']:,.0f}" if np.isfinite(row["cac"]) else "no customers"
        ax.annotate(text, (k, bottom[k]), ha="center", va="bottom", fontsize=8)
        ax.get_xticklabels()[k].set_color(source_color(str(source)))
    ax.set_ylabel("cost per customer (USD)")
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_xlabel("source")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def kpi_intervals(
    table: pd.DataFrame,
    kpis: list[str] | tuple[str, ...],
    title: str = "KPIs with 95% confidence intervals",
) -> Figure:
    """Mean and interval of each KPI for each strategy, from ``Comparison.table()``."""
    fig, axes = _figure((4 * len(kpis), 3.8), 1, len(kpis), squeeze=False)
    for ax, kpi in zip(axes[0], kpis, strict=True):
        rows = table.loc[kpi]
        names = [str(n) for n in rows.index]
        means = rows["mean"].to_numpy(dtype=float)
        err = np.vstack(
            [
                means - rows["ci_low"].to_numpy(dtype=float),
                rows["ci_high"].to_numpy(dtype=float) - means,
            ]
        )
        ax.bar(
            names, means, color=[strategy_color(n) for n in names], alpha=0.85, yerr=err, capsize=6
        )
        ax.set_title(kpi.replace("_", " "))
        ax.set_ylabel(kpi_label(kpi))
        ax.yaxis.set_major_formatter(_plain_numbers)
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def difference_chart(
    table: pd.DataFrame, kpis: list[str] | tuple[str, ...], baseline: str, title: str | None = None
) -> Figure:
    """Relative change of each KPI against the baseline, with paired 95% intervals."""
    others = [s for s in dict.fromkeys(table.index.get_level_values("scenario")) if s != baseline]
    fig, ax = _figure((8, 0.9 + 0.55 * len(kpis) * len(others)))
    labels, y = [], 0
    for kpi in kpis:
        for name in others:
            row = table.loc[(kpi, name)]
            value = 100 * float(row["rel_change"])
            low, high = 100 * float(row["rel_low"]), 100 * float(row["rel_high"])
            # a bootstrap interval need not be centred on the point: draw it as it is
            color = strategy_color(name)
            ax.hlines(y, low, high, color=color, linewidth=2)
            ax.plot([low, high], [y, y], "|", color=color, markersize=10)
            ax.plot(value, y, "o", color=color)
            labels.append(f"{kpi.replace('_', ' ')}: {name}")
            y += 1
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"change against {baseline} (%, paired 95% interval)")
    ax.set_title(title or f"Paired differences against {baseline}")
    fig.tight_layout()
    return fig


def heatmap(means: pd.DataFrame, x: str, y: str, kpi: str, title: str | None = None) -> Figure:
    """Mean of a KPI over two swept parameters (averaged over any others)."""
    grid = means.pivot_table(index=y, columns=x, values=kpi, aggfunc="mean")
    fig, ax = _figure((7, 4.8))
    image = ax.imshow(grid.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), [short(v) for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [short(v) for v in grid.index])
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(j, i, short(value), ha="center", va="center", color="white", fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(image, ax=ax, label=kpi_label(kpi))
    ax.set_title(title or f"{kpi.replace('_', ' ')} over {x} and {y}")
    fig.tight_layout()
    return fig


def short(value: Any) -> str:
    """A compact label for a number (or any value) in a figure or sentence."""
    if isinstance(value, float | np.floating):
        number = float(value)
        return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.3g}"
    return str(value)


def sensitivity_chart(table: pd.DataFrame, title: str = "Sensitivity") -> Figure:
    """Bars of each parameter's index for each KPI (Sobol, Morris or Spearman)."""
    if "ST" in table.columns:
        value, err, label = "ST", "ST_conf", "total-order Sobol index ST (share of variance)"
    elif "mu_star" in table.columns:
        value, err, label = "mu_star", "mu_star_conf", "Morris mu* (KPI units)"
    else:
        value, err, label = "spearman", None, "Spearman rank correlation (-1 to 1)"
    kpis = list(dict.fromkeys(table["kpi"]))
    fig, axes = _figure((3.6 * len(kpis), 3.6), 1, len(kpis), squeeze=False, sharey=True)
    for ax, kpi in zip(axes[0], kpis, strict=True):
        rows = table[table["kpi"] == kpi]
        ax.barh(
            rows["parameter"],
            rows[value],
            xerr=None if err is None else rows[err],
            color="#4c72b0",
            capsize=3,
        )
        ax.set_title(kpi.replace("_", " "))
        ax.set_xlabel(label, fontsize=8)
        ax.axvline(0, color="black", linewidth=0.6)
    axes[0][0].set_ylabel("parameter")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pareto_chart(
    means: pd.DataFrame, front: pd.DataFrame, title: str = "Revenue against CAC (colour: burnout)"
) -> Figure:
    """Every point by revenue and CAC coloured by burnout; the Pareto front ringed."""
    fig, ax = _figure((7.5, 4.8))
    points = ax.scatter(
        means["cac"],
        means["revenue"],
        c=means["burnout_index"],
        cmap="magma_r",
        vmin=0,
        vmax=1,
        s=40,
        edgecolor="none",
    )
    ax.scatter(
        front["cac"],
        front["revenue"],
        s=140,
        facecolor="none",
        edgecolor="black",
        linewidth=1.4,
        label=f"Pareto front ({len(front)} points)",
    )
    fig.colorbar(points, ax=ax, label=kpi_label("burnout_index"))
    ax.xaxis.set_major_formatter(_plain_numbers)
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_xlabel(kpi_label("cac"))
    ax.set_ylabel(kpi_label("revenue"))
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def across_chart(
    table: pd.DataFrame,
    parameter: str,
    kpis: list[str] | tuple[str, ...] = ("cac", "ltv_to_cac"),
    title: str | None = None,
) -> Figure:
    """Each KPI against the varied parameter, one line per strategy with 95% intervals.

    ``table`` is :meth:`AcrossComparison.table`: indexed by the parameter, KPI and strategy.
    """
    fig, axes = _figure((5.2 * len(kpis), 4), 1, len(kpis), squeeze=False)
    levels = list(dict.fromkeys(table.index.get_level_values(0)))
    names = list(dict.fromkeys(table.index.get_level_values("scenario")))
    x = np.asarray(levels, dtype=float)
    for ax, kpi in zip(axes[0], kpis, strict=True):
        for name in names:
            rows = table.xs((kpi, name), level=("kpi", "scenario"))
            mean = rows["mean"].to_numpy(dtype=float)
            low, high = rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float)
            color = strategy_color(name)
            ax.plot(x, mean, "o-", color=color, label=name)
            ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
        if kpi == "ltv_to_cac":
            ax.axhline(3, color="grey", linestyle="--", linewidth=0.8)
            ax.axhline(1, color="black", linewidth=0.6)
        ax.set_xticks(x, [str(v) for v in levels])
        ax.set_xlabel("reps in the team" if parameter == "team.reps" else parameter)
        ax.set_ylabel(kpi_label(kpi))
        ax.yaxis.set_major_formatter(_plain_numbers)
        ax.set_title(kpi_label(kpi).split(" (")[0])
        ax.legend(fontsize=8)
    fig.suptitle(title or "The answer across team sizes (lines: means; bands: 95% intervals)")
    fig.tight_layout()
    return fig

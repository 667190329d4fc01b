"""Figures for notebooks and reports. Each takes DataFrames and returns a Figure.

Every figure has a title and axes labelled with units; strategies and sources keep
their colours (:mod:`simfunnel.reporting.colors`) across every figure.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from itertools import pairwise
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


#: Resolution of every figure in a notebook or report (dots per inch).
DPI = 150


@dataclass(frozen=True)
class Chart:
    """A figure as a notebook shows it: a PNG at :data:`DPI` with alt text.

    Its plain-text form is the alt text, so a notebook's stored output (and nbval)
    carries what the figure says; :func:`simfunnel.reporting.report.export_html`
    puts the alt text on the report's ``<img>``.
    """

    figure: Figure
    alt: str
    dpi: int = DPI

    def png(self) -> bytes:
        """The figure as PNG bytes at ``dpi``."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=self.dpi, bbox_inches="tight")
        return buffer.getvalue()

    def _repr_png_(self) -> tuple[bytes, dict[str, Any]]:
        width = round(self.figure.get_figwidth() * 96)  # CSS pixels: sharp on any screen
        return self.png(), {"alt": self.alt, "width": width}

    def __repr__(self) -> str:
        return self.alt


def show(figure: Figure, takeaway: str) -> Chart:
    """Show a figure under its one-sentence takeaway (notebooks only).

    The takeaway is displayed as text above the figure and becomes the figure's alt
    text, prefixed with its title.
    """
    from IPython.display import Markdown, display

    title = figure.texts[0].get_text() if figure.texts else ""
    if not title:
        title = next((ax.get_title() for ax in figure.axes if ax.get_title()), "")
    display(Markdown(f"*{takeaway}*"))
    return Chart(figure, f"{title}. {takeaway}" if title else takeaway)


def _human(kpi: str) -> str:
    """A KPI's human name for a title: ``CAC (cost per customer)``, ``Rep utilisation``."""
    from simfunnel.formatting import kpi_label as human_label

    return human_label(kpi)


def kpi_label(kpi: str) -> str:
    """An axis label for a KPI: its human name with its unit from :data:`KPI_DOCS`.

    ``CAC (USD per customer)``, ``Revenue (USD)``: never the identifier.
    """
    doc = KPI_DOCS.get(kpi, "")
    unit = doc[doc.rfind("(") + 1 : doc.rfind(")")].split(";")[0] if "(" in doc else ""
    name = _human(kpi).split(" (")[0]
    return f"{name} ({unit})" if unit else _human(kpi)


def funnel_chart(funnel: pd.DataFrame, title: str = "Funnel by source") -> Figure:
    """Counts at each stage by source on a linear scale, each bar labelled with its rate.

    A bar's label is the share of the previous stage that reached it (the stage
    conversion rate), so the chart shows both where leads are lost and how many.
    """
    fig, ax = _figure((8, 4.4))
    width = 0.8 / max(1, len(funnel))
    x = np.arange(len(_STAGES))
    top = float(funnel[list(_STAGES)].to_numpy(dtype=float).max()) if len(funnel) else 1.0
    for k, (source, row) in enumerate(funnel.iterrows()):
        counts = [float(row[s]) for s in _STAGES]
        ax.bar(x + k * width, counts, width, label=str(source), color=source_color(str(source)))
        for j, rate in enumerate(stage_rates(counts)):
            text = f"{counts[j]:,.0f}" if j == 0 else f"{rate:.0%}" if np.isfinite(rate) else "-"
            ax.annotate(
                text,
                (x[j] + k * width, counts[j] + 0.01 * top),
                ha="center",
                va="bottom",
                fontsize=6.5,
                rotation=90,
            )
    ax.set_ylim(0, top * 1.18)
    ax.set_xticks(x + width * (len(funnel) - 1) / 2, [s.capitalize() for s in _STAGES])
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_xlabel("funnel stage (labels: share of the previous stage that reached it)")
    ax.set_ylabel("leads reaching the stage (count)")
    ax.set_title(title)
    ax.legend(title="source", fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def stage_rates(counts: list[float] | np.ndarray) -> list[float]:
    """Each stage's count over the previous stage's (NaN where that is zero); first: 1."""
    out = [1.0]
    for before, after in pairwise(counts):
        out.append(float(after) / float(before) if before else math.nan)
    return out


#: Bins of the response-time histogram: (label, upper bound in hours).
RESPONSE_BINS: tuple[tuple[str, float], ...] = (
    ("under 5 min", 5 / 60),
    ("5-30 min", 0.5),
    ("30-60 min", 1.0),
    ("1-4 h", 4.0),
    ("4-24 h", 24.0),
    ("1-3 days", 72.0),
    ("over 3 days", math.inf),
)

#: The bar for leads that never had an attempt (gone stale or still waiting).
NEVER_WORKED = "never worked"


def response_bins(leads: pd.DataFrame) -> pd.DataFrame:
    """Leads by delay to the first attempt, in :data:`RESPONSE_BINS`, by source.

    Leads with no attempt (gone stale, or still waiting at the end) count in a last
    ``never worked`` bin; leads routed straight to nurture are left out, as in the
    response-time KPIs. Rows: the bins in order; columns: sources.
    """
    frame = leads
    if "routed_to_nurture" in frame:
        frame = frame[~frame["routed_to_nurture"].astype(bool)]
    labels = [label for label, _ in RESPONSE_BINS]
    edges = [-math.inf] + [upper for _, upper in RESPONSE_BINS]
    delay = frame["first_response_hours"]
    binned = pd.cut(delay, edges, labels=labels, right=False).astype(object)
    binned = binned.where(delay.notna(), NEVER_WORKED)
    sources = list(dict.fromkeys(str(s) for s in frame["source"]))
    table = pd.crosstab(
        pd.Categorical(binned, categories=[*labels, NEVER_WORKED]),
        frame["source"].astype(str),
        dropna=False,
    )
    table.index = pd.Index([*labels, NEVER_WORKED], name="delay to first attempt")
    return table.reindex(columns=sources, fill_value=0).astype(int)


def response_time_chart(leads: pd.DataFrame, title: str = "Speed to lead") -> Figure:
    """Leads by delay to the first attempt, in human bins, with a bar for never worked."""
    bins = response_bins(leads)
    fig, ax = _figure((8, 4))
    width = 0.8 / max(1, bins.shape[1])
    x = np.arange(len(bins))
    for k, source in enumerate(bins.columns):
        ax.bar(x + k * width, bins[source], width, label=str(source), color=source_color(source))
    ax.axvspan(len(bins) - 1.5 + width / 2, len(bins) - 0.5 + width / 2, color="0.92", zorder=0)
    ax.set_xticks(x + width * (bins.shape[1] - 1) / 2, list(bins.index), fontsize=8)
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_xlabel("delay from arrival to first attempt (shaded: leads never attempted)")
    ax.set_ylabel("leads (count)")
    ax.set_title(title)
    ax.legend(title="source", fontsize=8, loc="upper right")
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
        ax.set_title(_human(kpi))
        ax.set_ylabel(kpi_label(kpi))
        ax.yaxis.set_major_formatter(_plain_numbers)
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def difference_chart(
    table: pd.DataFrame, kpis: list[str] | tuple[str, ...], baseline: str, title: str | None = None
) -> Figure:
    """Relative change of each KPI against the baseline, with paired 95% intervals.

    One panel per KPI, each with its own scale: a +900% change in revenue and a -85%
    change in CAC are both readable.
    """
    others = [s for s in dict.fromkeys(table.index.get_level_values("scenario")) if s != baseline]
    fig, axes = _figure(
        (4 * len(kpis), 1.4 + 0.5 * len(others)), 1, len(kpis), squeeze=False, sharey=True
    )
    for ax, kpi in zip(axes[0], kpis, strict=True):
        for y, name in enumerate(others):
            row = table.loc[(kpi, name)]
            value = 100 * float(row["rel_change"])
            low, high = 100 * float(row["rel_low"]), 100 * float(row["rel_high"])
            # a bootstrap interval need not be centred on the point: draw it as it is
            color = strategy_color(name)
            ax.hlines(y, low, high, color=color, linewidth=2)
            ax.plot([low, high], [y, y], "|", color=color, markersize=10)
            ax.plot(value, y, "o", color=color)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(kpi_label(kpi).split(" (")[0], fontsize=10)
        ax.set_xlabel("change (%)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:+,.0f}%"))
    axes[0][0].set_yticks(range(len(others)), others)
    axes[0][0].set_ylim(len(others) - 0.5, -0.5)
    fig.suptitle(title or f"Change against {baseline}, with paired 95% intervals")
    fig.tight_layout()
    return fig


def robust_limits(values: np.ndarray | list[float]) -> tuple[float, float]:
    """Colour limits that an outlier cannot swamp: the extremes inside Tukey's fences.

    Values beyond ``Q1 - 1.5 IQR`` or ``Q3 + 1.5 IQR`` take the end colours (the
    colour bar shows arrows for them) instead of stretching the scale, so one point
    with few customers and a huge CAC leaves the others readable.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    q1, q3 = np.percentile(finite, [25, 75])
    spread = q3 - q1
    inside = finite[(finite >= q1 - 1.5 * spread) & (finite <= q3 + 1.5 * spread)]
    low, high = float(inside.min()), float(inside.max())
    if low == high:
        return low - 0.5, high + 0.5
    return low, high


def compact(value: Any, kind: str = "number") -> str:
    """A short number for a figure: ``$23.3k``, ``1.24M``, ``12%``, ``0.21``; text as it is."""
    if isinstance(value, str | bool):
        return str(value)
    if value is None or not np.isfinite(float(value)):
        return "-"
    x = float(value)
    if kind == "share":
        return f"{100 * x:.0f}%"
    if kind in ("index", "ratio"):
        return f"{x:.2f}"
    prefix = "$" if kind == "usd" else ""
    sign = "-" if x < 0 else ""
    x = abs(x)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= size:
            return f"{sign}{prefix}{x / size:.3g}{suffix}"
    return f"{sign}{prefix}{x:.3g}" if kind not in ("count", "usd") else f"{sign}{prefix}{x:,.0f}"


def averaged_over(means: pd.DataFrame, x: str, y: str, parameters: Any = None) -> list[str]:
    """The swept parameters besides ``x`` and ``y`` that take several values in ``means``."""
    return [
        p
        for p in (parameters or [])
        if p not in (x, y) and p in means.columns and means[p].nunique(dropna=False) > 1
    ]


def averaging_note(means: pd.DataFrame, x: str, y: str, parameters: Any = None) -> str:
    """'each cell averages over routing policy (3 levels)', or '' when nothing is averaged."""
    from simfunnel.formatting import parameter_label

    others = averaged_over(means, x, y, parameters)
    if not others:
        return ""
    parts = [f"{parameter_label(p)} ({means[p].nunique(dropna=False)} levels)" for p in others]
    return "each cell averages over " + " and ".join(parts)


def heatmap(
    means: pd.DataFrame,
    x: str,
    y: str,
    kpi: str,
    title: str | None = None,
    parameters: Any = None,
) -> Figure:
    """Mean of a KPI over two swept parameters (averaged over any others, said under it).

    ``parameters``: every swept parameter; those besides ``x`` and ``y`` with several
    values are averaged over, and the figure says so (:func:`averaging_note`).

    The colour scale is robust (:func:`robust_limits`): an outlying cell takes the end
    colour and keeps its number, instead of flattening every other cell into one colour.
    """
    from matplotlib.colors import Normalize

    from simfunnel.formatting import kpi_kind, parameter_kind, parameter_label

    grid = means.pivot_table(index=y, columns=x, values=kpi, aggfunc="mean")
    values = grid.to_numpy(dtype=float)
    low, high = robust_limits(values)
    finite = values[np.isfinite(values)]
    extend = {
        (False, False): "neither",
        (True, False): "min",
        (False, True): "max",
        (True, True): "both",
    }[(bool(finite.size and finite.min() < low), bool(finite.size and finite.max() > high))]
    norm = Normalize(vmin=low, vmax=high, clip=True)
    fig, ax = _figure((7.5, 4.8))
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis", norm=norm)
    ax.set_xticks(range(grid.shape[1]), [compact(v, parameter_kind(x)) for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [compact(v, parameter_kind(y)) for v in grid.index])
    kind = kpi_kind(kpi)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            r, g, b, _ = image.cmap(norm(value))
            light = 0.299 * r + 0.587 * g + 0.114 * b > 0.55
            ax.text(
                j,
                i,
                compact(value, kind),
                ha="center",
                va="center",
                color="black" if light else "white",
                fontsize=9,
            )
    ax.set_xlabel(parameter_label(x))
    ax.set_ylabel(parameter_label(y))
    bar = fig.colorbar(image, ax=ax, label=kpi_label(kpi), extend=extend)
    bar.formatter = FuncFormatter(lambda v, _pos: compact(v, kind))
    bar.update_ticks()
    ax.set_title(title or f"{_human(kpi)} over {parameter_label(x)} and {parameter_label(y)}")
    note = averaging_note(means, x, y, parameters)
    if note:
        fig.text(0.01, 0.01, note[0].upper() + note[1:] + ".", fontsize=8, color="0.3")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
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
    from simfunnel.formatting import parameter_label

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
            [parameter_label(str(p)) for p in rows["parameter"]],
            rows[value],
            xerr=None if err is None else rows[err],
            color="#4c72b0",
            capsize=3,
        )
        ax.set_title(_human(kpi), fontsize=10)
        ax.set_xlabel(label, fontsize=8)
        ax.axvline(0, color="black", linewidth=0.6)
    axes[0][0].set_ylabel("setting")
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

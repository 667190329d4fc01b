"""Figures and headline numbers of the calibration report.

Each figure takes a table from :mod:`simfunnel.calibration.fit` (the fit check, the
fitted parameters, the back-test) and returns a Figure; sources keep their colours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simfunnel.reporting.colors import source_color
from simfunnel.reporting.headline import _clean

_RATE_STAGES = ("contacted", "qualified", "opportunity", "won")


def _figure(figsize: tuple[float, float], ncols: int) -> tuple[Figure, Any]:
    fig = Figure(figsize=figsize)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _errorbar(
    ax: Any, x: np.ndarray, mid: pd.Series, low: pd.Series, high: pd.Series, **kw: Any
) -> None:
    mid_v = mid.to_numpy(float)
    err = np.vstack([mid_v - low.to_numpy(float), high.to_numpy(float) - mid_v])
    ax.errorbar(x, mid_v, yerr=np.clip(err, 0, None), capsize=3, linestyle="none", **kw)


def fit_check_chart(table: pd.DataFrame, title: str = "Observed and simulated") -> Figure:
    """Per stage, each source's observed rate and the simulated one, with 95% intervals.

    ``table`` is :attr:`simfunnel.calibration.fit.FitCheck.table`; a last panel shows
    leads per week when the table has them.
    """
    stages = [s for s in (*_RATE_STAGES, "leads_per_week") if s in set(table["stage"])]
    fig, axes = _figure((2.6 * len(stages) + 0.6, 3.8), len(stages))
    sources = list(dict.fromkeys(table["source"]))
    x = np.arange(len(sources))
    for ax, stage in zip(axes, stages, strict=True):
        part = table[table["stage"] == stage].set_index("source").reindex(sources)
        scale = 1.0 if stage == "leads_per_week" else 100.0
        _errorbar(
            ax,
            x - 0.12,
            part["observed"] * scale,
            part["observed_low"] * scale,
            part["observed_high"] * scale,
            marker="o",
            color="black",
            label="observed",
        )
        for k, source in enumerate(sources):
            row = part.loc[[source]]
            _errorbar(
                ax,
                x[k : k + 1] + 0.12,
                row["simulated"] * scale,
                row["simulated_low"] * scale,
                row["simulated_high"] * scale,
                marker="s",
                color=source_color(source),
                label="simulated" if k == 0 else None,
            )
        ax.set_xticks(x, sources, rotation=30, ha="right", fontsize=8)
        ax.set_title(stage.replace("_", " "), fontsize=10)
        ax.set_ylabel("leads a week" if stage == "leads_per_week" else "% of leads reaching it")
        ax.set_xlim(-0.6, len(sources) - 0.4)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def parameter_chart(parameters: pd.DataFrame, title: str = "Fitted by simulation") -> Figure:
    """Each fitted parameter's estimate with its 95% interval, and where the fit started."""
    fig, axes = _figure((7, 0.45 * len(parameters) + 1.6), 1)
    ax = axes[0]
    labels = [
        p if s == "all" else f"{s} {p}"
        for p, s in zip(parameters["parameter"], parameters["source"], strict=True)
    ]
    y = np.arange(len(parameters))[::-1]
    est = parameters["estimate"].to_numpy(float)
    err = np.vstack(
        [est - parameters["low"].to_numpy(float), parameters["high"].to_numpy(float) - est]
    )
    err = np.nan_to_num(err, nan=0.0)  # not identified: no interval, a hollow marker
    hollow = ~parameters.get("identified", pd.Series(True, index=parameters.index)).to_numpy(bool)
    colors = [source_color(s) if s != "all" else "black" for s in parameters["source"]]
    for k in range(len(parameters)):
        ax.errorbar(
            est[k],
            y[k],
            xerr=np.clip(err[:, k : k + 1], 0, None),
            fmt="o",
            color=colors[k],
            markerfacecolor="white" if hollow[k] else colors[k],
            capsize=3,
        )
    ax.scatter(
        parameters["start"], y, marker="|", color="grey", s=120, label="start (domain default)"
    )
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability or share (95% interval)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def backtest_chart(table: pd.DataFrame, title: str = "Back-test") -> Figure:
    """Held-out counts by source against the forecast with its 95% prediction interval.

    One panel per count (leads, opportunities, wins).
    """
    counts = list(dict.fromkeys(table["count"]))
    fig, axes = _figure((3.2 * len(counts) + 0.6, 3.8), len(counts))
    sources = [s for s in dict.fromkeys(table["source"]) if s != "all"]
    x = np.arange(len(sources))
    for ax, what in zip(axes, counts, strict=True):
        part = table[table["count"] == what].set_index("source").reindex(sources)
        for k, source in enumerate(sources):
            row = part.loc[[source]]
            _errorbar(
                ax,
                x[k : k + 1],
                row["forecast"],
                row["low"],
                row["high"],
                marker="s",
                color=source_color(source),
                label="forecast" if k == 0 else None,
            )
        ax.scatter(x, part["actual"], marker="x", color="black", zorder=3, label="actual")
        ax.set_xticks(x, sources, rotation=30, ha="right", fontsize=8)
        ax.set_title(what, fontsize=10)
        ax.set_ylabel(f"{what} in the held-out window (count)")
        ax.set_xlim(-0.6, len(sources) - 0.4)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cohort_chart(
    cohorts: pd.DataFrame,
    recording: Any = None,
    outcomes_from: pd.Timestamp | None = None,
    title: str = "Conversion by monthly cohort",
) -> Figure:
    """Each month's share of new leads that reached the deepest stage, with its interval.

    ``cohorts`` is :func:`simfunnel.calibration.estimate.recording.cohort_conversion`; a dashed
    line marks the start of outcome recording (detected or given), and the bars behind
    the share show the month's leads.
    """
    fig, axes = _figure((8.0, 3.6), 1)
    ax = axes[0]
    if cohorts.empty:
        ax.text(0.5, 0.5, "no creation dates: no cohorts", ha="center", transform=ax.transAxes)
        return fig
    months = pd.to_datetime(cohorts["month"])
    bars = ax.twinx()
    bars.bar(months, cohorts["leads"], width=20, color="0.88", zorder=0)
    bars.set_ylabel("new leads in the month", color="0.45")
    ax.set_zorder(bars.get_zorder() + 1)
    ax.patch.set_visible(False)
    _errorbar(
        ax,
        months.to_numpy(),
        cohorts["rate"],
        cohorts["low"],
        cohorts["high"],
        marker="o",
        color="black",
    )
    start = recording.start if recording is not None else outcomes_from
    if start is not None:
        ax.axvline(pd.Timestamp(start), linestyle="--", color="tab:red")
        ax.annotate(
            "outcomes recorded from here",
            (pd.Timestamp(start), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color="tab:red",
        )
    stage = str(cohorts["stage"].iloc[0])
    ax.set_ylabel(f"share of the month's leads that reached {stage}")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def cohort_takeaway(
    cohorts: pd.DataFrame, recording: Any = None, outcomes_from: pd.Timestamp | None = None
) -> str:
    """One sentence on the cohorts: the range of monthly shares, and the start of recording."""
    if cohorts.empty:
        return "No creation dates, so no cohorts."
    full = cohorts[cohorts["leads"] >= 30]
    full = full if len(full) else cohorts
    stage = str(cohorts["stage"].iloc[0])
    text = (
        f"Monthly cohorts reached {stage} {full['rate'].min():.1%} to {full['rate'].max():.1%} "
        f"(months with at least 30 leads; the latest are still converting)."
    )
    if recording is not None:
        text += " " + recording.line()[0].upper() + recording.line()[1:] + "."
    elif outcomes_from is not None:
        text += f" Conversion is estimated from the cohorts since {outcomes_from:%Y-%m-%d}."
    return text


def what_was_read(cal: Any, input_name: str, version: str = "") -> dict[str, Any]:
    """The report's "what was read": files, mapping, rows, dates, sources, pooling.

    ``cal`` is a :class:`simfunnel.calibration.Calibration`; the sources pooled into
    ``other`` are named (as the command line does), so that row is explained.
    """
    from simfunnel.calibration.pipeline import MIN_LEADS_PER_SOURCE

    created = pd.to_datetime(cal.frame["created_at"])
    facts: dict[str, Any] = {
        "input": input_name,
        "mapping": cal.report.mapping,
        "rows read": cal.report.rows_read,
        "leads kept": cal.report.rows_kept,
        "first lead": str(created.min().date()),
        "last lead": str(created.max().date()),
    }
    as_of = cal.frame.attrs.get("as_of")
    if as_of is not None:
        facts["export date (as of)"] = str(pd.Timestamp(as_of))
    facts["sources"] = len(cal.scenario.sources)
    facts["pooled into 'other'"] = (
        f"{', '.join(cal.pooled)} (fewer than {MIN_LEADS_PER_SOURCE} leads each)"
        if cal.pooled
        else "none"
    )
    if version:
        facts["simfunnel"] = version
    return facts


def calibration_headline(
    provenance: dict[str, Any],
    check: Any,
    parameters: pd.DataFrame | None,
    backtest: Any,
    pooled: list[str] | None = None,
) -> dict[str, Any]:
    """The report's headline numbers: the verdicts, the fit check, parameters, back-test.

    ``pooled``: the sources pooled into ``other`` (listed under ``pooled``).
    """

    def records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
        if frame is None:
            return []
        return [{str(k): _clean(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]

    rates = check.table[check.table["stage"] != "leads_per_week"]
    sentences = [check.verdict[0].upper() + check.verdict[1:] + "."]
    if backtest is not None:
        sentences.append(backtest.verdict[0].upper() + backtest.verdict[1:] + ".")
    summary: dict[str, Any] = {
        "rates reproduced": int(rates["inside"].sum()),
        "rates observed": len(rates),
    }
    if parameters is not None and "identified" in parameters:
        summary["parameters not identified"] = int((~parameters["identified"]).sum())
        summary["parameters at a bound"] = int(parameters["at_bound"].sum())
    if backtest is not None:
        per_source = backtest.table[backtest.table["source"] != "all"]
        summary["back-test counts inside"] = int(per_source["inside"].sum())
        summary["back-test counts"] = len(per_source)
    return {
        "kind": "calibration",
        "verdict": sentences[0],
        "provenance": {k: _clean(v) for k, v in provenance.items()},
        "pooled": list(pooled or []),
        "conclusion": " ".join(sentences),
        "fit_check": records(check.table),
        "parameters": records(parameters),
        "backtest": records(None if backtest is None else backtest.table),
        "summary": {**summary, **{k: _clean(v) for k, v in provenance.items()}},
    }


#: Fitted parameters in words.
_PARAMETER_LABELS = {
    "contact_probability": "the chance a first call reaches the lead",
    "quality.ready": "share of sales-ready leads",
    "opportunity_probability": "qualified-to-opportunity chance",
    "win_probability": "opportunity-to-won chance",
}


def _parameter_label(parameter: str, source: str) -> str:
    words = _PARAMETER_LABELS.get(parameter, parameter.replace("_", " ").replace(".", " "))
    return words if source == "all" else f"{source}'s {words}"


def parameter_takeaway(parameters: pd.DataFrame) -> str:
    """One sentence on the fitted parameters: the best and worst ready shares, the contact."""
    parts = []
    flags = parameters.get("identified", pd.Series(True, index=parameters.index)).astype(bool)
    stuck = parameters[~flags]
    at_bound = parameters.get("at_bound", pd.Series(False, index=parameters.index))
    at_bound = at_bound.fillna(False).astype(bool)
    bounded = parameters[flags & at_bound]
    # a value stuck at its search bound is no finding: it is named as such below only
    parameters = parameters[flags & ~at_bound]
    ready = parameters[parameters["parameter"] == "quality.ready"].sort_values("estimate")
    if len(ready) >= 2:
        best, worst = ready.iloc[-1], ready.iloc[0]
        parts.append(
            f"the most sales-ready leads come from {best['source']} ({best['estimate']:.0%}, "
            f"95% {best['low']:.0%} to {best['high']:.0%}), the fewest from "
            f"{worst['source']} ({worst['estimate']:.0%})"
        )
    elif len(ready) == 1:
        only = ready.iloc[0]
        parts.append(f"the share of sales-ready leads is {only['estimate']:.0%}")
    contact = parameters[parameters["parameter"] == "contact_probability"]
    if len(contact):
        c = contact.iloc[0]
        parts.append(
            f"a first call answered at once reaches {c['estimate']:.0%} of leads "
            f"(95% {c['low']:.0%} to {c['high']:.0%})"
        )
    for row in bounded.to_dict(orient="records"):
        label = _parameter_label(row["parameter"], row["source"])
        parts.append(f"{label} sits at the bound of its search ({row['estimate']:.3g})")
    if len(stuck):
        names = ", ".join(
            _parameter_label(p, s) for p, s in zip(stuck["parameter"], stuck["source"], strict=True)
        )
        parts.append(f"not identified by the data, left at the domain default: {names}")
    text = "; ".join(parts) or "nothing was fitted"
    return text[0].upper() + text[1:] + "."

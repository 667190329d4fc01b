"""Figures, tables and headline numbers of the ``budget_mix`` report.

Each figure takes an :class:`~simfunnel.optimization.OptimizationResult` (or the
team-size table) and returns a Figure outside pyplot's global state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simfunnel.experiments.analysis import pareto_front
from simfunnel.formatting import parameter_label
from simfunnel.optimization import OptimizationResult
from simfunnel.optimization.answer import clean, kpi_label, kpi_value, money
from simfunnel.optimization.select import CURRENT
from simfunnel.optimization.spec import budget_path
from simfunnel.reporting.colors import source_color
from simfunnel.reporting.plots import _figure, _plain_numbers
from simfunnel.reporting.plots import kpi_label as axis_label


def _display_name(label: str, result: OptimizationResult) -> str:
    recommended = result.recommended
    if label == CURRENT:
        return "current (recommended: keep)" if recommended == CURRENT else "current"
    if label == recommended:
        return f"recommended ({label})"
    if label == result.choice.best:
        return f"best tried ({label})"
    return f"tied ({label})"


def allocation_chart(result: OptimizationResult, title: str = "Recommended mix") -> Figure:
    """Weekly dollars by source (left) and the objective with its interval (right).

    Bars for the current split, the recommendation and the mixes tied with it.
    """
    objective = result.spec.objectives()[0]
    table = result.choice.table
    labels = [CURRENT] + [
        x for x in [result.recommended, result.choice.best, *result.choice.tied] if x
    ]
    labels = list(dict.fromkeys(labels))
    names = [_display_name(label, result) for label in labels]
    has_budget = result.spec.budget is not None
    fig, axes = _figure((10, 0.5 * len(labels) + 2.4), 1, 2 if has_budget else 1)
    left, right = (axes[0], axes[1]) if has_budget else (None, axes)
    y = np.arange(len(labels))[::-1]
    if left is not None and result.spec.budget is not None:
        start = np.zeros(len(labels))
        for source in result.spec.budget.sources:
            amounts = table.loc[labels, budget_path(source)].to_numpy(dtype=float)
            left.barh(y, amounts, left=start, color=source_color(source), label=source)
            start += amounts
        left.set_yticks(y, names)
        left.set_xlabel("weekly budget (USD)")
        left.xaxis.set_major_formatter(_plain_numbers)
        left.legend(fontsize=8, loc="lower right")
        left.set_title("budget by source")
    mean = table.loc[labels, objective.kpi].to_numpy(dtype=float)
    low = table.loc[labels, f"{objective.kpi}_low"].to_numpy(dtype=float)
    high = table.loc[labels, f"{objective.kpi}_high"].to_numpy(dtype=float)
    colors = ["0.6" if label == CURRENT else "#1f77b4" for label in labels]
    right.barh(y, mean, color=colors, alpha=0.8)
    right.errorbar(mean, y, xerr=[mean - low, high - mean], fmt="none", ecolor="black", capsize=4)
    right.set_yticks(y, [] if has_budget else names)
    right.set_xlabel(f"{axis_label(objective.kpi)}, mean and 95% CI")
    right.xaxis.set_major_formatter(_plain_numbers)
    right.set_title(kpi_label(objective.kpi))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def convergence_chart(
    result: OptimizationResult, title: str = "Convergence of the search"
) -> Figure:
    """Each trial's objective (feasible or not) and the best feasible value so far."""
    objective = result.spec.objectives()[0]
    trials = result.trials[result.trials["state"] == "complete"].sort_values("trial")
    fig, ax = _figure((8, 3.8))
    feasible = trials["feasible"].astype(bool)
    ax.scatter(
        trials.loc[feasible, "trial"],
        trials.loc[feasible, objective.kpi],
        s=18,
        color="#1f77b4",
        label="trial meeting the constraints",
    )
    ax.scatter(
        trials.loc[~feasible, "trial"],
        trials.loc[~feasible, objective.kpi],
        s=18,
        color="#d62728",
        marker="x",
        label="trial breaking a constraint",
    )
    values = trials[objective.kpi].where(feasible)
    best = values.cummin() if objective.minimize else values.cummax()
    ax.step(trials["trial"], best, where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{axis_label(objective.kpi)}, mean of {result.spec.replications} runs")
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def candidates_table(result: OptimizationResult) -> pd.DataFrame:
    """The re-run candidates for people: decision, objective with interval, verdict."""
    spec = result.spec
    objective = spec.objectives()[0]
    table = result.choice.table
    rows = []
    recommended = result.recommended
    for label, row in table.iterrows():
        if label == recommended:
            verdict = "recommended (keep)" if label == CURRENT else "recommended"
        elif label == result.choice.best:
            verdict = "best tried, not significantly better than the current"
        elif label in result.choice.tied:
            verdict = "tied with the best"
        elif not row["feasible"]:
            verdict = "breaks a constraint"
        else:
            verdict = "worse"
        out: dict[str, Any] = {"candidate": label}
        if spec.budget is not None:
            for source in spec.budget.sources:
                out[source.replace("_", " ")] = money(float(row[budget_path(source)]))
        for p in spec.parameters:
            name = "reps" if p.path == "team.reps" else parameter_label(p.path)
            out[name] = row[p.path]
        kpi = objective.kpi
        out[kpi_label(kpi)] = (
            f"{kpi_value(kpi, row[kpi])} ({kpi_value(kpi, row[kpi + '_low'])} to "
            f"{kpi_value(kpi, row[kpi + '_high'])})"
        )
        for c in spec.constraint_list():
            out[f"{kpi_label(c.kpi)} bound"] = kpi_value(c.kpi, row[f"{c.kpi}_bound"])
        out["verdict"] = verdict
        rows.append(out)
    return pd.DataFrame(rows).set_index("candidate")


def tradeoff_chart(
    result: OptimizationResult, other: str = "burnout_index", title: str | None = None
) -> tuple[Figure, pd.DataFrame]:
    """The trials' objective against a second KPI, with their Pareto front.

    With several objectives, the first two; otherwise the objective against
    ``other`` (by default burnout), both minimised or maximised as they should be.
    """
    objectives = result.spec.objectives()
    first = objectives[0]
    second_kpi = objectives[1].kpi if len(objectives) > 1 else other
    second_sense = ("min" if objectives[1].minimize else "max") if len(objectives) > 1 else "min"
    trials = result.trials[result.trials["state"] == "complete"]
    if second_kpi not in trials:
        second_kpi = (
            next(k for k in result.spec.kpis() if k != first.kpi)
            if len(result.spec.kpis()) > 1
            else first.kpi
        )
    means = trials.set_index("trial")
    front = pareto_front(
        means, {first.kpi: "min" if first.minimize else "max", second_kpi: second_sense}
    )
    fig, ax = _figure((7, 4.2))
    ax.scatter(means[second_kpi], means[first.kpi], s=16, color="0.6", label="trial")
    ordered = front.sort_values(second_kpi)
    ax.plot(ordered[second_kpi], ordered[first.kpi], "o-", color="#d62728", label="Pareto front")
    for c in result.spec.constraint_list():
        if c.kpi == second_kpi:
            ax.axvline(c.value, color="black", linestyle="--", label=f"limit {c.describe()}")
    ax.set_xlabel(axis_label(second_kpi))
    ax.set_ylabel(axis_label(first.kpi))
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_title(title or f"{kpi_label(first.kpi)} against {kpi_label(second_kpi)}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, front


def slice_chart(
    result: OptimizationResult, title: str = "Each decision against the objective"
) -> Figure:
    """The objective of every trial against each decision variable (in dollars, reps...)."""
    objective = result.spec.objectives()[0]
    trials = result.trials[result.trials["state"] == "complete"]
    paths = result.spec.decision_paths()
    fig, axes = _figure((3.2 * len(paths), 3.2), 1, len(paths), sharey=True, squeeze=False)
    for ax, path in zip(axes[0], paths, strict=True):
        x = trials[path]
        numeric = pd.api.types.is_numeric_dtype(x)
        ax.scatter(
            x if numeric else x.astype(str),
            trials[objective.kpi],
            s=12,
            c=trials["trial"],
            cmap="viridis",
        )
        name = path.removeprefix("sources.").removesuffix(".budget_per_week_usd")
        ax.set_xlabel(f"{name} (USD a week)" if path.endswith("budget_per_week_usd") else name)
        if numeric:
            ax.xaxis.set_major_formatter(_plain_numbers)
    axes[0][0].set_ylabel(axis_label(objective.kpi))
    axes[0][0].yaxis.set_major_formatter(_plain_numbers)
    fig.suptitle(title + " (colour: trial number)")
    fig.tight_layout()
    return fig


def team_size_chart(
    table: pd.DataFrame, sources: list[str], objective: str, title: str = "Best mix by team size"
) -> Figure:
    """Stacked weekly dollars by source of the optimum at each team size, objective on top."""
    fig, ax = _figure((7, 4.2))
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for source in sources:
        amounts = table[source].astype(float).fillna(0).to_numpy()
        ax.bar(x, amounts, bottom=bottom, color=source_color(source), label=source)
        bottom += amounts
    for k, (_, row) in enumerate(table.iterrows()):
        text = (
            f"{kpi_label(objective)} {kpi_value(objective, float(row[objective]))}"
            if row["feasible"]
            else "no mix meets the constraints"
        )
        ax.annotate(text, (k, bottom[k]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [f"{n} reps" for n in table.index])
    ax.set_ylabel("weekly budget (USD)")
    ax.yaxis.set_major_formatter(_plain_numbers)
    ax.set_ylim(0, max(bottom.max(), 1) * 1.15)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def headline(result: OptimizationResult, team_table: pd.DataFrame | None = None) -> dict[str, Any]:
    """The headline numbers of the report: the answer, for JSON and batch indexes."""
    data = result.to_dict()
    objective = result.spec.objectives()[0].kpi
    summary: dict[str, Any] = {"trials": data["trials"]["total"]}
    rec = data["recommendation"]
    if rec is not None:
        summary[objective] = rec["estimates"][objective]["mean"]
        for path, value in rec["decision"].items():
            summary[path.removeprefix("sources.").removesuffix(".budget_per_week_usd")] = value
    data.pop("candidates", None)
    data.pop("path", None)
    out: dict[str, Any] = {
        "kind": "budget_mix",
        "conclusion": data.pop("sentence"),
        **data,
        "summary": summary,
    }
    table = result.choice.table
    if CURRENT in table.index:  # the current split and its estimates, as the page states them
        row = table.loc[CURRENT]
        out["current"] = {
            "decision": {p: clean(row[p]) for p in result.spec.decision_paths() if p in row},
            "estimates": {
                kpi: {
                    k: clean(row[c])
                    for k, c in zip(INTERVAL, (kpi, f"{kpi}_low", f"{kpi}_high"), strict=True)
                }
                for kpi in result.spec.kpis()
                if kpi in row
            },
        }
    if team_table is not None:
        out["by_team_size"] = [
            {str(k): clean(v) for k, v in row.items()}
            for row in team_table.reset_index().to_dict(orient="records")
        ]
    return out


#: An estimate's keys in the headline JSON.
INTERVAL = ("mean", "ci_low", "ci_high")


# One-sentence takeaways, one per figure, written from the result.


def allocation_takeaway(result: OptimizationResult) -> str:
    """How the recommended split moves money between sources, against the current one."""
    budget = result.spec.budget
    best = result.recommended
    if budget is None or best is None or best == CURRENT:
        return "The current mix is the one to keep: no candidate beats it significantly."
    table = result.choice.table
    moves = {
        source: float(table.loc[best, budget_path(source)])
        - float(table.loc[CURRENT, budget_path(source)])
        for source in budget.sources
    }
    up = max(moves, key=lambda s: moves[s])
    down = min(moves, key=lambda s: moves[s])
    return (
        f"The recommended mix moves the most money into {up} ({money(moves[up])} a week more) "
        f"and out of {down} ({money(-moves[down])} a week less) than the current one."
    )


def convergence_takeaway(result: OptimizationResult) -> str:
    """When the search found its best feasible trial, and how many broke a constraint."""
    objective = result.spec.objectives()[0]
    trials = result.trials[result.trials["state"] == "complete"]
    feasible = trials[trials["feasible"].astype(bool)]
    broke = len(trials) - len(feasible)
    if feasible.empty:
        return f"None of the {len(trials)} trials met the constraints."
    values = feasible[objective.kpi].astype(float)
    at = int(feasible.loc[values.idxmin() if objective.minimize else values.idxmax(), "trial"])
    return (
        f"The best feasible trial was trial {at} of {len(trials)}; {broke} "
        f"trial{'s' if broke != 1 else ''} broke a constraint."
    )


def team_size_takeaway(
    table: pd.DataFrame, objective: str, result: OptimizationResult | None = None
) -> str:
    """The objective of the best mix at the smallest and the largest team.

    With the main ``result``, a search at the current team that found a better mix
    than the recommendation is said, so that the page never leaves the two side by
    side unexplained.
    """
    rows = table[table["feasible"].astype(bool)]
    if rows.empty:
        return "No mix meets the constraints at any team size."
    first, last = rows.index[0], rows.index[-1]
    text = f"With {first} reps the best mix gives {kpi_label(objective)} "
    text += kpi_value(objective, float(rows.loc[first, objective]))
    if last != first:
        text += f"; with {last} reps, {kpi_value(objective, float(rows.loc[last, objective]))}"
    text += "."
    best = result.best if result is not None else None
    if result is None or best is None:
        return text
    from simfunnel.optimization.spec import base_scenario

    own = int(base_scenario(result.spec).team.reps)
    minimize = result.spec.objectives()[0].minimize
    if own not in rows.index:
        return text
    found, recommended = float(rows.loc[own, objective]), float(best[objective])
    if (found < recommended) if minimize else (found > recommended):
        reps = int(best["team.reps"]) if "team.reps" in best.index else own
        with_team = f" with {reps} reps" if reps != own else ""
        text += (
            f" At your {own} reps, a search of its own found {kpi_label(objective)} "
            f"{kpi_value(objective, found)}, better than the recommendation's "
            f"{kpi_value(objective, recommended)}{with_team}: the two searches differ by "
            "chance; run more trials and replications before acting on either."
        )
    return text


def team_size_table(table: pd.DataFrame, sources: list[str], objective: str) -> pd.DataFrame:
    """The search by team size for people: the split at each size, its objective, a verdict.

    ``table`` is :func:`~simfunnel.optimization.optimize_by_team_size`'s; sources and
    KPIs by their labels, dollars as money, the objective with its interval.
    """
    rows = []
    for reps, row in table.iterrows():
        out: dict[str, Any] = {"team": f"{reps} reps"}
        if not bool(row["feasible"]):
            out["verdict"] = "no mix meets the constraints"
            rows.append(out)
            continue
        out["verdict"] = (
            "keep the current split" if row["candidate"] == CURRENT else "change the split"
        )
        for source in sources:
            out[source.replace("_", " ")] = money(float(row[source]))
        out[kpi_label(objective)] = (
            f"{kpi_value(objective, float(row[objective]))} "
            f"({kpi_value(objective, float(row[objective + '_low']))} to "
            f"{kpi_value(objective, float(row[objective + '_high']))})"
        )
        rows.append(out)
    return pd.DataFrame(rows).set_index("team").fillna("")

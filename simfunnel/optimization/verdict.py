"""The verdict of an optimisation, written once: change the setup, or keep it.

Every optimise answer (``simfunnel optimize``, the ``budget_mix`` report, the search
by team size) takes its recommendation and its sentence from :func:`verdict`:

- a change is recommended only when it is significantly better than the current
  setup on the objective (its paired interval against the current setup excludes no
  change), or when the current setup breaks a constraint that the change meets;
- otherwise the verdict is to keep the current split, and says by how much at most
  anything tried beats it: "keep the current split; nothing tried beats it by more
  than 2%";
- a change of team size is recommended only when it beats the best split at the
  current team, and its cost is named (the reps' paid hours a week).

No sentence prints a dict or a dotted identifier: budgets by source, reps, and
settings by their labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from simfunnel.experiments.comparison import Comparison
from simfunnel.optimization.answer import (
    common_feature,
    constraint_words,
    describe_decision,
    kpi_interval,
    kpi_label,
    kpi_value,
    money,
    percent,
)
from simfunnel.optimization.select import CURRENT, Choice
from simfunnel.optimization.spec import OptimizeSpec, base_scenario

TEAM = "team.reps"


@dataclass(frozen=True)
class Verdict:
    """What to do, and why.

    Attributes
    ----------
    kind
        ``"keep"`` (the current setup), ``"change"`` (significantly better), ``"fix"``
        (the current setup breaks a constraint that the change meets) or ``"none"``
        (nothing tried meets every constraint).
    label
        The candidate recommended (:data:`~simfunnel.optimization.select.CURRENT` to
        keep), or None.
    lead
        The sentence that leads the answer.
    versus
        The paired comparison of the recommendation with the current setup, on the
        objective (:meth:`~simfunnel.Comparison.table` row), or None.
    """

    kind: str
    label: str | None
    lead: str
    versus: pd.Series | None = None


def paired_change(choice: Choice, label: str, against: str, kpi: str, confidence: float) -> Any:
    """``label`` against ``against`` on ``kpi``, paired on the selection's common seeds."""
    runs = choice.runs
    pair = runs[runs["scenario"].isin([against, label]) & (runs["status"] == "ok")]
    if pair["scenario"].nunique() != 2:
        return None
    comparison = Comparison(
        runs=pair[["scenario", "replication", kpi]],
        baseline=against,
        confidence=confidence,
        order=(against, label),
    )
    return comparison.table([kpi]).loc[(kpi, label)]


def versus_current(choice: Choice, label: str, kpis: list[str], confidence: float) -> Any:
    """``label`` against the current setup on each of ``kpis`` (Comparison rows), or None."""
    if label == CURRENT:
        return None
    if label == choice.best and choice.versus_current is not None:
        return choice.versus_current
    runs = choice.runs
    pair = runs[runs["scenario"].isin([CURRENT, label]) & (runs["status"] == "ok")]
    if pair["scenario"].nunique() != 2:
        return None
    comparison = Comparison(
        runs=pair[["scenario", "replication", *kpis]],
        baseline=CURRENT,
        confidence=confidence,
        order=(CURRENT, label),
    )
    return comparison.table(kpis).xs(label, level="scenario")


def better(row: Any, minimize: bool) -> bool:
    """Whether a paired row shows a significant improvement (right direction, excludes 0)."""
    if row is None:
        return False
    low, high = float(row["rel_low"]), float(row["rel_high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = float(row["diff_low"]), float(row["diff_high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return False
    return high < 0 if minimize else low > 0


def margin(row: Any, minimize: bool) -> tuple[str, str]:
    """How much a try beats the current setup: ``("2%", "-2% (95% CI -19% to +19%)")``."""
    if row is None:
        return "0%", "no paired replications"
    rel, low, high = (float(row[k]) for k in ("rel_change", "rel_low", "rel_high"))
    if not all(math.isfinite(v) for v in (rel, low, high)):
        return "0%", "an undefined relative change"
    gain = -rel if minimize else rel
    return (
        percent(max(gain, 0.0)),
        f"{percent(rel, signed=True)}, 95% CI {percent(low, signed=True)} to "
        f"{percent(high, signed=True)}",
    )


def rep_week_cost(spec: OptimizeSpec) -> float:
    """What one rep costs a week: loaded hourly cost x paid hours a week."""
    team = base_scenario(spec).team
    return float(team.loaded_cost_per_hour_usd) * float(team.shift_hours) * len(team.working_days)


def team_cost(spec: OptimizeSpec, reps_from: int, reps_to: int) -> str:
    """``3 more reps, about $7,200 a week in paid hours`` (or fewer, saving it)."""
    change = int(reps_to) - int(reps_from)
    amount = money(abs(change) * rep_week_cost(spec))
    noun = "rep" if abs(change) == 1 else "reps"
    if change > 0:
        return f"{change} more {noun} than your {reps_from}, about {amount} a week in paid hours"
    return f"{-change} {noun} fewer than your {reps_from}, saving about {amount} a week"


def _reps(table: pd.DataFrame, label: str) -> int | None:
    return int(table.loc[label, TEAM]) if TEAM in table.columns else None


def verdict(spec: OptimizeSpec, choice: Choice) -> Verdict:
    """The recommendation of an optimisation and the sentence that leads its answer."""
    thing = "split" if spec.budget is not None else "configuration"
    conf = spec.selection.confidence
    first = spec.objectives()[0]
    table = choice.table
    if choice.best is None:
        return Verdict("none", None, "")
    current_ok = CURRENT in table.index and bool(table.loc[CURRENT, "feasible"])
    label = choice.best
    team_note, team_stays = "", False
    cur_reps = _reps(table, CURRENT) if CURRENT in table.index else None
    best_reps = _reps(table, label)
    objective = kpi_label(first.kpi)
    if cur_reps is not None and best_reps is not None and best_reps != cur_reps:
        same_team = [
            x for x in table.index if bool(table.loc[x, "feasible"]) and _reps(table, x) == cur_reps
        ]
        if same_team:
            means = table.loc[same_team, first.kpi].astype(float)
            at_team = str(means.idxmin() if first.minimize else means.idxmax())
            row = paired_change(choice, label, at_team, first.kpi, conf)
            if better(row, first.minimize):
                team_note = (
                    f" It changes the team: {team_cost(spec, cur_reps, best_reps)}; that beats "
                    f"the best {thing} at your {cur_reps} reps on {objective} "
                    f"({margin(row, first.minimize)[1]})."
                )
            else:
                team_note = (
                    f" A team of {best_reps} did no better on {objective} than the best {thing} "
                    f"at your {cur_reps} reps ({margin(row, first.minimize)[1]}), so the team "
                    "stays."
                )
                team_stays = at_team != CURRENT
                label = at_team
        else:
            team_note = (
                f" No {thing} tried at your {cur_reps} reps meets every constraint; this one "
                f"needs {team_cost(spec, cur_reps, best_reps)}."
            )
    if label == CURRENT and choice.best == CURRENT:
        return Verdict("keep", CURRENT, f"Keep your current {thing}: no {thing} tried does better.")
    if label == CURRENT:  # the best try changed the team, and did not beat this team's best
        label = str(choice.best)
    decision = {p: table.loc[label, p] for p in spec.decision_paths()}
    versus = paired_change(choice, label, CURRENT, first.kpi, conf)
    if not current_ok:
        broken = constraint_words(spec)
        return Verdict(
            "fix",
            label,
            f"{describe_decision(spec, decision)}: your current {thing} does not meet every "
            f"constraint ({broken}) with {100 * conf:.0f}% confidence, and this one does."
            + team_note,
            versus,
        )
    if better(versus, first.minimize):
        return Verdict("change", label, describe_decision(spec, decision) + "." + team_note, versus)
    gain, change = margin(versus, first.minimize)
    return Verdict(
        "keep",
        CURRENT,
        f"Keep your current {thing}; nothing tried beats it on {objective} by more than "
        f"{gain}: the best try changes it by {change}, which "
        f"{spec.selection.replications} replications cannot tell from no change."
        + (team_note if team_stays else ""),
        versus,
    )


def sentence(spec: OptimizeSpec, choice: Choice) -> str:
    """The answer, led by the verdict, every number with its interval.

    What to do is :func:`verdict`'s; the numbers follow it.
    """
    objectives = spec.objectives()
    first = objectives[0]
    thing = "split" if spec.budget is not None else "configuration"
    table = choice.table
    conf = f"{100 * spec.selection.confidence:.0f}%"
    said = verdict(spec, choice)
    if said.label is None:
        rules = constraint_words(spec)
        return (
            f"No {thing} tried meets every constraint ({rules}) with {conf} confidence; "
            "relax a constraint, widen the search or run more trials."
        )
    row = table.loc[said.label]
    label = kpi_label(first.kpi)
    parts = [said.lead]
    estimate = (
        f"{label} {kpi_value(first.kpi, row[first.kpi])} ({conf} CI "
        f"{kpi_interval(first.kpi, row[first.kpi + '_low'], row[first.kpi + '_high'])})"
    )
    if said.kind == "keep":
        estimate += f" with your current {thing}"
    v = said.versus
    if said.kind in ("change", "fix") and v is not None:
        rel, lo, hi = float(v["rel_change"]), float(v["rel_low"]), float(v["rel_high"])
        # the words follow the interval shown (the paired interval of the ratio)
        if math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0):
            word = "below" if rel < 0 else "above"
            a, b = sorted((abs(lo), abs(hi)))
            estimate += (
                f", {percent(abs(rel))} {word} your current {thing} "
                f"({conf} CI {100 * a:.0f}-{100 * b:.0f}%)"
            )
        elif math.isfinite(lo) and math.isfinite(hi):
            estimate += (
                f", not distinguishable from your current {thing} "
                f"({percent(rel, signed=True)}, {conf} CI {percent(lo, signed=True)} "
                f"to {percent(hi, signed=True)})"
            )
    parts.append(estimate + ".")
    for o in objectives[1:]:
        parts.append(
            f"{kpi_label(o.kpi)} {kpi_value(o.kpi, row[o.kpi])} ({conf} CI "
            f"{kpi_interval(o.kpi, row[o.kpi + '_low'], row[o.kpi + '_high'])})."
        )
    for c in spec.constraint_list():
        word = "upper" if c.op == "<=" else "lower"
        parts.append(
            f"{kpi_label(c.kpi)} {kpi_value(c.kpi, row[c.kpi])}, within your limit of "
            f"{kpi_value(c.kpi, c.value)} ({word} {conf} bound "
            f"{kpi_value(c.kpi, row[c.kpi + '_bound'])})."
            if c.violation(row[c.kpi + "_bound"]) <= 0
            else f"{kpi_label(c.kpi)} {kpi_value(c.kpi, row[c.kpi])}, against your limit of "
            f"{kpi_value(c.kpi, c.value)} ({word} {conf} bound "
            f"{kpi_value(c.kpi, row[c.kpi + '_bound'])})."
        )
    if len(objectives) > 1:
        parts.append(
            f"{len(choice.front)} mix(es) form the Pareto front of "
            f"{', '.join(kpi_label(o.kpi) for o in objectives)}."
        )
    elif said.kind != "keep" and said.label == choice.best and choice.tied:
        n = len(choice.tied)
        one, many = ("mix", "mixes") if spec.budget else ("configuration", "configurations")
        noun = f"{one} is" if n == 1 else f"{many} are"
        tied_decisions = [
            {p: table.loc[x, p] for p in spec.decision_paths()} for x in [choice.best, *choice.tied]
        ]
        common = common_feature(spec, tied_decisions)
        parts.append(f"{n} other {noun} statistically tied" + (f"; {common}." if common else "."))
    elif said.kind != "keep" and said.label == choice.best:
        parts.append(f"No other {thing} re-run is statistically tied with it.")
    return " ".join(parts)

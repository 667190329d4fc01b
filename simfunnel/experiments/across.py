"""The same comparison at several settings of one parameter, and where the answer changes.

The answer to "volume or quality?" depends on the team that works the leads: a small
team drowns in cheap leads, a large one works them all. :func:`compare_across` runs
every strategy at every level of a parameter (``team.reps`` by default) with common
random numbers (replication i uses the same seed at every level and for every
strategy), and :meth:`AcrossComparison.verdict` says, per level, which strategy is
best on a KPI, or which are statistically tied, and where that changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend
from simfunnel.experiments.comparison import (
    Comparison,
    check_baseline,
    check_strategies,
    run_paired,
    tidy_runs,
)
from simfunnel.experiments.replications import ScenarioLike, t_interval
from simfunnel.experiments.runner import PointTask
from simfunnel.limits import check_limits
from simfunnel.metrics import higher_is_better
from simfunnel.parameters import Scenario, load_scenario
from simfunnel.streams import replication_seed

#: KPIs compared as ratios (on the log scale) when deciding ties.
MULTIPLICATIVE = frozenset({"cac", "ltv_to_cac", "cpl", "cac_payback_months", "ltv"})

#: The KPIs the team-size view reports.
ACROSS_KPIS = ("cac", "ltv_to_cac", "revenue", "customers", "burnout_index", "profit")


@dataclass(frozen=True)
class Standing:
    """Who is best on a KPI at one level: one strategy alone, or a statistical tie."""

    best: tuple[str, ...]
    runner_up: str | None = None

    @property
    def tied(self) -> bool:
        """True when no strategy is significantly better than all the others."""
        return len(self.best) > 1


@dataclass(frozen=True)
class AcrossComparison:
    """Comparisons of the same strategies at each level of one parameter.

    Attributes
    ----------
    parameter
        The dotted path that was varied, e.g. ``team.reps``.
    levels
        Its values, in the order given.
    comparisons
        One :class:`~simfunnel.experiments.comparison.Comparison` per level.
    """

    parameter: str
    levels: tuple[Any, ...]
    comparisons: dict[Any, Comparison] = field(repr=False)

    @property
    def scenarios(self) -> list[str]:
        """Strategy names, baseline first."""
        return self.comparisons[self.levels[0]].scenarios

    @property
    def confidence(self) -> float:
        """Level of every interval."""
        return self.comparisons[self.levels[0]].confidence

    def table(self, kpis: tuple[str, ...] | list[str] = ACROSS_KPIS) -> pd.DataFrame:
        """Mean, interval and paired difference per level, KPI and strategy."""
        parts = []
        for level in self.levels:
            part = self.comparisons[level].table(list(kpis)).reset_index()
            part.insert(0, self.parameter, level)
            parts.append(part)
        return pd.concat(parts, ignore_index=True).set_index([self.parameter, "kpi", "scenario"])

    def standing(self, level: Any, kpi: str = "cac") -> Standing:
        """The best strategy on ``kpi`` at ``level``, or the set statistically tied for best.

        A strategy is tied with the best when the paired t interval of their
        difference (common random numbers) includes zero. For a KPI that is a ratio of
        positive amounts (CAC, LTV/CAC, CPL, payback) the difference is taken of the
        logarithms, that is the interval of the ratio of the two strategies' values:
        such KPIs vary by factors, and one replication with few customers would
        otherwise swamp the interval.
        """
        runs = self.comparisons[level].runs
        wide = runs.pivot(index="replication", columns="scenario", values=kpi)
        sign = -1.0 if higher_is_better(kpi) else 1.0
        means = {s: float(np.nanmean(wide[s].to_numpy(dtype=float))) for s in self.scenarios}
        order = sorted(
            means, key=lambda s: sign * means[s] if math.isfinite(means[s]) else math.inf
        )
        best = order[0]
        tied = [best]
        for other in order[1:]:
            x, y = wide[other].to_numpy(dtype=float), wide[best].to_numpy(dtype=float)
            if (
                kpi in MULTIPLICATIVE
                and (x[np.isfinite(x)] > 0).all()
                and (y[np.isfinite(y)] > 0).all()
            ):
                with np.errstate(divide="ignore", invalid="ignore"):
                    x, y = np.log(x), np.log(y)
            _, low, high = t_interval(x - y, self.confidence)
            if not (math.isfinite(low) and (low > 0 or high < 0)):
                tied.append(other)
        rest = [s for s in order if s not in tied]
        return Standing(best=tuple(tied), runner_up=rest[0] if rest else None)

    def verdict(self, kpi: str = "cac") -> str:
        """One sentence: who is best on ``kpi`` at which levels, and where it changes."""
        label = _kpi_words(kpi)
        groups: list[tuple[list[Any], Standing]] = []
        for level in self.levels:
            standing = self.standing(level, kpi)
            if groups and groups[-1][1].best == standing.best:
                groups[-1][0].append(level)
            else:
                groups.append(([level], standing))
        clauses = []
        for i, (levels, standing) in enumerate(groups):
            where = self._where(levels, first=i == 0, last=i == len(groups) - 1)
            if standing.tied:
                names = " and ".join(standing.best)
                clauses.append(f"{where} {names} are statistically tied on {label}")
            else:
                clauses.append(f"{where} {standing.best[0]} has the {label}")
        sentence = "; ".join(clauses)
        sentence = sentence[0].upper() + sentence[1:]
        if len(groups) == 1:
            return f"{sentence}: the answer does not change over the sizes tried."
        spans = [
            f"between {self._level_words(a[0][-1])} and {self._level_words(b[0][0])}"
            for a, b in pairwise(groups)
        ]
        changes = spans[0] if len(spans) == 1 else ", ".join(spans[:-1]) + " and " + spans[-1]
        return f"{sentence}. The answer changes {changes}."

    def _level_words(self, level: Any) -> str:
        if self.parameter == "team.reps":
            return f"{level} reps"
        return f"{self.parameter} = {level}"

    def _where(self, levels: list[Any], first: bool, last: bool) -> str:
        lo, hi = self._level_words(levels[0]), self._level_words(levels[-1])
        if len(self.levels) == len(levels):
            return f"at every {'team size' if self.parameter == 'team.reps' else 'level'} tried"
        if first:
            return f"up to {hi}"
        if last:
            return f"from {lo}"
        return f"from {lo} to {hi}" if lo != hi else f"at {lo}"


def _kpi_words(kpi: str) -> str:
    names = {
        "cac": "lowest CAC",
        "ltv_to_cac": "highest LTV/CAC",
        "revenue": "highest revenue",
        "customers": "most customers",
        "burnout_index": "lowest burnout",
        "profit": "highest profit",
        "cac_payback_months": "fastest CAC payback",
        "lifetime_revenue": "highest lifetime revenue",
    }
    if kpi in names:
        return names[kpi]
    return f"{'highest' if higher_is_better(kpi) else 'lowest'} {kpi.replace('_', ' ')}"


def compare_across(
    scenarios: list[ScenarioLike] | tuple[ScenarioLike, ...],
    vary: dict[str, list[Any]] | None = None,
    n: int = 20,
    seed: int | None = None,
    *,
    baseline: str | None = None,
    overrides: dict[str, Any] | None = None,
    confidence: float = 0.95,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    max_leads: int | None = None,
    max_runs: int | None = None,
) -> AcrossComparison:
    """Compare strategies at every level of one parameter, with common random numbers.

    Parameters
    ----------
    scenarios
        Two or more strategies (bundled names, files, dicts or Scenarios).
    vary
        One dotted path and its levels, e.g. ``{"team.reps": [6, 9, 12, 16]}``
        (the default: the first scenario's team at half, 1x, 1.5x and 2x).
    n, seed, baseline, overrides, confidence, backend, workers, scheduler, progress
        As for :func:`simfunnel.compare`; ``overrides`` apply at every level.
    max_leads, max_runs
        As for :func:`simfunnel.compare`; the runs are counted over every level.
    """
    check_strategies(len(scenarios), n)
    first = load_scenario(scenarios[0], overrides)
    if vary is None:
        reps = first.team.reps
        vary = {"team.reps": sorted({max(1, round(reps * f)) for f in (0.5, 1, 1.5, 2)})}
    if len(vary) != 1:
        raise SimfunnelError(f"vary: give exactly one parameter, got {len(vary)}")
    ((parameter, levels),) = vary.items()
    levels = list(levels)
    if not levels:
        raise SimfunnelError(f"vary: {parameter} has no levels")
    if len(set(map(str, levels))) != len(levels):
        raise SimfunnelError(f"vary: {parameter} repeats a level")
    loaded = {
        level: [load_scenario(s, {**(overrides or {}), parameter: level}) for s in scenarios]
        for level in levels
    }
    labels = [s.name for s in loaded[levels[0]]]
    baseline = check_baseline(labels, baseline)
    root = first.run.seed if seed is None else seed
    check_limits([sc for group in loaded.values() for sc in group], n, max_leads, max_runs, root)
    seeds = [replication_seed(root, i) for i in range(n)]
    tasks = [
        PointTask(
            f"{k}\t{sc.name}", {}, (seeds[i],), (i,), sc.model_dump(mode="json"), None, max_leads
        )
        for k, level in enumerate(levels)
        for i in range(n)
        for sc in loaded[level]
    ]

    def describe(point: str) -> str:
        k_text, name = point.split("\t", 1)
        return f"{name} at {parameter} = {levels[int(k_text)]},"

    rows: dict[int, list[dict[str, Any]]] = {k: [] for k in range(len(levels))}
    for task, done in run_paired(tasks, backend, workers, scheduler, progress, describe):
        k_text, name = task.point.split("\t", 1)
        rows[int(k_text)].extend({"scenario": name, **row} for row in done)
    comparisons = {
        level: Comparison(
            runs=tidy_runs(rows[k]),
            baseline=baseline,
            confidence=confidence,
            order=tuple(labels),
        )
        for k, level in enumerate(levels)
    }
    return AcrossComparison(parameter=parameter, levels=tuple(levels), comparisons=comparisons)


def levels_of(
    scenario: ScenarioLike, vary: dict[str, list[Any]], overrides: dict[str, Any] | None = None
) -> tuple[list[Scenario], str]:
    """One strategy at each level of one parameter, as scenarios to compare, and the baseline.

    How one strategy fares across team sizes: ``compare(levels_of(s, {"team.reps": [6,
    9, 12]})[0])`` runs it at each level with common random numbers, so the differences
    between levels are paired. Each is named ``<name> at <parameter>=<level>``; the
    baseline is the level the scenario has itself, when it is among them, else the first.
    """
    if len(vary) != 1:
        raise SimfunnelError(f"vary: give exactly one parameter, got {len(vary)}")
    ((parameter, levels),) = vary.items()
    if len(levels) < 2:
        raise SimfunnelError(f"vary: {parameter} needs at least two levels for one scenario")
    if len(set(map(str, levels))) != len(levels):
        raise SimfunnelError(f"vary: {parameter} repeats a level")
    base = load_scenario(scenario, overrides)
    raw = base.model_dump(mode="json")
    own: Any = raw
    for part in parameter.split("."):
        own = own.get(part) if isinstance(own, dict) else None
    out = []
    for level in levels:
        at = load_scenario(base, {parameter: level})
        out.append(at.model_copy(update={"name": f"{base.name} at {parameter}={level}"[:64]}))
    names = [s.name for s in out]
    baseline = next((n for n, v in zip(names, levels, strict=True) if str(v) == str(own)), None)
    return out, baseline or names[0]


__all__ = ["ACROSS_KPIS", "AcrossComparison", "Standing", "compare_across", "levels_of"]

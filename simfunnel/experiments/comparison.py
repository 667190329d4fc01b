"""Paired comparison of strategies with common random numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend, Done
from simfunnel.experiments.replications import ScenarioLike, backend_context, t_interval
from simfunnel.experiments.runner import PointTask, run_point
from simfunnel.metrics import KPI_NAMES
from simfunnel.parameters import load_scenario
from simfunnel.streams import replication_seed

#: The KPIs a comparison shows first.
HEADLINE_KPIS = (
    "cac",
    "burnout_index",
    "revenue",
    "customers",
    "total_cost",
    "leads",
    "median_response_hours",
    "stale_share",
    "reps_quit",
)


@dataclass(frozen=True)
class Comparison:
    """Runs of several scenarios with common random numbers, and their comparison.

    Attributes
    ----------
    runs
        One row per scenario and replication: ``scenario, replication, seed`` and KPIs.
    baseline
        The scenario the others are compared with.
    confidence
        Level of every interval.
    """

    runs: pd.DataFrame
    baseline: str
    confidence: float = 0.95
    order: tuple[str, ...] = ()

    @property
    def scenarios(self) -> list[str]:
        """Scenario labels, baseline first, then in the order they were given."""
        labels = list(self.order) or list(dict.fromkeys(self.runs["scenario"]))
        return [self.baseline] + [x for x in labels if x != self.baseline]

    def table(self, kpis: tuple[str, ...] | list[str] | None = None) -> pd.DataFrame:
        """Per KPI and scenario: mean and interval; paired difference against the baseline.

        Columns: ``n, mean, ci_low, ci_high, n_pairs, diff, diff_low, diff_high,
        rel_change, rel_low, rel_high, significant, paired_half_width,
        unpaired_half_width``. The relative change is the mean difference over the
        baseline's mean; its interval is a paired bootstrap percentile interval of the
        ratio of means minus one (2,000 resamples of the replications, fixed seed), so
        a positive KPI's change never reads beyond -100%. ``significant`` is true when
        the paired t interval of the difference excludes zero. A replication where a
        KPI is undefined (CAC without customers) is left out of that KPI: ``n`` counts
        the values behind the mean, ``n_pairs`` the replications behind the difference.
        """
        kpis = list(kpis or KPI_NAMES)
        wide = self.runs.pivot(index="replication", columns="scenario")
        rows = []
        for kpi in kpis:
            base = wide[(kpi, self.baseline)].to_numpy(dtype=float)
            base_mean = float(np.nanmean(base)) if np.isfinite(base).any() else math.nan
            for label in self.scenarios:
                x = wide[(kpi, label)].to_numpy(dtype=float)
                mean, low, high = t_interval(x, self.confidence)
                row: dict[str, Any] = {
                    "kpi": kpi,
                    "scenario": label,
                    "n": int(np.isfinite(x).sum()),
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_pairs": int((np.isfinite(x) & np.isfinite(base)).sum()),
                }
                if label == self.baseline:
                    row.update(
                        diff=0.0,
                        diff_low=0.0,
                        diff_high=0.0,
                        rel_change=0.0,
                        rel_low=0.0,
                        rel_high=0.0,
                        significant=False,
                        paired_half_width=0.0,
                        unpaired_half_width=0.0,
                    )
                else:
                    d_mean, d_low, d_high = t_interval(x - base, self.confidence)
                    rel_low, rel_high = _ratio_interval(x, base, self.confidence)
                    row.update(
                        diff=d_mean,
                        diff_low=d_low,
                        diff_high=d_high,
                        rel_change=d_mean / base_mean if base_mean else math.nan,
                        rel_low=rel_low,
                        rel_high=rel_high,
                        significant=bool(d_low > 0 or d_high < 0),
                        paired_half_width=(d_high - d_low) / 2,
                        unpaired_half_width=_welch_half_width(x, base, self.confidence),
                    )
                rows.append(row)
        return pd.DataFrame(rows).set_index(["kpi", "scenario"])

    def headline(self) -> pd.DataFrame:
        """:meth:`table` restricted to the headline KPIs."""
        return self.table(HEADLINE_KPIS)


def _ratio_interval(
    x: np.ndarray, base: np.ndarray, confidence: float, resamples: int = 2000
) -> tuple[float, float]:
    """Paired bootstrap percentile interval of mean(x) / mean(base) - 1."""
    ok = np.isfinite(x) & np.isfinite(base)
    x, base = x[ok], base[ok]
    if len(x) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = x[idx].mean(axis=1) / base[idx].mean(axis=1) - 1.0
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def _welch_half_width(x: np.ndarray, y: np.ndarray, confidence: float) -> float:
    from scipy import stats

    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        return math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if vx + vy == 0:
        return 0.0
    dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return float(stats.t.ppf(0.5 + confidence / 2, dof) * math.sqrt(vx + vy))


def compare(
    scenarios: list[ScenarioLike] | tuple[ScenarioLike, ...],
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
) -> Comparison:
    """Run every scenario ``n`` times with common random numbers and compare them.

    Replication i of every scenario uses the same seed, and within a run each source
    and mechanism has its own stream, so the scenarios face the same luck and their
    paired differences are far less noisy than their separate means.

    Parameters
    ----------
    scenarios
        Scenarios (bundled names, paths, dicts or Scenario objects) with unique names.
    n
        Replications per scenario.
    seed
        Root seed; defaults to the first scenario's ``run.seed``.
    baseline
        Name of the scenario to compare against (default: the first).
    overrides
        Dotted-path overrides applied to every scenario.
    backend, workers, scheduler, progress
        As for :func:`simfunnel.replicate`.
    """
    if len(scenarios) < 2:
        raise SimfunnelError("compare needs at least two scenarios")
    if n < 2:
        raise SimfunnelError(f"n: need at least 2 replications for an interval, got {n}")
    loaded = [load_scenario(s, overrides) for s in scenarios]
    labels = [s.name for s in loaded]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise SimfunnelError(f"scenario names must differ, repeated: {', '.join(repeated)}")
    baseline = baseline or labels[0]
    if baseline not in labels:
        raise SimfunnelError(f"baseline: {baseline!r} is not one of {', '.join(labels)}")
    root = loaded[0].run.seed if seed is None else seed
    seeds = [replication_seed(root, i) for i in range(n)]
    tasks = [
        PointTask(sc.name, {}, (seeds[i],), (i,), sc.model_dump(mode="json"))
        for i in range(n)
        for sc in loaded
    ]
    rows: list[dict[str, Any]] = []
    with (
        backend_context(backend, workers, scheduler) as pool,
        tqdm(total=len(tasks), disable=not progress, desc="compare", unit="run") as bar,
    ):
        for task, outcome in pool.map(run_point, tasks):
            if not isinstance(outcome, Done):
                raise SimfunnelError(
                    f"{task.point} replication {task.replications[0]} failed: {outcome.error}"
                )
            rows.extend({"scenario": task.point, **row} for row in outcome.value)
            bar.update(1)
    runs = pd.DataFrame(rows).sort_values(["scenario", "replication"]).reset_index(drop=True)
    return Comparison(runs=runs, baseline=baseline, confidence=confidence, order=tuple(labels))

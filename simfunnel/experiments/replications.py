"""Replications of one scenario, with confidence intervals and sequential stopping."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend, Done, make_backend
from simfunnel.experiments.runner import PointTask, run_point
from simfunnel.limits import check_runs, check_scenario
from simfunnel.metrics import KPI_NAMES
from simfunnel.parameters import Scenario, load_scenario
from simfunnel.streams import check_seed, replication_seed

ScenarioLike = Scenario | str | Path | dict[str, Any]


@contextmanager
def backend_context(
    backend: str | Backend[Any], workers: int | None = None, scheduler: str | None = None
) -> Iterator[Backend[Any]]:
    """Use a backend instance as given (the caller closes it), or make one by name."""
    if isinstance(backend, Backend):
        with nullcontext(backend) as given:
            yield given
    else:
        with make_backend(backend, workers, scheduler) as made:
            yield made


def rounding(*samples: np.ndarray) -> float:
    """A spread this small is rounding, not variation, at the samples' scale."""
    return 1e-12 * max(1.0, *(float(np.abs(v).max(initial=0.0)) for v in samples))


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of ``values`` (NaNs dropped).

    The interval is scipy's (``ttest_1samp(...).confidence_interval``); values that are
    all equal give a zero-width interval at their mean.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    if np.ptp(x) <= rounding(x):
        # no spread beyond rounding: scipy would warn of precision loss and agree
        return mean, mean, mean
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return mean, float(ci.low), float(ci.high)


def kpi_interval(
    kpi: str, values: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean and confidence interval of a KPI that respects the KPI's bounds.

    Student's t (:func:`t_interval`) where it stays within the values the KPI can take
    (:func:`~simfunnel.metrics.kpi_bounds`: a burnout index in 0-1, a count at least 0);
    where it would cross a bound, as a t interval does for a burnout near 0 from few
    replications, scipy's bootstrap of the mean on the KPI's own scale instead (BCa,
    else percentile): its bounds are means of resampled values, so they stay in range.
    """
    from simfunnel.metrics import kpi_bounds

    mean, low, high = t_interval(values, confidence)
    floor, ceiling = kpi_bounds(kpi)
    if not (math.isfinite(low) and math.isfinite(high)) or (low >= floor and high <= ceiling):
        return mean, low, high
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    for method in ("BCa", "percentile"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate jackknife: percentile then
            res = stats.bootstrap(
                (x,),
                np.mean,
                vectorized=True,
                confidence_level=confidence,
                n_resamples=2000,
                method=method,
                random_state=np.random.default_rng(0),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return mean, max(lo, floor), min(hi, ceiling)
    return mean, max(low, floor), min(high, ceiling)


#: Ratio KPIs pooled over replications as a finance reader expects them: total over
#: total (CAC is all the cost over all the customers), not the mean of each run's ratio.
POOLED_RATIOS: dict[str, tuple[str, str]] = {
    "cpl": ("marketing_spend", "leads"),
    "cac": ("total_cost", "customers"),
    "conversion_rate": ("customers", "leads"),
    "contact_rate": ("contacted", "leads"),
    "return_on_spend": ("revenue", "total_cost"),
}


def pooled_ratio(
    runs: pd.DataFrame, numerator: str, denominator: str, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Sum of ``numerator`` over sum of ``denominator``, with a bootstrap interval.

    The interval resamples replications (scipy's paired bootstrap, BCa where it is
    defined, percentile otherwise).
    """
    from scipy import stats

    num = runs[numerator].to_numpy(dtype=float)
    den = runs[denominator].to_numpy(dtype=float)
    if den.sum() <= 0:
        return math.nan, math.nan, math.nan
    point = float(num.sum() / den.sum())
    if len(num) < 2 or np.all(num * den.sum() == den * num.sum()):
        return point, point if len(num) >= 2 else math.nan, point if len(num) >= 2 else math.nan

    def ratio(n: np.ndarray, d: np.ndarray, axis: int = -1) -> np.ndarray:
        total = d.sum(axis=axis)
        return np.where(total > 0, n.sum(axis=axis) / np.where(total > 0, total, 1), np.nan)

    for method in ("BCa", "percentile"):
        try:
            with np.errstate(all="ignore"):
                res = stats.bootstrap(
                    (num, den),
                    ratio,
                    paired=True,
                    vectorized=True,
                    confidence_level=confidence,
                    n_resamples=2000,
                    method=method,
                    random_state=np.random.default_rng(0),
                )
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        except ValueError:  # BCa needs a jackknife without degenerate resamples
            continue
        if math.isfinite(low) and math.isfinite(high):
            return point, low, high
    return point, math.nan, math.nan


def summarize(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Estimate, standard deviation, interval and relative half-width of each KPI.

    A count or a cost is the mean over replications with its Student-t interval. A
    ratio of totals in :data:`POOLED_RATIOS` (CPL, CAC, conversion and contact rates,
    return on spend) is the total over the total, with a bootstrap interval: blended
    CAC is all the cost over all the customers, which is what a finance reader expects
    (the mean of each run's CAC would weigh a run with few customers as much as one
    with many).

    Parameters
    ----------
    runs
        One row per replication (as returned by :func:`replicate`).
    confidence
        Level of the intervals.
    """
    rows = []
    for kpi in [c for c in runs.columns if c not in _META]:
        values = runs[kpi].to_numpy(dtype=float)
        parts = POOLED_RATIOS.get(kpi)
        if parts and all(p in runs.columns for p in parts):
            mean, low, high = pooled_ratio(runs, *parts, confidence=confidence)
        else:
            mean, low, high = kpi_interval(kpi, values, confidence)
        finite = values[np.isfinite(values)]
        half = (high - low) / 2
        rows.append(
            {
                "kpi": kpi,
                "n": len(finite),
                "mean": mean,
                "std": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan,
                "ci_low": low,
                "ci_high": high,
                "half_width": half,
                "rel_half_width": abs(half / mean) if mean else math.nan,
            }
        )
    return pd.DataFrame(rows).set_index("kpi")


_META = {"replication", "seed", "elapsed_seconds", "scenario", "point", "status", "error"}


def replicate(
    scenario: ScenarioLike,
    n: int = 10,
    seed: int | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    target_kpi: str | None = None,
    precision: float | None = None,
    max_n: int = 200,
    confidence: float = 0.95,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    max_leads: int | None = None,
    max_runs: int | None = None,
) -> pd.DataFrame:
    """Run ``n`` independent replications; one tidy row per replication.

    Replication i uses the seed ``replication_seed(seed, i)``, the same for every
    scenario, so two calls with the same ``seed`` are paired (common random numbers).

    Parameters
    ----------
    scenario
        A Scenario, bundled name, file path or dict.
    n
        Replications (the first batch, with sequential stopping).
    seed
        Root seed; defaults to the scenario's ``run.seed``.
    overrides
        Dotted-path overrides of the scenario.
    target_kpi, precision
        Sequential stopping: keep adding batches of ``n`` replications until the
        confidence interval of ``target_kpi`` has a relative half-width at most
        ``precision`` (e.g. 0.05), or ``max_n`` replications have run.
    backend, workers, scheduler
        Where to run: ``"serial"``, ``"processes"`` (all local cores) or ``"dask"``,
        or a backend instance to reuse.
    progress
        Show a progress bar.
    max_leads, max_runs
        Refuse, before running anything, a scenario expected to simulate more leads
        than ``max_leads`` a run, or more than ``max_runs`` replications (``max_n``
        with sequential stopping); defaults in :mod:`simfunnel.limits`.

    Raises
    ------
    SimfunnelError
        Bad arguments (nothing runs), or a replication failed.
    LimitError
        Above a limit (nothing runs).
    """
    sc = load_scenario(scenario, overrides)
    if n < 2:
        raise SimfunnelError(f"n: need at least 2 replications for an interval, got {n}")
    if (target_kpi is None) != (precision is None):
        raise SimfunnelError("give both target_kpi and precision for sequential stopping")
    if target_kpi is not None and target_kpi not in KPI_NAMES:
        raise SimfunnelError(f"target_kpi: unknown KPI {target_kpi!r}")
    if precision is not None and not 0 < precision < 1:
        raise SimfunnelError(f"precision: must be between 0 and 1, got {precision}")
    if precision is not None and max_n < n:
        raise SimfunnelError(f"max_n: must be at least n ({n}), the first batch, got {max_n}")
    root = check_seed(sc.run.seed if seed is None else seed)
    check_scenario(sc, max_leads)
    if precision is not None:
        check_runs(max_n, f"up to max_n = {max_n:,} replications", max_runs)
    else:
        check_runs(n, f"{n:,} replications", max_runs)
    raw = sc.model_dump(mode="json")
    rows: list[dict[str, Any]] = []
    with (
        backend_context(backend, workers, scheduler) as pool,
        tqdm(total=n, disable=not progress, desc=f"replicate {sc.name}", unit="run") as bar,
    ):
        done = 0
        while True:
            batch = range(done, n if done == 0 else min(max_n, done + n))
            tasks = [
                PointTask(sc.name, {}, (replication_seed(root, i),), (i,), raw, None, max_leads)
                for i in batch
            ]
            for _, outcome in pool.map(run_point, tasks):
                if not isinstance(outcome, Done):
                    raise SimfunnelError(f"a replication failed: {outcome.error}")
                rows.extend(outcome.value)
                bar.update(1)
            done = batch.stop
            if target_kpi is None or precision is None or done >= max_n:
                break
            values = np.array([r[target_kpi] for r in rows], dtype=float)
            mean, low, high = t_interval(values, confidence)
            if mean and abs((high - low) / 2 / mean) <= precision:
                break
            bar.total = min(max_n, done + n)
            bar.refresh()
    frame = pd.DataFrame(rows).sort_values("replication").reset_index(drop=True)
    frame.insert(0, "scenario", sc.name)
    return frame

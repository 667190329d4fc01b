"""The fit check: observed against simulated rates and volumes, with a verdict sentence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.calibration.fit.scale import scale_factor, scaled_overrides
from simfunnel.calibration.fit.simulator import _clean_observed, _pool, _seeds, _Simulator
from simfunnel.experiments.backends import Backend
from simfunnel.parameters import Scenario, load_scenario


@dataclass(frozen=True)
class FitCheck:
    """Observed against simulated rates and volumes, and the verdict.

    Attributes
    ----------
    table
        ``source, stage, observed, observed_low, observed_high, simulated,
        simulated_low, simulated_high, inside, off`` (``off``: simulated over
        observed, minus one). ``stage`` ``leads_per_week`` is the volume.
    verdict
        One sentence, e.g. "the calibrated model reproduces 11 of 12 observed rates
        within their 95% intervals; referral's lead->won is off by 18%".
    """

    table: pd.DataFrame
    verdict: str


def fit_check(
    scenario: Scenario,
    observed: pd.DataFrame,
    *,
    replications: int = 8,
    backend: str | Backend[Any] | None = None,
    workers: int | None = None,
    seed: int | None = None,
    world_scale: float | None = None,
    history: dict[str, Any] | None = None,
) -> FitCheck:
    """Simulate the scenario and compare each observed rate and volume with it.

    A rate is reproduced when the simulated mean lies inside the observed 95%
    interval. Volumes (``leads_per_week``) are compared with an exact Poisson interval
    of the observed count over the scenario's horizon. Simulated intervals are Student-t
    intervals of the mean over the replications. ``world_scale`` as for
    :func:`fit_by_simulation` (the simulated volumes are scaled back up), and
    ``history`` too (the run that replays the observed history).
    """
    table = _clean_observed(observed, scenario)
    seeds = _seeds(scenario, replications, seed)
    factor = scale_factor(scenario) if world_scale is None else min(world_scale, 1.0)
    base = load_scenario(
        scenario,
        {"run.accounting": "window", **(history or {}), **scaled_overrides(scenario, factor)},
    )
    sources = tuple(dict.fromkeys(table["source"]))
    with _pool(backend, workers) as pool:
        runs = _Simulator(pool, seeds, sources).run(base)
    rows: list[dict[str, Any]] = []
    for rec in table.itertuples(index=False):
        sim = runs[(runs["source"] == rec.source) & (runs["stage"] == rec.stage)]["rate"]
        mean, lo, hi = _t_interval(sim.to_numpy(float))
        rows.append(_row(rec.source, rec.stage, rec.rate, rec.low, rec.high, mean, lo, hi))
    if {"leads", "leads_per_week"} <= set(table.columns):
        for name in sources:
            mine = table[table["source"] == name].iloc[0]
            count, per_week = int(mine["leads"]), float(mine["leads_per_week"])
            weeks = count / per_week if per_week > 0 else math.nan
            low, high = _poisson_interval(count)
            volume = runs[runs["source"] == name].groupby("seed")["leads_per_week"].first()
            mean, lo, hi = _t_interval(volume.to_numpy(float) / factor)
            rows.append(
                _row(name, "leads_per_week", per_week, low / weeks, high / weeks, mean, lo, hi)
            )
    out = pd.DataFrame(rows)
    return FitCheck(out, verdict(out))


def _row(
    source: str, stage: str, obs: float, low: float, high: float, sim: float, slo: float, shi: float
) -> dict[str, Any]:
    return {
        "source": source,
        "stage": stage,
        "observed": obs,
        "observed_low": low,
        "observed_high": high,
        "simulated": sim,
        "simulated_low": slo,
        "simulated_high": shi,
        "inside": bool(low - 1e-12 <= sim <= high + 1e-12),
        "off": sim / obs - 1.0 if obs > 0 else math.nan,
    }


def _t_interval(x: np.ndarray) -> tuple[float, float, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2 or np.all(x == x[0]):
        return mean, mean, mean
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    return mean, float(ci.low), float(ci.high)


def _poisson_interval(count: int) -> tuple[float, float]:
    """Exact (Garwood) 95% interval of a Poisson count."""
    low = 0.0 if count == 0 else float(stats.chi2.ppf(0.025, 2 * count) / 2)
    high = float(stats.chi2.ppf(0.975, 2 * count + 2) / 2)
    return low, high


_STAGE_LABEL = {
    "contacted": "lead->contacted",
    "qualified": "lead->qualified",
    "opportunity": "lead->opportunity",
    "won": "lead->won",
    "leads_per_week": "leads per week",
}


def verdict(table: pd.DataFrame) -> str:
    """The fit check in one sentence: how many reproduced, and the worst miss."""
    rates = table[table["stage"] != "leads_per_week"]
    volumes = table[table["stage"] == "leads_per_week"]
    text = (
        f"the calibrated model reproduces {int(rates['inside'].sum())} of {len(rates)} "
        "observed rates within their 95% intervals"
    )
    if len(volumes):
        text += f" and {int(volumes['inside'].sum())} of {len(volumes)} weekly volumes"
    misses = table[~table["inside"]]
    if misses.empty:
        return text
    worst = misses.loc[misses["off"].abs().fillna(np.inf).idxmax()]
    off = worst["off"]
    size = f"off by {abs(off):.0%}" if math.isfinite(off) else "off"
    return (
        f"{text}; {worst['source']}'s {_STAGE_LABEL.get(worst['stage'], worst['stage'])} is {size}"
    )

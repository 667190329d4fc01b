"""Simulated moments: the scenario run at common seeds, exported, and its rates estimated.

Every evaluation runs the same replication seeds on an experiment backend, exports the
simulated leads as a CRM would, and applies the estimator of the observed rates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simfunnel.calibration.estimate.censoring import observed_rates
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.fit.parameters import _MIN_SE, _Z, RATE_STAGES, FitParameter
from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend, Done
from simfunnel.experiments.replications import backend_context
from simfunnel.parameters import Scenario, load_scenario
from simfunnel.simulation import simulate
from simfunnel.streams import check_seed, replication_seed


@dataclass(frozen=True)
class _Task:
    scenario: dict[str, Any]
    seed: int
    sources: tuple[str, ...]


def _simulated_rates(task: _Task) -> pd.DataFrame:
    """One replication's rates: the observed-rates estimator applied to its CRM export."""
    scenario = load_scenario(task.scenario)
    table = observed_rates(to_crm(simulate(scenario, seed=task.seed)))
    table = table[table["source"].isin(task.sources)]
    return table[["source", "stage", "leads", "reached", "rate", "leads_per_week"]].copy()


@contextmanager
def _pool(backend: str | Backend[Any] | None, workers: int | None) -> Iterator[Backend[Any]]:
    with backend_context("processes" if backend is None else backend, workers) as pool:
        yield pool


class _Simulator:
    """Runs the replications of a candidate scenario with fixed seeds (CRN)."""

    def __init__(
        self,
        pool: Backend[Any],
        seeds: Sequence[int],
        sources: Sequence[str],
    ) -> None:
        self.pool = pool
        self.seeds = list(seeds)
        self.sources = tuple(sources)

    def run(self, scenario: Scenario) -> pd.DataFrame:
        """One row per replication, source and stage (and a ``leads`` row each)."""
        raw = scenario.model_dump(mode="json")
        tasks = [_Task(raw, seed, self.sources) for seed in self.seeds]
        parts: dict[int, pd.DataFrame] = {}
        for task, outcome in self.pool.map(_simulated_rates, tasks):
            if not isinstance(outcome, Done):
                raise SimfunnelError(f"a calibration run failed: {outcome.error}")
            parts[task.seed] = outcome.value.assign(seed=task.seed)
        # in seed order, whichever worker finished first: the same sums on any backend
        return pd.concat([parts[seed] for seed in self.seeds], ignore_index=True)


def _pooled(runs: pd.DataFrame) -> pd.DataFrame:
    """Rate of each source and stage over the replications (the mean of their rates)."""
    return runs.groupby(["source", "stage"], sort=False)["rate"].mean().rename("simulated")


def _sparsity(table: pd.DataFrame, params: Sequence[FitParameter]) -> np.ndarray:
    """Which moments each parameter moves: finite differences perturb disjoint ones at once.

    The contact probability moves every stage of every source; a source's ready share
    moves that source's stages after contact (its effect on the team's workload, and so
    on other sources, is second order and left out of the Jacobian, not the residuals).
    """
    pattern = np.zeros((len(table), len(params)), dtype=int)
    for j, p in enumerate(params):
        if p.source is None:
            pattern[:, j] = 1
        else:
            pattern[:, j] = (
                (table["source"] == p.source) & (table["stage"] != "contacted")
            ).to_numpy()
    return pattern


def _groups(pattern: np.ndarray) -> list[list[int]]:
    """Columns that touch no common moment, so one evaluation perturbs them all."""
    groups: list[list[int]] = []
    used: list[np.ndarray] = []
    for j in range(pattern.shape[1]):
        col = pattern[:, j] > 0
        for k, rows in enumerate(used):
            if not (rows & col).any():
                groups[k].append(j)
                used[k] = rows | col
                break
        else:
            groups.append([j])
            used.append(col)
    return groups


def _central_jacobian(
    residuals: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    pattern: np.ndarray,
    groups: list[list[int]],
) -> np.ndarray:
    """Central differences of the residuals at ``x``, a step of 10% (at least 0.005).

    The moments are step functions at a fine scale (common random numbers): a step
    wide enough to see their slope gives intervals that mean something.
    """
    jac = np.zeros(pattern.shape, dtype=float)
    for group in groups:
        step = np.zeros_like(x)
        step[group] = np.maximum(0.1 * np.abs(x[group]), 0.005)
        up, down = np.minimum(x + step, high), np.maximum(x - step, low)
        diff = residuals(up) - residuals(down)
        for j in group:
            rows = pattern[:, j] > 0
            jac[rows, j] = diff[rows] / (up[j] - down[j])
    return jac


def _standard_errors(observed: pd.DataFrame) -> np.ndarray:
    se = (observed["high"].to_numpy(float) - observed["low"].to_numpy(float)) / (2 * _Z)
    return np.maximum(np.nan_to_num(se, nan=_MIN_SE), _MIN_SE)


def _seeds(scenario: Scenario, replications: int, seed: int | None) -> list[int]:
    if replications < 2:
        raise SimfunnelError(f"replications: need at least 2, got {replications}")
    root = check_seed(scenario.run.seed if seed is None else seed)
    return [replication_seed(root, i) for i in range(replications)]


def _clean_observed(observed: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    missing = {"source", "stage", "rate", "low", "high"} - set(observed.columns)
    if missing:
        raise SimfunnelError(f"observed: missing column(s) {', '.join(sorted(missing))}")
    names = set(scenario.source_names)
    table = observed[observed["stage"].isin(RATE_STAGES) & observed["source"].isin(names)]
    table = table[np.isfinite(table["rate"].to_numpy(float))].reset_index(drop=True)
    if table.empty:
        raise SimfunnelError(
            "observed: no stage rate of any of the scenario's sources "
            f"({', '.join(scenario.source_names)})"
        )
    return table

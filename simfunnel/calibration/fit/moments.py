"""The simulation-based fit of what a CRM export does not show directly.

A CRM export dates each lead's stages, but not why a lead stopped where it did: the
share of a source's leads that were sales-ready (the quality mix), or how likely a
dial is to reach someone (the contact probability). These are fitted by the method of
simulated moments: the scenario is simulated, the simulated leads are exported as a
CRM would export them (:func:`simfunnel.calibration.export.to_crm`), the same
estimator that produced the observed rates is applied to them, and
:func:`scipy.optimize.least_squares` moves the parameters until the simulated
per-source stage rates reproduce the observed ones, each residual scaled by the
observed rate's standard error.

Every evaluation runs the same replication seeds (common random numbers), so the
simulated moments move with the parameters rather than with the luck of the draw;
replications run on the experiment backends (:mod:`simfunnel.experiments.backends`),
so a fit scales out like any experiment. The intervals of the fitted parameters are
the usual simulated-moments ones: the covariance (J'J)^-1 (1 + 1/R) of the scaled
residuals' Jacobian J with R replications per evaluation.

The parameters are in :mod:`~simfunnel.calibration.fit.parameters`, the simulated
moments in :mod:`~simfunnel.calibration.fit.simulator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from tqdm.auto import tqdm

from simfunnel.calibration.fit.parameters import (
    _Z,
    DECOMPOSITION,
    FIT_COLUMNS,
    NOT_IDENTIFIED,
    FitParameter,
    SimulatedFit,
    _bound_reached,
    _overrides,
    _start,
    _with_values,
    chance,
    default_parameters,
)
from simfunnel.calibration.fit.scale import scale_factor, scaled_overrides
from simfunnel.calibration.fit.simulator import (
    _central_jacobian,
    _clean_observed,
    _groups,
    _pool,
    _pooled,
    _seeds,
    _Simulator,
    _sparsity,
    _standard_errors,
)
from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend
from simfunnel.parameters import Scenario, load_scenario, scenario_from_dict


def _warm_start(
    scenario: Scenario,
    params: Sequence[FitParameter],
    table: pd.DataFrame,
    x: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    residuals: Callable[[np.ndarray], np.ndarray],
    target: np.ndarray,
    scale: np.ndarray,
    rounds: int = 3,
) -> np.ndarray:
    """Reach powers moved to where the simulated rate is about the observed one.

    A source's deepest rate is nearly proportional to the product P of its chain's
    chances, which is P0 ** s: so s + log(observed / simulated) / log(P0) is close to
    the power that matches. A few such steps (one evaluation each) bring every reach
    power near its solution, where least squares' finite differences see a slope, not
    the steps that common random numbers make of a rate of a few leads.
    """
    reach = [i for i, p in enumerate(params) if p.name == "reach"]
    if not reach:
        return x
    x = x.copy()
    deepest = {
        i: int(np.flatnonzero((table["source"] == params[i].source).to_numpy())[-1]) for i in reach
    }
    for _ in range(rounds):
        simulated = target + residuals(x) * scale
        moved = False
        for i in reach:
            p, k = params[i], deepest[i]
            log_p0 = sum(math.log(chance(scenario, str(p.source), n)) for n in p.chain)
            leads = float(table["leads"].iloc[k]) if "leads" in table else 100.0
            sim = max(float(simulated[k]), 0.5 / max(leads, 1.0))
            obs = max(float(target[k]), 0.5 / max(leads, 1.0))
            if abs(sim - obs) <= 0.5 * scale[k]:
                continue
            x[i] = float(
                np.clip(x[i] + math.log(obs / sim) / log_p0, low[i] + 1e-6, high[i] - 1e-6)
            )
            moved = True
        if not moved:
            break
    return x


def fit_by_simulation(
    scenario: Scenario,
    observed: pd.DataFrame,
    *,
    replications: int = 4,
    backend: str | Backend[Any] | None = None,
    workers: int | None = None,
    progress: bool = True,
    parameters: Sequence[FitParameter] | None = None,
    seed: int | None = None,
    max_evaluations: int = 60,
    world_scale: float | None = None,
    history: dict[str, Any] | None = None,
) -> SimulatedFit:
    """Fit the quality mix and contact probability so the simulated funnel matches.

    Parameters
    ----------
    scenario
        The scenario with everything estimated directly already set (volumes, stage
        probabilities after qualification, times, deal sizes, team); its run should
        span the observed history.
    observed
        The observed-rates table (``source, stage, rate, low, high``, as
        :func:`simfunnel.calibration.observed_rates` returns it).
    replications
        Replications per evaluation (the same seeds every time).
    backend, workers
        Where replications run: ``"serial"``, ``"processes"`` (default), ``"dask"``,
        or a backend instance.
    progress
        Show a progress bar of evaluations.
    parameters
        What to fit; default :func:`default_parameters`.
    seed
        Root seed of the replications; default the scenario's.
    max_evaluations
        Most candidate scenarios simulated (each ``replications`` runs).
    world_scale
        Simulate the world scaled down by this factor, volume and team together
        (:mod:`simfunnel.calibration.fit.scale`); default: as small as keeps the rates
        (about ``scale.FIT_LEADS`` leads a run), 1 for a small history.
    history
        Overrides that replay the observed history (``run.start_date``,
        ``run.horizon_days``; :func:`simfunnel.calibration.scenario.history_window`)
        when the scenario runs forward from its end; default: the scenario's own run.

    Returns
    -------
    SimulatedFit
        The fitted scenario and the table of fitted parameters (``parameter, source,
        start, estimate, low, high, method, moments, identified, at_bound, note``); a
        parameter no observed rate responds to is not identified: it keeps its start,
        with no interval. Unpacks as a pair.

    Raises
    ------
    SimfunnelError
        Nothing to fit, no observed rate of the scenario's sources, or a run failed.
    """
    table = _clean_observed(observed, scenario)
    params = list(default_parameters(scenario, table) if parameters is None else parameters)
    if not params and parameters is None:
        # every observed rate is already set by a direct estimate (rows that enter at
        # an opportunity): nothing is left for the simulation to fit
        empty = pd.DataFrame(columns=list(FIT_COLUMNS))
        empty.attrs.update(cost=0.0, evaluations=0, replications=replications)
        return SimulatedFit(scenario, empty)
    if not params:
        raise SimfunnelError("fit: the observed stages identify no parameter to fit")
    seeds = _seeds(scenario, replications, seed)
    # the CRM statistics need the export at the horizon, not the drained cohort
    factor = scale_factor(scenario) if world_scale is None else min(world_scale, 1.0)
    base = load_scenario(
        scenario,
        {"run.accounting": "window", **(history or {}), **scaled_overrides(scenario, factor)},
    )
    sources = tuple(dict.fromkeys(table["source"]))
    keys = pd.MultiIndex.from_frame(table[["source", "stage"]])
    target = table["rate"].to_numpy(float)
    scale = _standard_errors(table)
    x0 = np.array([_start(scenario, p) for p in params])
    low = np.array([p.low for p in params])
    high = np.array([p.high for p in params])
    x0 = np.clip(x0, low + 1e-6, high - 1e-6)

    pattern = _sparsity(table, params)
    groups = _groups(pattern)
    with (
        _pool(backend, workers) as pool,
        # the budget is a ceiling, rarely used up: the bar says so, and keeps its total
        tqdm(
            total=max_evaluations,
            disable=not progress,
            desc=f"fit (at most {max_evaluations} evaluations)",
            unit="eval",
        ) as bar,
    ):
        sim = _Simulator(pool, seeds, sources)
        cache: dict[bytes, np.ndarray] = {}

        def residuals(x: np.ndarray) -> np.ndarray:
            key = np.round(x, 10).tobytes()
            if key not in cache:
                candidate = load_scenario(base, _overrides(scenario, params, x))
                pooled = _pooled(sim.run(candidate)).reindex(keys).to_numpy(float)
                cache[key] = np.nan_to_num((pooled - target) / scale, nan=0.0)
                bar.update(1)
                bar.set_postfix(cost=f"{0.5 * float(np.sum(cache[key] ** 2)):.3g}")
            return cache[key]

        x0 = _warm_start(scenario, params, table, x0, low, high, residuals, target, scale)
        # CRN makes the moments step functions of the parameters at a fine scale:
        # a finite-difference step of a few per cent sees their slope, not the steps.
        result = optimize.least_squares(
            residuals,
            x0,
            jac_sparsity=pattern,
            tr_solver="lsmr",
            bounds=(low, high),
            diff_step=0.05,
            x_scale=np.maximum(x0, 0.05),
            xtol=1e-3,
            ftol=1e-3,
            # least_squares counts candidates, not the Jacobian's evaluations
            max_nfev=max(1, (max_evaluations - 2 * len(groups)) // (len(groups) + 1)),
            method="trf",
        )
        # the intervals' Jacobian: central differences at the solution, a step of 10%
        jac = _central_jacobian(residuals, result.x, low, high, pattern, groups)
        bar.set_postfix_str(f"done after {bar.n}", refresh=True)
    # the simulated moments' own noise: replications of a world scaled by `factor`
    # have 1 / (replications x factor) of the observed moments' variance
    cov = np.linalg.pinv(jac.T @ jac) * (1.0 + 1.0 / (replications * factor))
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    # a parameter no moment responds to (zero gradient, so a zero-width interval) is
    # not identified: whatever the search left it at is no estimate, so it keeps its start
    identified = (np.abs(jac).sum(axis=0) > 0) & (se > 0)
    # what the scenario file holds (see _with_values)
    estimate = np.round(np.where(identified, result.x, x0), 4)
    fitted = _with_values(scenario, params, estimate)
    simulated = target + residuals(result.x) * scale
    rows: list[dict[str, Any]] = []
    entries: dict[str, str] = {}
    for i, p in enumerate(params):
        bound = _bound_reached(p, float(estimate[i])) if identified[i] else None
        if not identified[i]:
            lo = hi = math.nan
            method = NOT_IDENTIFIED
            note = "not identified: the data cannot move it; default kept"
        else:
            lo = float(max(p.low, estimate[i] - _Z * se[i]))
            hi = float(min(p.high, estimate[i] + _Z * se[i]))
            method = "simulated moments"
            note = "" if bound is None else f"at its bound {bound:g} of the search"
        if p.name == "reach":
            mine = (table["source"] == p.source).to_numpy()
            deepest = str(table.loc[mine, "stage"].iloc[-1])
            k = int(np.flatnonzero(mine)[-1])
            if identified[i] and bound == p.low and simulated[k] < table["low"].iloc[k]:
                # every chance of the chain is near one and the lead path still falls
                # short: the rows behave as if they entered past the team's calls
                entries[str(p.source)] = deepest
                continue
            for name in p.chain:
                start = chance(scenario, str(p.source), name)
                rows.append(
                    {
                        "parameter": name,
                        "source": p.source,
                        "start": start,
                        "estimate": round(start ** float(estimate[i]), 4),
                        "low": start**hi if identified[i] else math.nan,
                        "high": start**lo if identified[i] else math.nan,
                        "method": method
                        if not identified[i]
                        else f"{method}; {DECOMPOSITION} (power {estimate[i]:.3g})",
                        "moments": deepest,
                        "identified": bool(identified[i]),
                        "at_bound": bound is not None,
                        "note": note,
                    }
                )
            continue
        rows.append(
            {
                "parameter": p.name,
                "source": p.source or "all",
                "start": float(x0[i]),
                "estimate": float(estimate[i]),
                "low": lo,
                "high": hi,
                "method": method,
                "moments": "contacted" if p.source is None else "qualified, opportunity, won",
                "identified": bool(identified[i]),
                "at_bound": bound is not None,
                "note": note,
            }
        )
    if entries:
        fitted, entry_rows = _enter_later(fitted, table, entries)
        rows += entry_rows
    out = pd.DataFrame(rows)
    out.attrs["cost"] = float(result.cost)
    out.attrs["evaluations"] = len(cache)
    out.attrs["replications"] = replications
    out.attrs["world_scale"] = factor
    return SimulatedFit(fitted, out)


#: The entry stage that makes a source's deepest observed stage one step from arrival.
_ENTRY_FOR = {
    "won": ("opportunity", "win_probability"),
    "opportunity": ("qualified", "opportunity_probability"),
}


def _enter_later(
    scenario: Scenario, table: pd.DataFrame, entries: dict[str, str]
) -> tuple[Scenario, list[dict[str, Any]]]:
    """Sources whose observed rate no lead path reaches enter one step before it.

    Their last stage chance is then the observed rate itself (the censoring-corrected
    share of the source's rows that reach the stage), with its interval.
    """
    raw = scenario.model_dump(mode="json", exclude_unset=True)
    rows = []
    for source, deepest in entries.items():
        entry, name = _ENTRY_FOR[deepest]
        obs = table[(table["source"] == source) & (table["stage"] == deepest)].iloc[0]
        node = next(s for s in raw["sources"] if s["name"] == source)
        node["entry_stage"] = entry
        node[name] = round(float(min(max(obs["rate"], 0.0), 1.0)), 4)
        rows.append(
            {
                "parameter": name,
                "source": source,
                "start": chance(scenario, source, name),
                "estimate": node[name],
                "low": float(obs["low"]),
                "high": float(obs["high"]),
                "method": f"the observed {deepest} rate: with every stage chance near one "
                f"the calls reach too few leads, so the rows enter as {entry} "
                f"(entry_stage {entry})",
                "moments": deepest,
                "identified": True,
                "at_bound": False,
                "note": "",
                "entry_stage": entry,
            }
        )
    return scenario_from_dict(raw), rows

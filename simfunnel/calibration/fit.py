"""The simulation-based fit of what a CRM export does not show directly.

A CRM export dates each lead's stages, but not why a lead stopped where it did: the
share of a source's leads that were sales-ready (the quality mix), or how likely a
dial is to reach someone (the contact probability). These are fitted by the method of
simulated moments: the scenario is simulated, the simulated leads are exported as a
CRM would export them (:func:`simfunnel.calibration.crm.to_crm`), the same
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

Also here: :func:`fit_check` (observed against simulated rates and volumes, with a
verdict sentence) and :func:`backtest` (calibrate on the first part of the history,
forecast the rest, compare).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats
from tqdm.auto import tqdm

from simfunnel.calibration.crm import to_crm
from simfunnel.calibration.estimate.censoring import observed_rates
from simfunnel.calibration.scale import scale_factor, scaled_overrides
from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend, Done
from simfunnel.experiments.replications import backend_context
from simfunnel.parameters import Scenario, load_scenario, scenario_from_dict
from simfunnel.simulation import simulate
from simfunnel.streams import check_seed, replication_seed

#: Stages of the observed-rates table, in funnel order.
RATE_STAGES: tuple[str, ...] = ("contacted", "qualified", "opportunity", "won")
_Z = float(stats.norm.ppf(0.975))
#: Smallest standard error a residual is scaled by (a rate of 0 or 1 has none).
_MIN_SE = 0.005


# ------------------------------------------------------------ fitted parameters


@dataclass(frozen=True)
class FitParameter:
    """One parameter fitted by simulation.

    Attributes
    ----------
    name
        ``contact_probability`` (global), ``quality.ready`` (per source) or ``reach``
        (per source: the stage chances in ``chain``, scaled together).
    source
        The source, or ``None`` for a global parameter.
    low, high
        Bounds of the search.
    chain
        For ``reach``: the source's stage chances that only their product is
        identified for (``quality.ready``, ``opportunity_probability``,
        ``win_probability``); each is set to its start raised to the power ``s``, the
        parameter's value, so that s = 1 keeps the starts, s -> 0 takes every chance
        towards one and the ratios of their logarithms stay as the defaults have them.
    """

    name: str
    source: str | None
    low: float
    high: float
    chain: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``paid_search quality.ready`` or ``contact_probability``."""
        return f"{self.source} {self.name}" if self.source else self.name


#: The post-contact stages of the observed rates, and the stage chance that leads to each.
_AFTER_CONTACT: tuple[str, ...] = ("qualified", "opportunity", "won")
_CHANCE_OF: dict[str, str] = {
    "qualified": "quality.ready",
    "opportunity": "opportunity_probability",
    "won": "win_probability",
}

#: How the calibration names the decomposition of a product of stage chances.
DECOMPOSITION = (
    "only the product of these stage chances is identified; decomposition: each is its "
    "domain default raised to one common power, fitted so that the simulated rate "
    "matches the observed one (the split between them is not identified)"
)


def chance(scenario: Scenario, source: str, name: str) -> float:
    """A source's stage chance as the model uses it (its own, else the process's)."""
    src = next(s for s in scenario.sources if s.name == source)
    if name == "quality.ready":
        return src.quality.ready
    own = getattr(src, name)
    return float(getattr(scenario.process, name) if own is None else own)


def _free_chances(scenario: Scenario, source: str, deepest: str, after: int) -> list[str]:
    """The stage chances up to ``deepest`` that no estimate has set for ``source``."""
    src = next(s for s in scenario.sources if s.name == source)
    entry = {"lead": 0, "qualified": 1, "opportunity": 2}[src.entry_stage]
    chain = []
    for stage in _AFTER_CONTACT[: _AFTER_CONTACT.index(deepest) + 1]:
        name = _CHANCE_OF[stage]
        position = _AFTER_CONTACT.index(stage)
        if position < entry:
            continue  # the rows enter past this stage
        if name == "quality.ready":
            if after > 1:
                continue  # fitted on its own from the first observed stage
        elif getattr(src, name) is not None:
            continue  # estimated directly
        if 0.0 < chance(scenario, source, name) < 0.999:
            chain.append(name)
    return chain


def default_parameters(scenario: Scenario, observed: pd.DataFrame) -> list[FitParameter]:
    """What the observed stages can identify.

    The contact probability (first attempt; the retry probability keeps its ratio to
    it) when ``contacted`` is observed; each observed source's ready share (the rest
    of its leads keep the not-ready to unqualified split) when two or more stages past
    contact are; and, where the deepest observed stage lies past chances that no
    estimate has set (only won, or only converted, is in the data), a ``reach``
    parameter that scales those chances together (:data:`DECOMPOSITION`). Sources that
    enter at an opportunity need neither.
    """
    stages = set(observed["stage"])
    params: list[FitParameter] = []
    if "contacted" in stages:
        params.append(FitParameter("contact_probability", None, 0.02, 0.98))
    seen = set(observed["source"])
    for s in scenario.sources:
        if s.name not in seen:
            continue
        mine = set(observed.loc[observed["source"] == s.name, "stage"])
        after = [st for st in _AFTER_CONTACT if st in mine]
        if not after:
            continue
        if len(after) > 1 and s.entry_stage == "lead":
            params.append(FitParameter("quality.ready", s.name, 0.005, 0.995))
        chain = _free_chances(scenario, s.name, after[-1], len(after))
        if chain:
            params.append(FitParameter("reach", s.name, 0.01, 10.0, tuple(chain)))
    return params


def _start(scenario: Scenario, p: FitParameter) -> float:
    if p.name == "contact_probability":
        return scenario.process.contact_probability
    if p.name == "reach":
        return 1.0
    return next(s for s in scenario.sources if s.name == p.source).quality.ready


def _quality(scenario: Scenario, source: str, ready: float) -> dict[str, float]:
    """The source's quality mix with ``ready`` sales-ready; the rest keep their split."""
    q = next(s for s in scenario.sources if s.name == source).quality
    rest = q.not_ready + q.unqualified
    share = q.not_ready / rest if rest > 0 else 0.5
    not_ready = (1.0 - ready) * share
    return {"ready": ready, "not_ready": not_ready, "unqualified": 1.0 - ready - not_ready}


def _values(scenario: Scenario, params: Sequence[FitParameter], x: np.ndarray) -> dict[str, Any]:
    """Field paths and the values that set ``params`` to ``x``."""
    out: dict[str, Any] = {}
    proc = scenario.process
    for p, value in zip(params, x, strict=True):
        v = float(np.clip(value, p.low, p.high))
        if p.name == "contact_probability":
            ratio = proc.retry_contact_probability / max(proc.contact_probability, 1e-9)
            out["process.contact_probability"] = v
            out["process.retry_contact_probability"] = min(1.0, v * ratio)
        elif p.name == "quality.ready":
            out[f"sources.{p.source}.quality"] = _quality(scenario, str(p.source), v)
        elif p.name == "reach":
            for name in p.chain:
                scaled = chance(scenario, str(p.source), name) ** v
                if name == "quality.ready":
                    scaled = min(scaled, 0.999)
                    out[f"sources.{p.source}.quality"] = _quality(scenario, str(p.source), scaled)
                else:
                    out[f"sources.{p.source}.{name}"] = scaled
        else:
            raise SimfunnelError(f"parameter {p.label!r}: not a parameter the fit knows")
    return out


def _overrides(scenario: Scenario, params: Sequence[FitParameter], x: np.ndarray) -> dict[str, Any]:
    """Dotted-path overrides that set ``params`` to ``x``."""
    return _values(scenario, params, x)


def _with_values(scenario: Scenario, params: Sequence[FitParameter], x: np.ndarray) -> Scenario:
    """The scenario with ``params`` at ``x``, keeping only the fields it had set.

    (A scenario written back as YAML then lists what was set or fitted, not every
    default.)
    """
    raw = scenario.model_dump(mode="json", exclude_unset=True)
    # four decimals: plenty beside the intervals, and a scenario file a person can read
    x = np.round(np.asarray(x, dtype=float), 4)
    for path, value in _values(scenario, params, x).items():
        if isinstance(value, dict):  # a quality mix: rounded so that it still adds up
            value = {k: round(v, 4) for k, v in value.items()}
            value["unqualified"] = round(1.0 - value["ready"] - value["not_ready"], 4)
        elif isinstance(value, float):
            value = round(value, 4)
        if path.startswith("sources."):
            _, name, field = path.split(".", 2)
            source = next(s for s in raw["sources"] if s["name"] == name)
            source[field] = value
        else:
            node = raw
            *parents, last = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
    return scenario_from_dict(raw)


#: Columns of the fitted-parameters table.
FIT_COLUMNS: tuple[str, ...] = (
    "parameter",
    "source",
    "start",
    "estimate",
    "low",
    "high",
    "method",
    "moments",
    "identified",
    "at_bound",
    "note",
)

#: How the parameters table names a parameter the data cannot move.
NOT_IDENTIFIED = "not identified (no observed rate responds to it); domain default kept"


def _bound_reached(p: FitParameter, value: float) -> float | None:
    """The bound of the search ``value`` sits at (within 0.001), or None."""
    for bound in (p.low, p.high):
        if abs(value - bound) <= 1e-3:
            return bound
    return None


def flag_lines(parameters: pd.DataFrame) -> list[str]:
    """One line per fitted parameter that is not identified or sits at a bound."""
    lines = []
    for row in parameters.to_dict(orient="records"):
        name, source = row["parameter"], row["source"]
        label = name if source == "all" else f"{source} {name}"
        if not row.get("identified", True):
            lines.append(
                f"{label}: not identified by the data (no observed rate responds to it); "
                f"domain default {row['estimate']:.4g} kept"
            )
        elif row.get("at_bound", False):
            lines.append(
                f"{label}: {row['estimate']:.4g} is at the bound of the search, where the "
                "model's other chances stop the simulated rate short of the observed one "
                "(the fit check shows by how much)"
            )
    return lines


class SimulatedFit(NamedTuple):
    """What :func:`fit_by_simulation` returns; unpacks as ``scenario, parameters``.

    Attributes
    ----------
    scenario
        The fitted scenario.
    parameters
        ``parameter, source, start, estimate, low, high, method, moments``; ``attrs``
        holds the final cost, the evaluations and the replications per evaluation.
    """

    scenario: Scenario
    parameters: pd.DataFrame


# ---------------------------------------------------------------- simulated moments


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
        (:mod:`simfunnel.calibration.scale`); default: as small as keeps the rates
        (about ``scale.FIT_LEADS`` leads a run), 1 for a small history.
    history
        Overrides that replay the observed history (``run.start_date``,
        ``run.horizon_days``; :func:`simfunnel.calibration.writer.history_window`)
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


# --------------------------------------------------------------------- fit check


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


# ---------------------------------------------------------------------- back-test

#: What the back-test counts in the held-out window, by the date that counts it.
BACKTEST_COUNTS: dict[str, str] = {
    "leads": "created_at",
    "opportunities": "opportunity_at",
    "wins": "won_at",
}


@dataclass(frozen=True)
class Backtest:
    """A forecast of the held-out end of the history against what happened.

    Attributes
    ----------
    table
        Per source (and ``all``) and count (leads, opportunities, wins in the held-out
        window): ``actual``, ``forecast`` (mean over the replications), ``low`` and
        ``high`` (95% prediction interval of one realisation), ``error`` (forecast
        over actual, minus one) and ``inside``.
    cutoff, end
        The held-out window.
    scenario
        The scenario calibrated on the history before ``cutoff``.
    verdict
        One sentence: the error of the totals, and how many actual counts fell inside
        their intervals.
    """

    table: pd.DataFrame
    cutoff: pd.Timestamp
    end: pd.Timestamp
    scenario: Scenario
    verdict: str


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return values.astype("datetime64[ns]")


def _end_of_data(frame: pd.DataFrame) -> pd.Timestamp:
    """The export date if known, else the last lead created.

    Not the latest date of any kind: an export of one year's leads with their deals
    has deals closing after the last lead, and a window running past it would count
    leads the export could not hold as missing.
    """
    given = frame.attrs.get("as_of")
    if given is not None:
        return pd.Timestamp(given)
    return pd.Timestamp(_dates(frame, "created_at").max())


def history_before(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The frame as it would have been exported at ``cutoff``.

    Leads created before it; any later date blanked; a lead won or lost later is
    ``open``. (A lead lost before it became an opportunity has no date to tell when:
    it stays lost.)
    """
    created = _dates(frame, "created_at")
    out = frame.loc[created < cutoff].copy()
    for column in [c for c in out.columns if c.endswith("_at")]:
        when = _dates(out, column)
        out[column] = when.where(when < cutoff)
    if "status" in out.columns:
        status = out["status"].astype("string").str.lower()
        for column, value in (("won_at", "won"), ("lost_at", "lost")):
            if column in frame.columns:
                later = _dates(frame.loc[out.index], column) >= cutoff
                out.loc[later & status.eq(value).fillna(False), "status"] = "open"
    out = out.reset_index(drop=True)
    out.attrs["as_of"] = cutoff.isoformat()
    return out


def _window_counts(
    frame: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp
) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for what, column in BACKTEST_COUNTS.items():
        if column not in frame.columns:
            continue
        when = _dates(frame, column)
        inside = (when >= cutoff) & (when <= end)
        for name, n in frame.loc[inside, "source"].value_counts().items():
            counts[(str(name), what)] = int(n)
    return counts


@dataclass(frozen=True)
class _ForecastTask:
    scenario: dict[str, Any]
    seed: int
    cutoff: pd.Timestamp
    end: pd.Timestamp


def _forecast_counts(task: _ForecastTask) -> dict[tuple[str, str], int]:
    crm = to_crm(simulate(load_scenario(task.scenario), seed=task.seed))
    return _window_counts(crm, task.cutoff, task.end)


def _calibrated_scenario(train: pd.DataFrame, **options: Any) -> Scenario:
    from simfunnel.calibration.pipeline import calibrate

    return calibrate(train, simulate=True, **options).scenario


def backtest(
    frame: pd.DataFrame,
    holdout: float = 0.25,
    *,
    calibrate: Callable[[pd.DataFrame], Scenario] | None = None,
    replications: int = 20,
    backend: str | Backend[Any] | None = None,
    workers: int | None = None,
    progress: bool = False,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
) -> Backtest:
    """Calibrate on the first part of the history, forecast the rest, compare.

    Parameters
    ----------
    frame
        A canonical lead frame (the native CRM header).
    holdout
        Share of the history's time span held out at its end (0.25: the last quarter).
    calibrate
        Frame -> calibrated scenario; default :func:`simfunnel.calibrate` with the
        simulation-based fit (on the same backend).
    replications
        Forecast runs; their spread gives the prediction intervals.
    backend, workers
        Where the forecast runs execute.
    progress
        Show progress bars.
    seed
        Root seed of the forecast runs; default the calibrated scenario's.
    fit_options
        Passed to :func:`fit_by_simulation` by the default ``calibrate`` (e.g.
        ``replications``, ``max_evaluations``).

    Returns
    -------
    Backtest
        Leads, opportunities and wins per source in the held-out window: actual against
        forecast with its interval, and the error.
    """
    if not 0.0 < holdout < 1.0:
        raise SimfunnelError(f"holdout: must be between 0 and 1, got {holdout}")
    created = _dates(frame, "created_at")
    if created.isna().all():
        raise SimfunnelError("backtest: the frame has no created_at dates")
    first, end = created.min(), _end_of_data(frame)
    cutoff = first + (end - first) * (1.0 - holdout)
    train = history_before(frame, cutoff)
    if train.empty:
        raise SimfunnelError(f"backtest: no lead was created before the cutoff {cutoff}")
    if calibrate is None:
        options = {"backend": backend, "workers": workers, "progress": progress}
        options.update(fit_options or {})
        scenario = _calibrated_scenario(train, **options)
    else:
        scenario = calibrate(train)
    day0 = first.normalize()
    forecast = load_scenario(
        scenario,
        {
            "run.start_date": day0.date().isoformat(),
            "run.horizon_days": (end - day0) / pd.Timedelta(days=1),
            "run.accounting": "window",
        },
    )
    raw = forecast.model_dump(mode="json")
    tasks = [_ForecastTask(raw, s, cutoff, end) for s in _seeds(forecast, replications, seed)]
    done: dict[int, dict[tuple[str, str], int]] = {}
    with (
        _pool(backend, workers) as pool,
        tqdm(total=len(tasks), disable=not progress, desc="back-test", unit="run") as bar,
    ):
        for task, outcome in pool.map(_forecast_counts, tasks):
            if not isinstance(outcome, Done):
                raise SimfunnelError(f"a back-test run failed: {outcome.error}")
            done[task.seed] = outcome.value
            bar.update(1)
    runs = [done[task.seed] for task in tasks]  # in seed order, on any backend
    actual = _window_counts(frame, cutoff, end)
    sources = sorted(set(frame["source"].astype(str)))
    whats = [w for w, c in BACKTEST_COUNTS.items() if c in frame.columns]
    rows = []
    for name in [*sources, "all"]:
        for what in whats:
            if name == "all":
                sims = np.array([sum(r.get((s, what), 0) for s in sources) for r in runs], float)
                real = sum(actual.get((s, what), 0) for s in sources)
            else:
                sims = np.array([r.get((name, what), 0) for r in runs], float)
                real = actual.get((name, what), 0)
            rows.append(_forecast_row(name, what, real, sims))
    table = pd.DataFrame(rows)
    return Backtest(table, cutoff, end, scenario, _backtest_summary(table, holdout))


def _forecast_row(source: str, what: str, actual: int, sims: np.ndarray) -> dict[str, Any]:
    mean = float(sims.mean())
    sd = float(sims.std(ddof=1)) if len(sims) > 1 else 0.0
    half = float(stats.t.ppf(0.975, max(len(sims) - 1, 1))) * sd * math.sqrt(1 + 1 / len(sims))
    low, high = max(0.0, mean - half), mean + half
    return {
        "source": source,
        "count": what,
        "actual": actual,
        "forecast": mean,
        "low": low,
        "high": high,
        "error": mean / actual - 1.0 if actual > 0 else math.nan,
        "inside": bool(low <= actual <= high),
    }


#: A per-source error smaller than this is no bias worth a word.
BIAS_THRESHOLD = 0.10


def bias_phrase(table: pd.DataFrame, what: str) -> str | None:
    """'wins over-forecast in 9 of 9 sources, by 19% to 39%', when the errors lean one way.

    Said when at least two sources have a finite error, all of the same sign, the
    smallest over :data:`BIAS_THRESHOLD`; or when at least three quarters of them lean one
    way by more than that.
    """
    part = table[(table["source"] != "all") & (table["count"] == what)]
    errors = part["error"].to_numpy(float)
    errors = errors[np.isfinite(errors)]
    if len(errors) < 2:
        return None
    for sign, word in ((1.0, "over"), (-1.0, "under")):
        leaning = errors[sign * errors > BIAS_THRESHOLD]
        if len(leaning) == len(errors) or (len(errors) >= 4 and len(leaning) >= 0.75 * len(errors)):
            low, high = np.sort(np.abs(leaning))[[0, -1]]
            return (
                f"{what} {word}-forecast in {len(leaning)} of {len(errors)} sources, "
                f"by {low:.0%} to {high:.0%}"
            )
    return None


def _backtest_summary(table: pd.DataFrame, holdout: float) -> str:
    totals = table[table["source"] == "all"].set_index("count")
    parts = [
        f"{what} {row['error']:+.0%}"
        for what, row in totals.iterrows()
        if math.isfinite(row["error"])
    ]
    biases = [b for what in totals.index if (b := bias_phrase(table, str(what))) is not None]
    per_source = table[table["source"] != "all"]
    text = (
        f"forecasting the last {holdout:.0%} of the history from the rest: "
        f"{', '.join(parts)} against what happened; {int(per_source['inside'].sum())} of "
        f"{len(per_source)} actual counts per source inside their 95% prediction intervals"
    )
    if biases:
        text += "; biased: " + "; ".join(biases)
    return text

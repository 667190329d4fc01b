"""Reading a sweep: point means, sensitivity indices, best points, the Pareto front."""

from __future__ import annotations

import math
import operator
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy import stats

from simfunnel.errors import SpecError, StoreError
from simfunnel.experiments.spec import SweepSpec
from simfunnel.experiments.store import ResultsStore

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")


def stored_spec(store: ResultsStore) -> SweepSpec:
    """The spec a store was written with.

    Raises
    ------
    StoreError
        The metadata's spec is not a valid spec (a damaged store).
    """
    meta = store.metadata()
    if "spec" not in meta:
        raise StoreError(
            f"{store.path / 'metadata.json'}: has no 'spec'; the store is damaged: rerun "
            "the sweep into a new --out"
        )
    try:
        return SweepSpec.model_validate(meta["spec"])
    except ValidationError:
        raise StoreError(
            f"{store.path / 'metadata.json'}: its 'spec' is not a valid sweep spec; the "
            "store is damaged: rerun the sweep into a new --out"
        ) from None


def parameter_columns(results: pd.DataFrame, spec: SweepSpec) -> list[str]:
    """The swept parameters' columns, in spec order."""
    return [p.path for p in spec.parameters if p.path in results.columns]


def point_means(results: pd.DataFrame, spec: SweepSpec) -> pd.DataFrame:
    """One row per point: its parameters, and the mean and standard error of each KPI.

    Failed replications are left out; ``n_ok`` counts those that ran.
    """
    ok = results[results["status"] == "ok"]
    params = parameter_columns(results, spec)
    outputs = [k for k in spec.kpis if k in results.columns]
    grouped = ok.groupby("point", sort=True)
    means = grouped[outputs].mean()
    sems = grouped[outputs].sem().add_suffix("_sem")
    firsts = results.groupby("point", sort=True)[params].first()
    counts = grouped.size().rename("n_ok")
    frame = firsts.join(means).join(sems).join(counts)
    frame["n_ok"] = frame["n_ok"].fillna(0).astype(int)
    return frame


def sensitivity(path: str | Path, kpis: list[str] | None = None) -> pd.DataFrame:
    """Sensitivity of each KPI to each parameter, from a stored sweep.

    - ``sobol``: first-order ``S1`` and total-order ``ST`` indices with their 95%
      confidence half-widths (SALib, Saltelli's estimators);
    - ``morris``: ``mu_star`` (mean absolute elementary effect) with its confidence
      half-width, and ``sigma``;
    - ``grid`` and ``lhs``: Spearman's rank correlation of the KPI's point means with
      each numeric parameter, and its p-value.
    """
    store = ResultsStore.open(path)
    meta = store.metadata()
    spec = stored_spec(store)
    means = point_means(store.load(), spec)
    return sensitivity_table(means, spec, meta["design"].get("matrix"), kpis)


def sensitivity_table(
    means: pd.DataFrame,
    spec: SweepSpec,
    matrix: list[list[float]] | np.ndarray | None,
    kpis: list[str] | None = None,
) -> pd.DataFrame:
    """:func:`sensitivity` from point means and the design matrix."""
    from simfunnel.experiments.designs import salib_problem

    kpis = kpis or [k for k in spec.kpis if k in means.columns]
    kind = spec.design.kind
    rows: list[dict[str, Any]] = []
    n_points = len(means)
    for kpi in kpis:
        y = means[kpi].reindex(range(n_points)).to_numpy(dtype=float)
        if kind in ("sobol", "morris"):
            if not np.isfinite(y).all():
                missing = int((~np.isfinite(y)).sum())
                raise SpecError(
                    f"kpi {kpi}: {missing} of {n_points} points have no value "
                    "(failed, or undefined such as CAC without customers); "
                    f"{kind} indices need every point"
                )
            problem = salib_problem(spec)
            if kind == "sobol":
                from SALib.analyze import sobol

                res = sobol.analyze(problem, y, calc_second_order=False, seed=spec.seed)
                keys: tuple[str, ...] = ("S1", "S1_conf", "ST", "ST_conf")
            else:
                from SALib.analyze import morris

                x = np.asarray(matrix, dtype=float)
                res = morris.analyze(problem, x, y, num_levels=spec.design.levels, seed=spec.seed)
                keys = ("mu_star", "mu_star_conf", "sigma")
            for j, name in enumerate(problem["names"]):
                rows.append({"kpi": kpi, "parameter": name, **{k: float(res[k][j]) for k in keys}})
        else:
            for p in spec.parameters:
                if not p.is_numeric:
                    continue
                x = means[p.path].to_numpy(dtype=float)
                ok = np.isfinite(y) & np.isfinite(x)
                if ok.sum() < 3 or np.ptp(x[ok]) == 0:
                    rho, pval = math.nan, math.nan
                else:
                    rho, pval = stats.spearmanr(x[ok], y[ok])
                rows.append(
                    {
                        "kpi": kpi,
                        "parameter": p.path,
                        "spearman": float(rho),
                        "p_value": float(pval),
                    }
                )
    return pd.DataFrame(rows)


def parse_constraint(text: str) -> tuple[str, str, float]:
    """``"burnout_index <= 0.3"`` -> ``("burnout_index", "<=", 0.3)``."""
    match = _CONSTRAINT.match(text)
    if not match:
        raise SpecError(f"constraint {text!r}: expected 'kpi <= value' (or >=, <, >, ==)")
    name, op, value = match.groups()
    try:
        return name, op, float(value)
    except ValueError:
        raise SpecError(f"constraint {text!r}: {value!r} is not a number") from None


Constraints = list[str] | tuple[str, ...] | dict[str, dict[str, float]]


def constraint_list(constraints: Constraints) -> list[tuple[str, str, float]]:
    """Constraints as ``(kpi, operator, value)``.

    Either strings such as ``"burnout_index <= 0.3"``, or bounds by KPI such as
    ``{"burnout_index": {"max": 0.3}, "revenue": {"min": 1e6}}``.
    """
    if isinstance(constraints, dict):
        out = []
        for kpi, bounds in constraints.items():
            if not isinstance(bounds, dict) or not set(bounds) <= {"min", "max"}:
                raise SpecError(
                    f"constraint {kpi}: expected {{'min': x}} and/or {{'max': y}}, got {bounds!r}"
                )
            for key, value in bounds.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SpecError(f"constraint {kpi}: {key} must be a number, got {value!r}")
                out.append((kpi, ">=" if key == "min" else "<=", float(value)))
        return out
    return [parse_constraint(text) for text in constraints]


def describe_constraints(constraints: Constraints) -> str:
    """``burnout_index <= 0.3 and revenue >= 1e+06``, or ``no constraint``."""
    parts = [f"{k} {op} {v:g}" for k, op, v in constraint_list(constraints)]
    return " and ".join(parts) or "no constraint"


def best_points(
    means: pd.DataFrame,
    objective: str = "cac",
    *,
    minimize: bool = True,
    constraints: Constraints = (),
    top: int = 5,
) -> pd.DataFrame:
    """The best points by ``objective`` among those meeting every constraint.

    Example: ``best_points(means, "cac", constraints=["burnout_index <= 0.3",
    "revenue >= 1e6"])``, or the same as ``{"burnout_index": {"max": 0.3},
    "revenue": {"min": 1e6}}``: least CAC with burnout at most 0.3 and revenue at
    least $1m.
    """
    if objective not in means.columns:
        raise SpecError(f"objective: {objective!r} is not among the sweep's KPIs")
    keep = np.ones(len(means), dtype=bool)
    for name, op, value in constraint_list(constraints):
        text = f"{name} {op} {value:g}"
        if name not in means.columns:
            raise SpecError(f"constraint {text!r}: {name!r} is not among the sweep's columns")
        keep &= _OPS[op](means[name].to_numpy(dtype=float), value)
    chosen = means[keep & np.isfinite(means[objective].to_numpy(dtype=float))]
    return chosen.sort_values(objective, ascending=minimize).head(top)


def pareto_front(
    means: pd.DataFrame,
    objectives: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Points no other point beats on every objective.

    ``objectives`` maps a KPI to ``"max"`` or ``"min"``; default: revenue up, CAC
    and burnout down.
    """
    objectives = objectives or {"revenue": "max", "cac": "min", "burnout_index": "min"}
    for kpi, sense in objectives.items():
        if kpi not in means.columns:
            raise SpecError(f"objective: {kpi!r} is not among the sweep's KPIs")
        if sense not in ("max", "min"):
            raise SpecError(f"objective {kpi}: must be 'max' or 'min', got {sense!r}")
    values = np.column_stack(
        [
            means[k].to_numpy(dtype=float) * (-1.0 if s == "max" else 1.0)
            for k, s in objectives.items()
        ]
    )
    finite = np.isfinite(values).all(axis=1)
    idx = np.flatnonzero(finite)
    v = values[idx]
    dominated = np.zeros(len(idx), dtype=bool)
    for a in range(len(idx)):
        better_eq = (v <= v[a]).all(axis=1)
        strictly = (v < v[a]).any(axis=1)
        dominated[a] = bool((better_eq & strictly).any())
    first, sense = next(iter(objectives.items()))
    return means.iloc[idx[~dominated]].sort_values(first, ascending=sense == "min")

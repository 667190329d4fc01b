"""How the optimum moves with team size: the spec re-optimised at each of a few sizes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from simfunnel.errors import SpecError
from simfunnel.experiments.backends import Backend
from simfunnel.experiments.replications import backend_context
from simfunnel.optimization.result import OptimizationResult, optimize
from simfunnel.optimization.spec import OptimizeSpec, budget_path, load_optimize_spec


def spec_at_team_size(spec: OptimizeSpec, reps: int) -> OptimizeSpec:
    """The spec with ``team.reps`` fixed at ``reps`` (and no longer a decision)."""
    data = spec.model_dump(mode="json")
    data["overrides"] = {**data["overrides"], "team.reps": int(reps)}
    data["parameters"] = [p for p in data["parameters"] if p["path"] != "team.reps"]
    if not data["parameters"] and data["budget"] is None:
        raise SpecError("team sizes: with team.reps fixed, the spec has nothing left to optimise")
    return load_optimize_spec(data)


def optimize_by_team_size(
    spec: OptimizeSpec | dict[str, Any] | str | Path,
    team_sizes: list[int] | tuple[int, ...],
    out: str | Path | None = None,
    *,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = True,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[int, OptimizationResult]]:
    """Re-optimise the spec at each team size, one study each in ``out/reps-<n>``.

    Returns
    -------
    table
        One row per team size: whether a configuration met every constraint, the
        recommended candidate (``current`` when the current split is best), its
        dollars by source, the objective's mean and interval, and the tied count.
    results
        The :class:`OptimizationResult` of each team size.
    """
    checked = load_optimize_spec(spec)
    if not team_sizes or any(int(n) < 1 for n in team_sizes):
        raise SpecError(f"team sizes: give whole numbers >= 1, got {list(team_sizes)}")
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="simfunnel-team-"))
    objective = checked.objectives()[0]
    rows = []
    results: dict[int, OptimizationResult] = {}
    with backend_context(backend, workers, scheduler) as pool:
        for reps in team_sizes:
            sized = spec_at_team_size(checked, int(reps))
            result = optimize(
                sized, folder / f"reps-{int(reps)}", backend=pool, resume=resume, progress=progress
            )
            results[int(reps)] = result
            row: dict[str, Any] = {
                "reps": int(reps),
                "feasible": result.best is not None,
                "candidate": result.recommended,
            }
            best = result.best
            if sized.budget is not None:
                for source in sized.budget.sources:
                    row[source] = None if best is None else float(best[budget_path(source)])
            for suffix in ("", "_low", "_high"):
                key = objective.kpi + suffix
                row[key] = None if best is None else float(best[key])
            row["tied"] = len(result.choice.tied)
            rows.append(row)
    return pd.DataFrame(rows).set_index("reps"), results

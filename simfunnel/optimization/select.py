"""Noise-aware choice: re-run the top candidates on fresh common seeds and compare them.

The trial with the best single estimate is not the answer: its estimate is biased by
selection (the winner's curse). Instead:

1. The best ``selection.top`` distinct trials of the search (feasible ones first, by
   their search means), and the current configuration of the base scenario, are
   each run ``selection.replications`` more times on **fresh** seeds, the same for
   every candidate (common random numbers), so their differences are paired.
2. A constraint counts as met only when its confidence bound does: the upper bound
   for ``kpi <= limit``, the lower bound for ``kpi >= limit``.
3. Among the candidates that meet every constraint, the **best** has the best mean,
   and the **tied set** is the screening subset of Nelson, Swann, Goldsman and Song
   (2001, "Simple procedures for selecting the best simulated system when the number
   of alternatives is large", Operations Research 49(6)): candidate i stays when, for
   every other l, mean_i <= mean_l + t * S_il / sqrt(n) (for a minimised KPI), with
   S_il the standard deviation of the paired differences and t the Student quantile
   at (1 - alpha)^(1 / (k - 1)). The subset holds the truly best candidate with
   probability at least 1 - alpha; the candidates in it besides the best are those
   the replications cannot tell apart from it.

With several objectives there is no single best: the re-run candidates that no other
feasible candidate beats on every objective's mean form the reported Pareto front.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.experiments.backends import Backend
from simfunnel.experiments.comparison import Comparison
from simfunnel.experiments.replications import backend_context, t_interval
from simfunnel.experiments.runner import PointTask, run_point
from simfunnel.experiments.store import ResultsStore, now_iso
from simfunnel.optimization.recovery import mark_unfinished
from simfunnel.optimization.search import _rows, trials_frame
from simfunnel.optimization.spec import OptimizeSpec, base_scenario, budget_path, value_at
from simfunnel.streams import replication_seed

CURRENT = "current"
#: KPIs estimated for every candidate besides the objectives and constraints.
REPORTED_KPIS = ("cac", "revenue", "customers", "burnout_index", "reps_quit", "stale_share")


@dataclass(frozen=True)
class Candidate:
    """A configuration re-run in the selection: a label, its trial and its decision."""

    label: str
    trial: int | None
    decision: dict[str, Any]


def current_decision(spec: OptimizeSpec) -> dict[str, Any]:
    """The base scenario's own values of the decision variables."""
    base = base_scenario(spec)
    raw = base.model_dump(mode="json")
    decision: dict[str, Any] = {}
    if spec.budget is not None:
        for source in spec.budget.sources:
            decision[budget_path(source)] = base.sources[
                base.source_names.index(source)
            ].budget_per_week_usd
    for p in spec.parameters:
        decision[p.path] = value_at(raw, p.path)
    return decision


def pick_candidates(trials: pd.DataFrame, spec: OptimizeSpec) -> list[Candidate]:
    """The current configuration, then the best distinct trials (feasible first)."""
    paths = spec.decision_paths()
    done = trials[trials["state"] == "complete"].copy()
    objectives = spec.objectives()
    if len(objectives) == 1:
        obj = objectives[0]
        done = done.sort_values(
            ["feasible", obj.kpi, "trial"], ascending=[False, obj.minimize, True]
        )
    else:
        done = _front_first(done, spec)
    candidates = [Candidate(CURRENT, None, current_decision(spec))]
    seen = {json.dumps(candidates[0].decision, sort_keys=True, default=str)}
    for _, row in done.iterrows():
        if len(candidates) > spec.selection.top:
            break
        decision = {p: _plain(row[p]) for p in paths}
        key = json.dumps(decision, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        trial = int(row["trial"])
        candidates.append(Candidate(f"trial {trial}", trial, decision))
    return candidates


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _front_first(done: pd.DataFrame, spec: OptimizeSpec) -> pd.DataFrame:
    """Feasible non-dominated trials first (by the first objective), then the rest."""
    objectives = spec.objectives()
    signs = np.array([1.0 if o.minimize else -1.0 for o in objectives])
    values = done[[o.kpi for o in objectives]].to_numpy(dtype=float) * signs
    feasible = done["feasible"].to_numpy(dtype=bool)
    rank = np.ones(len(done), dtype=int)
    for i in range(len(done)):
        if not feasible[i]:
            rank[i] = 2
            continue
        others = values[feasible]
        dominated = ((others <= values[i]).all(axis=1) & (others < values[i]).any(axis=1)).any()
        rank[i] = 1 if dominated else 0
    first = objectives[0]
    return (
        done.assign(_rank=rank)
        .sort_values(["_rank", first.kpi, "trial"], ascending=[True, first.minimize, True])
        .drop(columns="_rank")
    )


def selection_seeds(spec: OptimizeSpec) -> list[int]:
    """Fresh seeds of the selection: the replication indices after the search's."""
    start = spec.replications
    return [
        replication_seed(spec.seed, r) for r in range(start, start + spec.selection.replications)
    ]


def run_selection(
    spec: OptimizeSpec,
    out: str | Path,
    *,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    max_leads: int | None = None,
) -> tuple[list[Candidate], pd.DataFrame]:
    """Re-run the candidates into ``out/selection-<key>``; their runs, one row each.

    The folder is named by the candidates and seeds, so re-running the choice of the
    same study reuses every stored run, and a longer study selects afresh. A
    selection killed part-way is resumed: its parts are verified (seeds, candidate)
    and the damaged or missing ones run again. Its metadata records each invocation,
    ``complete`` only once every candidate is stored.
    """
    out = Path(out)
    candidates = pick_candidates(trials_frame(out, spec), spec)
    seeds = selection_seeds(spec)
    key_data = {
        "candidates": [c.decision for c in candidates],
        "seeds": seeds,
    }
    key = hashlib.sha1(json.dumps(key_data, sort_keys=True, default=str).encode()).hexdigest()[:10]
    folder = out / f"selection-{key}"
    if ResultsStore.exists(folder):
        store = ResultsStore.open(folder)
        store.remove_temporaries()
        damaged = store.damaged_parts(seeds, [c.decision for c in candidates])
        if damaged:
            store.quarantine(list(damaged))
        mark_unfinished(store)
    else:
        store = ResultsStore.create(
            folder,
            {
                "kind": "optimization-selection",
                "candidates": [c.__dict__ for c in candidates],
                "seeds": seeds,
            },
        )
    base_raw = base_scenario(spec).model_dump(mode="json")
    reps = tuple(range(spec.replications, spec.replications + len(seeds)))
    done = store.completed_points()
    tasks = [
        PointTask(i, c.decision, tuple(seeds), reps, base_raw, max_leads=max_leads)
        for i, c in enumerate(candidates)
        if i not in done
    ]
    run_id = uuid.uuid4().hex[:12]
    store.update_invocation(run_id, started=now_iso(), status="running", todo=len(tasks))
    status = "failed"
    try:
        if tasks:
            with backend_context(backend, workers, scheduler) as pool:
                for task, outcome in pool.map(run_point, tasks):
                    cand = candidates[int(task.point)]
                    trial = cand.trial if cand.trial is not None else -1
                    rows = _rows(task, outcome, run_id, trial)
                    store.write_point(int(task.point), rows, replace=True)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.update_invocation(run_id, ended=now_iso(), status=status)
    runs = store.load()
    runs["scenario"] = [candidates[int(p)].label for p in runs["point"]]
    return candidates, runs


# ------------------------------------------------------------------ statistics


def _paired(runs: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """Replications by candidate label for one KPI (rows: replication)."""
    ok = runs[runs["status"] == "ok"]
    return ok.pivot(index="replication", columns="scenario", values=kpi).astype(float)


def estimates(runs: pd.DataFrame, candidates: list[Candidate], spec: OptimizeSpec) -> pd.DataFrame:
    """Per candidate: mean and interval of every objective and constraint KPI, feasibility.

    Columns ``<kpi>``, ``<kpi>_low``, ``<kpi>_high`` (objectives, constraints and
    :data:`REPORTED_KPIS`), ``n``, ``feasible``, ``failed``, and per constraint
    ``<kpi>_bound`` (the confidence bound that must meet it).
    """
    conf = spec.selection.confidence
    rows = []
    for cand in candidates:
        mine = runs[runs["scenario"] == cand.label]
        ok = mine[mine["status"] == "ok"]
        row: dict[str, Any] = {"label": cand.label, "trial": cand.trial, **cand.decision}
        row["n"] = len(ok)
        row["failed"] = bool((mine["status"] == "error").any()) or ok.empty
        for kpi in dict.fromkeys([*spec.kpis(), *REPORTED_KPIS]):
            values = ok[kpi].to_numpy(dtype=float) if kpi in ok else np.array([])
            mean, low, high = t_interval(values, conf)
            row.update({kpi: mean, f"{kpi}_low": low, f"{kpi}_high": high})
        feasible = not row["failed"]
        for c in spec.constraint_list():
            bound = row[f"{c.kpi}_high"] if c.op == "<=" else row[f"{c.kpi}_low"]
            row[f"{c.kpi}_bound"] = bound
            feasible = feasible and math.isfinite(bound) and c.violation(bound) <= 0
        for o in spec.objectives():
            feasible = feasible and math.isfinite(row[o.kpi])
        row["feasible"] = feasible
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


def screen_best(
    runs: pd.DataFrame, labels: list[str], kpi: str, minimize: bool, confidence: float
) -> list[str]:
    """Nelson et al.'s screening subset: the labels that may be the best, paired CRN."""
    if len(labels) <= 1:
        return list(labels)
    wide = _paired(runs, kpi)[labels]
    sign = 1.0 if minimize else -1.0
    y = wide.to_numpy(dtype=float) * sign
    k = len(labels)
    level = (confidence) ** (1.0 / (k - 1))
    keep = []
    for i in range(k):
        survives = True
        for j in range(k):
            if i == j:
                continue
            both = np.isfinite(y[:, i]) & np.isfinite(y[:, j])
            d = y[both, i] - y[both, j]
            if len(d) < 2:
                continue
            t = float(stats.t.ppf(level, len(d) - 1))
            w = t * float(d.std(ddof=1)) / math.sqrt(len(d))
            if d.mean() > w:
                survives = False
                break
        if survives:
            keep.append(labels[i])
    return keep


@dataclass(frozen=True)
class Choice:
    """The outcome of the selection.

    Attributes
    ----------
    candidates
        The candidates, current configuration first.
    runs
        Every selection replication, one row each (``scenario`` is the label).
    table
        :func:`estimates`, one row per candidate.
    best
        Label of the recommended candidate, or None when none meets every constraint
        (with several objectives: the front's member best on the first objective).
    tied
        Labels statistically tied with the best (screening subset, best excluded).
    front
        With several objectives: labels of the re-run Pareto front.
    versus_current
        Paired comparison of the best with the current configuration
        (:meth:`simfunnel.Comparison.table` rows of the objective and constraint KPIs).
    """

    candidates: list[Candidate]
    runs: pd.DataFrame
    table: pd.DataFrame
    best: str | None
    tied: list[str]
    front: list[str]
    versus_current: pd.DataFrame | None


def choose(candidates: list[Candidate], runs: pd.DataFrame, spec: OptimizeSpec) -> Choice:
    """The best candidate, its tied set and its comparison with the current configuration."""
    table = estimates(runs, candidates, spec)
    objectives = spec.objectives()
    feasible = [label for label in table.index if bool(table.loc[label, "feasible"])]
    first = objectives[0]
    front: list[str] = []
    if len(objectives) > 1 and feasible:
        signs = np.array([1.0 if o.minimize else -1.0 for o in objectives])
        values = table.loc[feasible, [o.kpi for o in objectives]].to_numpy(dtype=float) * signs
        for i, label in enumerate(feasible):
            dominated = ((values <= values[i]).all(axis=1) & (values < values[i]).any(axis=1)).any()
            if not dominated:
                front.append(label)
    pool = front or feasible
    best: str | None = None
    tied: list[str] = []
    if pool:
        means = table.loc[pool, first.kpi].astype(float)
        best = str(means.idxmin() if first.minimize else means.idxmax())
        if len(objectives) == 1:
            subset = screen_best(
                runs, feasible, first.kpi, first.minimize, spec.selection.confidence
            )
            tied = [label for label in subset if label != best]
    versus = None
    if best is not None and best != CURRENT:
        pair = runs[runs["scenario"].isin([CURRENT, best]) & (runs["status"] == "ok")]
        if pair["scenario"].nunique() == 2:
            kpis = spec.kpis()
            comparison = Comparison(
                runs=pair[["scenario", "replication", *kpis]],
                baseline=CURRENT,
                confidence=spec.selection.confidence,
                order=(CURRENT, best),
            )
            versus = comparison.table(kpis).xs(best, level="scenario")
    return Choice(candidates, runs, table, best, tied, front, versus)

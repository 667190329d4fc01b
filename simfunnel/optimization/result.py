"""``optimize``: search, then choose, and the result that answers the planner."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simfunnel.errors import SimfunnelError, SpecError
from simfunnel.experiments.backends import Backend
from simfunnel.experiments.replications import backend_context
from simfunnel.experiments.store import POINTS, now_iso
from simfunnel.optimization import answer
from simfunnel.optimization.recovery import writing
from simfunnel.optimization.search import (
    SearchSummary,
    check_search_limits,
    search_locked,
    trials_frame,
)
from simfunnel.optimization.select import CURRENT, Choice, choose, run_selection
from simfunnel.optimization.spec import (
    OptimizeSpec,
    budget_path,
    default_cost_sources,
    load_optimize_spec,
)
from simfunnel.optimization.verdict import Verdict, sentence, verdict, versus_current

_VERSUS_FIELDS = (
    "diff",
    "diff_low",
    "diff_high",
    "rel_change",
    "rel_low",
    "rel_high",
    "significant",
)


@dataclass(frozen=True)
class OptimizationResult:
    """What :func:`optimize` found.

    Attributes
    ----------
    spec
        The checked spec.
    path
        The study folder (Optuna's ``study.db`` and the Parquet results).
    search
        What the search invocation did.
    trials
        One row per trial: decision, KPI means of its replications, feasibility.
    choice
        The noise-aware selection: candidates, estimates, best, tied set, front.
    """

    spec: OptimizeSpec
    path: Path
    search: SearchSummary
    trials: pd.DataFrame
    choice: Choice
    default_costs: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """What to do: keep the current setup or change it (:func:`verdict`)."""
        return verdict(self.spec, self.choice)

    @property
    def recommended(self) -> str | None:
        """The label of the candidate recommended (``current`` to keep), or None."""
        return self.verdict.label

    @property
    def best(self) -> pd.Series | None:
        """The recommended candidate's row of estimates, or None."""
        label = self.recommended
        if label is None:
            return None
        return self.choice.table.loc[label]

    @property
    def decision(self) -> dict[str, Any] | None:
        """The recommended values by dotted path (dollars a week by source...)."""
        row = self.best
        if row is None:
            return None
        return {p: answer.clean(row[p]) for p in self.spec.decision_paths()}

    @property
    def warnings(self) -> list[str]:
        """Where the recommendation sits on a bound of the search space."""
        decision = self.decision
        if decision is None or self.recommended == CURRENT:
            return []
        return answer.bound_warnings(self.spec, decision)

    @property
    def simulations(self) -> dict[str, int]:
        """Simulation runs: the search's (all trials so far) and the selection's."""
        search = len(self.trials) * self.spec.replications
        selection = len(self.choice.candidates) * self.spec.selection.replications
        return {"search": search, "selection": selection, "total": search + selection}

    def sentence(self) -> str:
        """The answer in words, led by the decision (and what it rests on, if a default)."""
        said = sentence(self.spec, self.choice)
        if self.default_costs:
            said += (
                f" It rests on a default cost per lead for {', '.join(self.default_costs)}, "
                "not your spend (allowed by --allow-default-costs)."
            )
        return said

    def allocation(self) -> pd.DataFrame:
        """Weekly dollars by source: the recommendation, the current split and the tied mixes."""
        if self.spec.budget is None:
            return pd.DataFrame()
        labels = [CURRENT] + ([self.recommended] if self.recommended else []) + self.choice.tied
        labels = list(dict.fromkeys(labels))
        table = self.choice.table
        rows = {
            label: {s: float(table.loc[label, budget_path(s)]) for s in self.spec.budget.sources}
            for label in labels
        }
        return pd.DataFrame(rows).T.rename_axis("candidate")

    def to_dict(self) -> dict[str, Any]:
        """The answer for machines (what ``simfunnel optimize --json`` prints)."""
        spec = self.spec
        table = self.choice.table
        said = self.verdict
        best = said.label
        estimates: dict[str, Any] = {}
        constraints: list[dict[str, Any]] = []
        versus: dict[str, Any] = {}
        if best is not None:
            row = table.loc[best]
            for kpi in spec.kpis():
                estimates[kpi] = {
                    "mean": answer.clean(row[kpi]),
                    "ci_low": answer.clean(row[f"{kpi}_low"]),
                    "ci_high": answer.clean(row[f"{kpi}_high"]),
                }
            for c in spec.constraint_list():
                constraints.append(
                    {
                        "kpi": c.kpi,
                        "op": c.op,
                        "limit": c.value,
                        "mean": answer.clean(row[c.kpi]),
                        "bound": answer.clean(row[f"{c.kpi}_bound"]),
                        "met": bool(c.violation(row[f"{c.kpi}_bound"]) <= 0),
                    }
                )
            against = versus_current(self.choice, best, spec.kpis(), spec.selection.confidence)
            if against is not None:
                for kpi, v in against.iterrows():
                    versus[str(kpi)] = {k: answer.clean(v[k]) for k in _VERSUS_FIELDS}
        states = self.trials["state"].value_counts().to_dict() if len(self.trials) else {}
        return {
            "sentence": self.sentence(),
            "verdict": said.kind,
            "default_costs": list(self.default_costs),
            "recommendation": None
            if best is None
            else {
                "label": best,
                "trial": None if best == CURRENT else int(table.loc[best, "trial"]),
                "decision": self.decision,
                "estimates": estimates,
                "constraints": constraints,
                "versus_current": versus,
            },
            "tied": [
                {
                    "label": label,
                    "decision": {
                        p: answer.clean(table.loc[label, p]) for p in spec.decision_paths()
                    },
                }
                for label in self.choice.tied
            ],
            "pareto_front": list(self.choice.front),
            "warnings": self.warnings,
            "objectives": [o.model_dump() for o in spec.objectives()],
            "constraints": [c.describe() for c in spec.constraint_list()],
            "confidence": spec.selection.confidence,
            "trials": {
                "total": len(self.trials),
                "complete": int(states.get("complete", 0)),
                "failed": int(states.get("fail", 0)),
                "feasible": int(self.trials["feasible"].sum()) if len(self.trials) else 0,
            },
            "simulations": self.simulations,
            "candidates": answer.table_records(table.reset_index()),
            "path": str(self.path),
        }


def optimize(
    spec: OptimizeSpec | dict[str, Any] | str | Path,
    out: str | Path | None = None,
    *,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: bool = True,
    max_leads: int | None = None,
    max_runs: int | None = None,
    allow_default_costs: bool = False,
) -> OptimizationResult:
    """Search for the best budget split and settings, then choose among the best, noise-aware.

    Parameters
    ----------
    spec
        An :class:`OptimizeSpec`, a dict, or a YAML/JSON file (see
        :mod:`simfunnel.optimization.spec`); checked whole before anything runs.
    out
        The study folder (new or empty, unless ``resume``); default: a new temporary one.
    backend, workers, scheduler
        ``serial``, ``processes`` (all local cores) or ``dask``, as for sweeps, or a
        backend instance.
    resume
        Continue the study in ``out``: its completed trials are kept, open ones
        finished, damaged parts run again, and a selection killed part-way resumed.
    progress
        Show a progress bar with the best feasible value so far.
    max_leads, max_runs
        Refuse, before anything runs, a study of more simulations than ``max_runs``
        (trials times replications, plus the selection's candidates times its
        replications) or a base scenario above ``max_leads`` leads a run; each run
        is held to ``max_leads`` too. Defaults in :mod:`simfunnel.limits`.
    allow_default_costs
        Optimise a budget split whose sources' cost per lead is a default (a calibrated
        scenario records the cost it could not see as one); refused otherwise, since
        the split would rest on a figure that is not the user's. The answer says so.

    Returns
    -------
    OptimizationResult
        ``.sentence()``, ``.decision``, ``.choice``, ``.trials``, ``.to_dict()``.

    Raises
    ------
    SpecError
        A bad spec, before anything runs.
    StoreError
        ``out`` is a file, holds something else, a study of another spec or a damaged
        ``study.db``, or another process is writing to it.
    LimitError
        Above a limit, before anything runs.
    SimfunnelError
        Every trial failed (the message gives the first failure and where it is stored).
    """
    checked = load_optimize_spec(spec)
    defaults = default_cost_sources(checked)
    if defaults and not allow_default_costs:
        raise SpecError(
            f"cost per lead of {', '.join(defaults)}: a default (the scenario's provenance "
            "says so), not your figure, and the split would rest on it; set each source's "
            "cost_per_lead_usd (its spend over its leads) in the scenario or the spec's "
            "overrides, or pass allow_default_costs (--allow-default-costs) to go on"
        )
    check_search_limits(checked, max_leads, max_runs)
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="simfunnel-opt-"))
    name = backend if isinstance(backend, str) else backend.name
    with backend_context(backend, workers, scheduler) as pool, writing(folder, resume) as store:
        summary, run_id = search_locked(
            store,
            checked,
            pool,
            name,
            resume,
            progress,
            max_leads=max_leads,
            final_status="selecting",
        )
        status = "failed"
        try:
            refuse_if_all_failed(folder, checked)
            candidates, runs = run_selection(checked, folder, backend=pool, max_leads=max_leads)
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            store.update_invocation(run_id, status=status, ended=now_iso())
    choice = choose(candidates, runs, checked)
    return OptimizationResult(
        spec=checked,
        path=folder,
        search=summary,
        trials=trials_frame(folder, checked),
        choice=choice,
        default_costs=defaults,
    )


def refuse_if_all_failed(out: Path, spec: OptimizeSpec) -> None:
    """One line when no trial completed: the first failure and where its rows are."""
    trials = trials_frame(out, spec)
    if trials.empty or (trials["state"] == "complete").any():
        return
    first = trials.iloc[0]
    part = out / POINTS / f"part-{int(first['trial']):06d}.parquet"
    raise SimfunnelError(
        f"every trial failed ({len(trials)}); the first, trial {int(first['trial'])}: "
        f"{first['error']} (its rows, with the error, are in {part})"
    )

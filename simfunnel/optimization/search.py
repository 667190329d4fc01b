"""The search: Optuna's ask-and-tell loop on simfunnel's execution backends.

A study lives in two places under its ``--out`` folder::

    study.db                 Optuna's own storage (SQLite): every trial, its state,
                             its parameters and values
    metadata.json, points/   a results store (:mod:`simfunnel.experiments.store`):
                             one Parquet part per trial with every replication

**Reproducible batches.** Trials are asked ``batch_size`` at a time (slots 0 to
b - 1, then b to 2b - 1...), run in parallel on the backend, and told as they
finish. The sampler of each ask is seeded from the spec's seed and the trial's
slot, and the batch size belongs to the spec, not to the number of workers, so
the same spec and seed ask the same trials on any backend and any worker count.

**Common random numbers.** Every trial runs the same replication seeds, so two
candidate mixes differ by their decisions and not by their luck.

**Resume.** A trial is written to the results store before it is told to Optuna. A
killed run leaves at most its last batch ``RUNNING``, one of them perhaps without
all its parameters (killed inside the ask): on resume that one is failed and its
slot asked again, a trial whose replications are stored is told from the store,
and the others are run again under the same trial number. Every part is verified
first (:mod:`simfunnel.optimization.recovery`). No completed trial is lost or run
twice, and the resumed study is the one an uninterrupted run would have made.

**Failures.** A trial whose simulation raises is stored with its error, told as
failed, and the study goes on.
"""

from __future__ import annotations

import math
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simfunnel.errors import StoreError
from simfunnel.experiments.backends import Backend, Done, Outcome
from simfunnel.experiments.replications import backend_context
from simfunnel.experiments.runner import PointTask, run_point
from simfunnel.experiments.store import ResultsStore, now_iso
from simfunnel.limits import check_runs, check_scenario
from simfunnel.optimization.recovery import (
    IDENTITY_KEY,
    IDENTITY_VERSION,
    SLOT,
    abandon_incomplete,
    decision_hash,
    mark_unfinished,
    plan_resume,
    slot_trials,
    study_damaged,
    writing,
)
from simfunnel.optimization.simplex import cube_names, split_from_cube
from simfunnel.optimization.spec import (
    OptimizeSpec,
    base_scenario,
    budget_path,
    load_optimize_spec,
    parameter_is_integer,
)
from simfunnel.streams import replication_seed
from simfunnel.version import __version__

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "study.db"
STUDY_NAME = "simfunnel-optimize"
#: Spec fields that may change on resume: they do not alter the trials already run.
RESUMABLE_FIELDS = ("trials", "selection")


@dataclass(frozen=True)
class SearchSummary:
    """What one invocation of :func:`run_search` did.

    Attributes
    ----------
    path
        The study folder.
    trials
        Trials in the study after this invocation.
    ran
        Trials evaluated by this invocation (including those a killed run left open).
    recovered
        Open trials of a killed run told from replications already stored.
    failed
        Trials of this invocation whose simulation raised or gave no objective value.
    seconds
        Wall time of this invocation.
    abandoned
        Open trials a killed run left without all their parameters: failed, and
        their slots asked again.
    quarantined
        Slots whose stored part was missing its rows or held another trial's: set
        aside in ``quarantine/`` and run again.
    """

    path: Path
    trials: int
    ran: int
    recovered: int
    failed: int
    seconds: float
    abandoned: int = 0
    quarantined: tuple[int, ...] = ()


def search_key(spec: OptimizeSpec) -> dict[str, Any]:
    """The spec without the fields a resume may change: equal keys, same study."""
    data = spec.model_dump(mode="json")
    for name in RESUMABLE_FIELDS:
        data.pop(name, None)
    return data


def search_seeds(spec: OptimizeSpec) -> list[int]:
    """Replication seeds of every trial: the same for all (common random numbers)."""
    return [replication_seed(spec.seed, r) for r in range(spec.replications)]


def sampler_seed(seed: int, trial_number: int) -> int:
    """The seed of the sampler that asks trial ``trial_number``."""
    state = np.random.SeedSequence([seed, trial_number, 0x0B7]).generate_state(1)
    return int(state[0])


# ------------------------------------------------------------ search space


def distributions(spec: OptimizeSpec) -> dict[str, Any]:
    """Optuna distributions of the decision variables, by name."""
    import optuna

    base_raw = base_scenario(spec).model_dump(mode="json")
    out: dict[str, Any] = {}
    if spec.budget is not None:
        for name in cube_names(len(spec.budget.sources)):
            out[name] = optuna.distributions.FloatDistribution(0.0, 1.0)
    for p in spec.parameters:
        if p.levels is not None:
            out[p.path] = optuna.distributions.CategoricalDistribution(list(p.levels))
        elif p.range is not None and parameter_is_integer(p, base_raw):
            out[p.path] = optuna.distributions.IntDistribution(int(p.range[0]), int(p.range[1]))
        elif p.range is not None:
            out[p.path] = optuna.distributions.FloatDistribution(
                float(p.range[0]), float(p.range[1])
            )
    return out


def decision_from_params(spec: OptimizeSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The scenario overrides of a trial: dollars by source, then the other parameters."""
    decision: dict[str, Any] = {}
    if spec.budget is not None:
        low, high = spec.budget.dollar_bounds()
        coords = [float(params[n]) for n in cube_names(len(spec.budget.sources))]
        amounts = split_from_cube(coords, int(spec.budget.total_per_week_usd), low, high)
        for source, amount in zip(spec.budget.sources, amounts, strict=True):
            decision[budget_path(source)] = amount
    for p in spec.parameters:
        decision[p.path] = params[p.path]
    return decision


# ----------------------------------------------------------------- sampler


def make_sampler(spec: OptimizeSpec, trial_number: int) -> optuna.samplers.BaseSampler:
    """The sampler that asks trial ``trial_number``, seeded from the spec and the number."""
    import optuna

    seed = sampler_seed(spec.seed, trial_number)
    kind = spec.resolved_sampler()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=max(4, spec.batch_size), seed=seed)
        if kind == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup_trials(spec))
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup_trials(spec),
            multivariate=True,
            group=True,
        )


def startup_trials(spec: OptimizeSpec) -> int:
    """Random trials before the model-based sampler takes over: a third, 4 to 10."""
    return max(4, min(10, spec.trials // 3))


# -------------------------------------------------------------------- study


def storage_url(out: Path) -> str:
    """The SQLite URL of the study in ``out``."""
    return f"sqlite:///{(out / STUDY_FILE).resolve()}"


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial log lines off (a progress bar reports instead)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def open_study(out: str | Path, spec: OptimizeSpec) -> optuna.Study:
    """The study stored in ``out`` (created if absent)."""
    import optuna

    with quiet_optuna():
        return optuna.create_study(
            storage=storage_url(Path(out)),
            study_name=STUDY_NAME,
            directions=[o.direction for o in spec.objectives()],
            sampler=make_sampler(spec, 0),
            load_if_exists=True,
        )


def _prepare(store: ResultsStore, spec: OptimizeSpec, resume: bool) -> bool:
    """Under the lock: start a new study, or check one to resume; whether parts are hashed."""
    out = store.path
    if ResultsStore.exists(out):  # only with resume: writing() refused it otherwise
        opened = ResultsStore.open(out)  # checks the format version
        meta = opened.metadata()
        if meta.get("kind") != "optimization":
            raise StoreError(f"{out}: holds a sweep, not an optimisation; choose another --out")
        if meta.get("search_key") != search_key(spec):
            raise StoreError(
                f"{out}: holds a study made by a different optimisation spec; resume it "
                "with the spec it was started with (only trials and selection may change), "
                "or choose another --out"
            )
        store.remove_temporaries()
        mark_unfinished(store)
        return bool(meta.get(IDENTITY_KEY))
    base = base_scenario(spec)
    store.initialize(
        {
            "kind": "optimization",
            "simfunnel_version": __version__,
            "spec": spec.model_dump(mode="json"),
            "search_key": search_key(spec),
            "base_scenario": base.model_dump(mode="json"),
            "seeds": {"root": spec.seed, "replications": search_seeds(spec)},
            "study": {"storage": STUDY_FILE, "name": STUDY_NAME},
            IDENTITY_KEY: IDENTITY_VERSION,
        }
    )
    return True


def search_runs(spec: OptimizeSpec, selection: bool = True) -> tuple[int, str]:
    """The simulations a study asks for, and how they come about."""
    runs = spec.trials * spec.replications
    what = f"{spec.trials:,} trials x {spec.replications:,} replications"
    if selection:
        candidates = spec.selection.top + 1
        runs += candidates * spec.selection.replications
        what += (
            f" + {candidates:,} candidates x {spec.selection.replications:,} selection replications"
        )
    return runs, what


def check_search_limits(
    spec: OptimizeSpec,
    max_leads: int | None = None,
    max_runs: int | None = None,
    selection: bool = True,
) -> None:
    """Refuse, before anything runs, a study of too many runs or too big a base scenario."""
    runs, what = search_runs(spec, selection)
    check_runs(runs, what, max_runs)
    check_scenario(base_scenario(spec), max_leads)


# --------------------------------------------------------------- evaluation


def kpi_means(rows: list[dict[str, Any]], kpis: Sequence[str]) -> dict[str, float]:
    """Mean of each KPI over the replications where it is defined (NaN if none)."""
    out: dict[str, float] = {}
    for kpi in kpis:
        values = np.array([r.get(kpi, math.nan) for r in rows], dtype=float)
        finite = values[np.isfinite(values)]
        out[kpi] = float(finite.mean()) if len(finite) else math.nan
    return out


def _rows(
    task: PointTask, outcome: Outcome, run_id: str, trial: int, phase: str = "search"
) -> list[dict[str, Any]]:
    base = {"point": task.point, "trial": trial, "phase": phase, **task.params}
    if isinstance(outcome, Done):
        return [
            {**base, **row, "status": "ok", "error": None, "run_id": run_id}
            for row in outcome.value
        ]
    return [
        {**base, "replication": r, "seed": s, "status": "error", "error": outcome.error}
        | {"run_id": run_id}
        for r, s in zip(task.replications, task.seeds, strict=True)
    ]


def _tell(study: optuna.Study, spec: OptimizeSpec, number: int, rows: list[dict[str, Any]]) -> bool:
    """Tell Optuna a trial's outcome from its stored rows; False if it failed."""
    import optuna

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    trial = optuna.trial.Trial(study, trial_id)
    errors = [r["error"] for r in rows if r.get("status") == "error"]
    if errors:
        trial.set_user_attr("error", str(errors[0]))
        study.tell(number, state=optuna.trial.TrialState.FAIL)
        return False
    means = kpi_means(rows, spec.kpis())
    trial.set_user_attr("kpis", {k: (None if math.isnan(v) else v) for k, v in means.items()})
    # Optuna's samplers read constraints as values <= 0 when met (TPE and NSGA-II
    # prefer feasible trials); the list is kept too, for reading the study back.
    violations = [min(c.violation(means[c.kpi]), 1e300) for c in spec.constraint_list()]
    for constraint, violation in zip(spec.constraint_list(), violations, strict=True):
        trial.set_constraint(constraint.describe(), violation)
    trial.set_user_attr("constraints", violations)
    values = [means[o.kpi] for o in spec.objectives()]
    undefined = [o.kpi for o, v in zip(spec.objectives(), values, strict=True) if math.isnan(v)]
    if undefined:
        trial.set_user_attr("error", f"{undefined[0]} is undefined in every replication")
        study.tell(number, state=optuna.trial.TrialState.FAIL)
        return False
    study.tell(number, values)
    return True


def best_feasible(study: optuna.Study, spec: OptimizeSpec) -> float | None:
    """The best objective value of a complete trial meeting every constraint (by means)."""
    import optuna

    objective = spec.objectives()[0]
    values = [
        t.values[0]
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if all(v <= 0 for v in t.user_attrs.get("constraints", []))
    ]
    if not values:
        return None
    return min(values) if objective.minimize else max(values)


def run_search(
    spec: OptimizeSpec | dict[str, Any] | str | Path,
    out: str | Path,
    *,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: bool = True,
    on_trial: Callable[[int], None] | None = None,
    max_leads: int | None = None,
    max_runs: int | None = None,
) -> SearchSummary:
    """Run the search phase of an optimisation into the study folder ``out``.

    Parameters
    ----------
    spec
        An OptimizeSpec, dict, or YAML/JSON file; checked whole before anything runs.
    out
        Study folder: new or empty, unless ``resume``.
    backend, workers, scheduler
        ``serial``, ``processes`` or ``dask`` (as for sweeps), or a backend instance.
    resume
        Continue the study stored in ``out`` (made by the same spec; only ``trials``
        and ``selection`` may differ) up to ``spec.trials`` trials.
    progress
        Show a progress bar with the best feasible value so far.
    on_trial
        Called with each trial's slot once it is stored and told.
    max_leads, max_runs
        Refuse, before anything runs, a search of more runs than ``max_runs``
        (trials times replications) or a base scenario above ``max_leads`` leads a
        run; each run is held to ``max_leads`` too. Defaults in :mod:`simfunnel.limits`.

    Raises
    ------
    SpecError
        A bad spec; nothing is written.
    StoreError
        ``out`` holds something else, a study of a different spec or a damaged
        ``study.db``, or another process is writing to it.
    LimitError
        Above a limit; nothing is written.
    """
    spec = load_optimize_spec(spec)
    check_search_limits(spec, max_leads, max_runs, selection=False)
    out = Path(out)
    with backend_context(backend, workers, scheduler) as pool, writing(out, resume) as store:
        name = backend if isinstance(backend, str) else backend.name
        summary, _ = search_locked(store, spec, pool, name, resume, progress, on_trial, max_leads)
    return summary


def load_study_checked(out: Path, spec: OptimizeSpec) -> optuna.Study:
    """The study in ``out`` (created if absent), or one line if ``study.db`` is damaged."""
    import sqlalchemy.exc

    try:
        study = open_study(out, spec)
        study.get_trials(deepcopy=False)
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ValueError, KeyError) as exc:
        raise study_damaged(out / STUDY_FILE, exc) from None
    return study


def search_locked(
    store: ResultsStore,
    spec: OptimizeSpec,
    pool: Backend[Any],
    backend_name: str,
    resume: bool,
    progress: bool,
    on_trial: Callable[[int], None] | None = None,
    max_leads: int | None = None,
    final_status: str = "complete",
) -> tuple[SearchSummary, str]:
    """The search, in a study folder this process holds the lock of; and its run id.

    The invocation ends recorded as ``final_status`` (``selecting`` when the
    selection follows, which then records the end).
    """
    out = store.path
    hashed = _prepare(store, spec, resume)
    base_raw = base_scenario(spec).model_dump(mode="json")
    seeds = tuple(search_seeds(spec))
    reps = tuple(range(spec.replications))
    space = distributions(spec)
    run_id = uuid.uuid4().hex[:12]
    started = time.perf_counter()
    ran = recovered = failed = 0
    status = "failed"
    with quiet_optuna():
        study = load_study_checked(out, spec)
        store.update_invocation(
            run_id,
            started=now_iso(),
            status="running",
            backend=backend_name,
            trials_target=spec.trials,
        )
        abandoned = abandon_incomplete(study, list(space))
        slots = slot_trials(study)
        plan = plan_resume(
            store,
            slots,
            [decision_from_params(spec, t.params) for t in slots],
            list(seeds),
            hashed,
        )
        for slot in plan.recover:
            rows = store.read_point(slot).to_dict(orient="records")
            failed += not _tell(study, spec, slots[slot].number, rows)
            recovered += 1
        n_slots = len(slots)
        todo = max(0, spec.trials - n_slots) + len(plan.rerun) + len(plan.heal)
        bar = tqdm(
            total=todo, disable=not progress, desc="optimize", unit="trial", dynamic_ncols=True
        )
        try:
            # (slot, Optuna trial number, decision, whether to tell Optuna its outcome)
            pending = [
                (slot, slots[slot].number, decision_from_params(spec, slots[slot].params), tell)
                for slot, tell in sorted(
                    [(s, True) for s in plan.rerun] + [(s, False) for s in plan.heal]
                )
            ]
            while True:
                batch, pending = pending, []
                # A batch ends at a multiple of batch_size, so a resumed batch is
                # completed with exactly the trials the killed run would have asked.
                while n_slots < spec.trials and not (
                    any(tell for *_, tell in batch) and n_slots % spec.batch_size == 0
                ):
                    study.sampler = make_sampler(spec, n_slots)
                    trial = study.ask(space)
                    decision = decision_from_params(spec, trial.params)
                    trial.set_user_attr(SLOT, n_slots)
                    trial.set_user_attr("decision", decision)
                    batch.append((n_slots, trial.number, decision, True))
                    n_slots += 1
                if not batch:
                    break
                numbers = {slot: (number, tell) for slot, number, _, tell in batch}
                tasks = [
                    PointTask(slot, decision, seeds, reps, base_raw, max_leads=max_leads)
                    for slot, _, decision, _ in batch
                ]
                for task, outcome in pool.map(run_point, tasks):
                    slot = int(task.point)
                    number, tell = numbers[slot]
                    marks = {"params_hash": decision_hash(task.params)} if hashed else {}
                    rows = [row | marks for row in _rows(task, outcome, run_id, number)]
                    store.write_point(slot, rows, replace=True)
                    if tell:
                        ok = _tell(study, spec, number, rows)
                        failed += not ok
                    ran += 1
                    best = best_feasible(study, spec)
                    bar.set_postfix(
                        best="-" if best is None else f"{best:,.4g}",
                        failed=failed,
                        refresh=False,
                    )
                    bar.update(1)
                    if on_trial is not None:
                        on_trial(slot)
            status = final_status
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            bar.close()
            store.update_invocation(
                run_id, ended=now_iso(), status=status, trials_run=ran, trials_failed=failed
            )
    summary = SearchSummary(
        path=out,
        trials=n_slots,
        ran=ran,
        recovered=recovered,
        failed=failed,
        seconds=time.perf_counter() - started,
        abandoned=abandoned,
        quarantined=tuple(plan.quarantined),
    )
    return summary, run_id


# ------------------------------------------------------------------ reading


def trials_frame(out: str | Path, spec: OptimizeSpec | None = None) -> pd.DataFrame:
    """One row per trial: its slot, state, the decision, KPI means, feasibility, error.

    ``trial`` is the slot (0, 1, 2...); a trial a killed run left without all its
    parameters is not listed, its slot being held by the trial asked again. The
    objective columns are the KPI means (``cac``...); ``feasible`` is true when
    every constraint is met by the means of the search replications.
    """
    import optuna

    out = Path(out)
    if spec is None:
        spec = OptimizeSpec.model_validate(ResultsStore.open(out).metadata()["spec"])
    with quiet_optuna():
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(out))
    rows = []
    for slot, t in enumerate(slot_trials(study)):
        decision = t.user_attrs.get("decision") or (
            decision_from_params(spec, t.params) if t.params else {}
        )
        kpis = {k: (math.nan if v is None else v) for k, v in t.user_attrs.get("kpis", {}).items()}
        violations = t.user_attrs.get("constraints", [])
        rows.append(
            {
                "trial": slot,
                "state": t.state.name.lower(),
                **decision,
                **kpis,
                "feasible": t.state == optuna.trial.TrialState.COMPLETE
                and all(v <= 0 for v in violations),
                "error": t.user_attrs.get("error"),
            }
        )
    return pd.DataFrame(rows)

"""Parameter sweeps: run a spec's design on a backend into a results store."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from simfunnel.errors import SimfunnelError, StoreError
from simfunnel.experiments.backends import Backend, Done
from simfunnel.experiments.designs import DesignPoints, build_design, design_size, extreme_overrides
from simfunnel.experiments.replications import backend_context
from simfunnel.experiments.runner import ModelFunction, PointTask, run_point
from simfunnel.experiments.spec import SweepSpec, base_scenario, load_spec
from simfunnel.experiments.store import ResultsStore, check_store_path, now_iso
from simfunnel.limits import check_runs, check_scenario
from simfunnel.streams import replication_seed
from simfunnel.version import __version__


@dataclass(frozen=True)
class SweepSummary:
    """What one invocation of :func:`run_sweep` did.

    Attributes
    ----------
    path
        The results store.
    points
        Points in the design.
    ran
        Points computed by this invocation.
    skipped
        Points already in the store (a resume).
    failed
        Points of this invocation whose run raised (recorded with their error).
    seconds
        Wall time of this invocation.
    """

    path: Path
    points: int
    ran: int
    skipped: int
    failed: int
    seconds: float

    def describe(self) -> str:
        """One line for people."""
        parts = [f"{self.ran} run now"]
        if self.skipped:
            parts.append(f"{self.skipped} already stored")
        parts.append(f"{self.failed} failed")
        return f"{self.points} points in {self.path}: {', '.join(parts)} ({self.seconds:.1f} s)"


def _spec_json(spec: SweepSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def run_sweep(
    spec: SweepSpec | dict[str, Any] | str | Path,
    out: str | Path,
    *,
    backend: str | Backend[Any] = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    model: ModelFunction | None = None,
    max_leads: int | None = None,
    max_runs: int | None = None,
) -> SweepSummary:
    """Run a sweep, writing every point to the store ``out`` as it completes.

    Parameters
    ----------
    spec
        A SweepSpec, dict, or YAML/JSON file; checked whole before anything runs.
    out
        Store directory: must be new or empty, unless ``resume``.
    backend, workers, scheduler
        ``serial``, ``processes`` (all local cores) or ``dask`` (``scheduler`` address
        or a LocalCluster), or a backend instance.
    resume
        Continue the sweep stored in ``out``: run only the points it lacks.
    retry_failed
        With ``resume``: run the failed points again, replacing their records.
    progress
        Show a progress bar.
    model
        A picklable ``model(params, seed) -> {output: value}`` to sweep instead of the
        funnel (the spec's ``scenario`` is then ignored).
    max_leads, max_runs
        Refuse, before anything runs or is written, a sweep of more runs than
        ``max_runs`` (points times replications), or whose base scenario or any
        parameter's extreme would simulate more than ``max_leads`` leads a run;
        defaults in :mod:`simfunnel.limits`.

    Raises
    ------
    SpecError
        A bad spec; nothing is written.
    StoreError
        ``out`` holds something else, or a different sweep, or cannot be written.
    LimitError
        Above a limit; nothing is written.
    KeyboardInterrupt
        After recording the interruption; every completed point stays stored.
    """
    if retry_failed and not resume:
        raise SimfunnelError("retry_failed: only with resume (--retry-failed needs --resume)")
    if model is None:
        spec = load_spec(spec)
        base = base_scenario(spec)
        scenario_raw: dict[str, Any] | None = base.model_dump(mode="json")
    else:
        spec = spec if isinstance(spec, SweepSpec) else SweepSpec.model_validate(spec)
        scenario_raw = None
    points = design_size(spec)
    check_runs(
        points * spec.replications,
        f"{points:,} points x {spec.replications:,} replications",
        max_runs,
    )
    if model is None:
        check_scenario(base, max_leads)
        for overrides in extreme_overrides(spec):
            check_scenario(base.with_overrides(overrides), max_leads)
    out = Path(out)
    check_store_path(out)
    design = build_design(spec)
    seeds = [replication_seed(spec.seed, r) for r in range(spec.replications)]
    with backend_context(backend, workers, scheduler) as pool:
        store = _open_store(out, spec, design, seeds, scenario_raw, model, resume)
        return _run(
            store,
            spec,
            design,
            seeds,
            scenario_raw,
            model,
            pool,
            backend,
            resume,
            retry_failed,
            progress,
            max_leads,
        )


def _open_store(
    out: Path,
    spec: SweepSpec,
    design: DesignPoints,
    seeds: list[int],
    scenario_raw: dict[str, Any] | None,
    model: ModelFunction | None,
    resume: bool,
) -> ResultsStore:
    if resume and ResultsStore.exists(out):
        store = ResultsStore.open(out)
        stored = store.metadata()
        if stored.get("spec") != _spec_json(spec):
            raise StoreError(
                f"{out}: holds a different sweep spec; resume it with the spec "
                "it was started with, or choose another --out"
            )
        store.remove_temporaries()
        meta = store.metadata()
        for entry in meta["invocations"]:
            if entry.get("status") == "running":  # it never recorded its end: killed
                entry["status"] = "stopped without finishing"
        store.write_metadata(meta)
    else:
        store = ResultsStore.create(
            out,
            {
                "simfunnel_version": __version__,
                "spec": _spec_json(spec),
                "base_scenario": scenario_raw,
                "design": {
                    "kind": spec.design.kind,
                    "points": design.points,
                    "matrix": None if design.matrix is None else design.matrix.tolist(),
                },
                "seeds": {"root": spec.seed, "replications": seeds},
                "model": None if model is None else getattr(model, "__qualname__", str(model)),
            },
        )
    return store


def _run(
    store: ResultsStore,
    spec: SweepSpec,
    design: DesignPoints,
    seeds: list[int],
    scenario_raw: dict[str, Any] | None,
    model: ModelFunction | None,
    pool: Backend[Any],
    backend: str | Backend[Any],
    resume: bool,
    retry_failed: bool,
    progress: bool,
    max_leads: int | None,
) -> SweepSummary:
    done = store.completed_points()
    todo_ids = [i for i in range(len(design.points)) if i not in done]
    if resume and retry_failed:
        failed_before = store.failed_points()
        todo_ids = sorted(set(todo_ids) | failed_before)
    else:
        failed_before = set()
    run_id = uuid.uuid4().hex[:12]
    started = time.perf_counter()
    store.update_invocation(
        run_id,
        started=now_iso(),
        status="running",
        backend=backend if isinstance(backend, str) else backend.name,
        points_todo=len(todo_ids),
    )
    tasks = (
        PointTask(
            i,
            design.points[i],
            tuple(seeds),
            tuple(range(spec.replications)),
            scenario_raw,
            model,
            max_leads,
        )
        for i in todo_ids
    )
    ran = failed = 0
    status = "interrupted"
    try:
        with tqdm(
            total=len(todo_ids),
            disable=not progress,
            desc="sweep",
            unit="point",
            dynamic_ncols=True,
        ) as bar:
            for task, outcome in pool.map(run_point, tasks):
                base = {"point": task.point, **task.params}
                if isinstance(outcome, Done):
                    rows = [
                        {**base, **row, "status": "ok", "error": None, "run_id": run_id}
                        for row in outcome.value
                    ]
                else:
                    failed += 1
                    rows = [
                        {
                            **base,
                            "replication": r,
                            "seed": s,
                            "status": "error",
                            "error": outcome.error,
                            "run_id": run_id,
                        }
                        for r, s in zip(task.replications, task.seeds, strict=True)
                    ]
                store.write_point(task.point, rows, replace=task.point in failed_before)
                ran += 1
                bar.set_postfix(failed=failed, refresh=False)
                bar.update(1)
        status = "complete"
    finally:
        store.update_invocation(
            run_id, ended=now_iso(), status=status, points_run=ran, points_failed=failed
        )
    return SweepSummary(
        path=store.path,
        points=len(design.points),
        ran=ran,
        skipped=len(design.points) - len(todo_ids),
        failed=failed,
        seconds=time.perf_counter() - started,
    )

"""Parameter sweeps: run a spec's design on a backend into a results store."""

from __future__ import annotations

import dataclasses
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
from simfunnel.experiments.store import (
    FORMAT_VERSION,
    METADATA,
    ResultsStore,
    check_store_path,
    is_disk_full,
    now_iso,
)
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
    quarantined
        Points whose stored part was damaged (unreadable, or not the rows and seeds
        of its point): moved into the store's ``quarantine/`` and recomputed.
    """

    path: Path
    points: int
    ran: int
    skipped: int
    failed: int
    seconds: float
    quarantined: tuple[int, ...] = ()

    def describe(self) -> str:
        """One line for people."""
        parts = [f"{self.ran} run now"]
        if self.quarantined:
            parts.append(
                f"{len(self.quarantined)} damaged part(s) moved to quarantine/ and recomputed"
            )
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
    store = ResultsStore(out)
    if not resume:
        store.refuse_if_not_empty()
    plan = _Plan(
        spec,
        build_design(spec),
        [replication_seed(spec.seed, r) for r in range(spec.replications)],
        scenario_raw,
        model,
        max_leads,
    )
    # The backend first: a bad worker count or an unreachable scheduler fails before
    # the store is created, so the corrected command needs no --resume.
    with backend_context(backend, workers, scheduler) as pool:
        store.make_dirs()
        with store.locked():
            quarantined = _prepare(store, plan, resume)
            summary = _run(store, plan, pool, backend, resume and retry_failed, progress)
    return dataclasses.replace(summary, quarantined=tuple(quarantined))


@dataclass(frozen=True)
class _Plan:
    spec: SweepSpec
    design: DesignPoints
    seeds: list[int]
    scenario_raw: dict[str, Any] | None
    model: ModelFunction | None
    max_leads: int | None

    def metadata(self) -> dict[str, Any]:
        return {
            "simfunnel_version": __version__,
            "spec": _spec_json(self.spec),
            "base_scenario": self.scenario_raw,
            "design": {
                "kind": self.spec.design.kind,
                "points": self.design.points,
                "matrix": None if self.design.matrix is None else self.design.matrix.tolist(),
            },
            "seeds": {"root": self.spec.seed, "replications": self.seeds},
            "model": None
            if self.model is None
            else getattr(self.model, "__qualname__", str(self.model)),
        }


def _prepare(store: ResultsStore, plan: _Plan, resume: bool) -> list[int]:
    """Under the lock: start a new store, or check and heal one to resume.

    Returns the points whose damaged parts were moved to ``quarantine/``.
    """
    if not ResultsStore.exists(store.path):
        if not resume:
            store.initialize(plan.metadata())
            return []
        # A store killed between creating points/ and writing its metadata: adopt it
        # if its parts are this spec's, point for point.
        store.remove_temporaries()
        mismatched = store.damaged_parts(plan.seeds, plan.design.points)
        if mismatched:
            point, reason = next(iter(mismatched.items()))
            raise StoreError(
                f"{store.path}: has no {METADATA} and its parts are not this sweep's "
                f"(part {point}: {reason}); choose another --out"
            )
        store.write_metadata(
            {"format_version": FORMAT_VERSION, "created": now_iso(), "invocations": []}
            | plan.metadata()
        )
        return []
    if not resume:
        store.refuse_if_not_empty()  # the folder holds a store: refused
    opened = ResultsStore.open(store.path)  # checks the format version
    if opened.metadata().get("spec") != _spec_json(plan.spec):
        raise StoreError(
            f"{store.path}: holds a different sweep spec; resume it with the spec "
            "it was started with, or choose another --out"
        )
    store.remove_temporaries()
    meta = store.metadata()
    for entry in meta["invocations"]:
        if entry.get("status") == "running":  # it never recorded its end: killed
            entry["status"] = "stopped without finishing"
    store.write_metadata(meta)
    damaged = store.damaged_parts(plan.seeds)
    if damaged:
        store.quarantine(list(damaged))
    return sorted(damaged)


def _run(
    store: ResultsStore,
    plan: _Plan,
    pool: Backend[Any],
    backend: str | Backend[Any],
    retry_failed: bool,
    progress: bool,
) -> SweepSummary:
    spec, design, seeds = plan.spec, plan.design, plan.seeds
    done = store.completed_points()
    todo_ids = [i for i in range(len(design.points)) if i not in done]
    if retry_failed:
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
            plan.scenario_raw,
            plan.model,
            plan.max_leads,
        )
        for i in todo_ids
    )
    # Points handed to the store, and whether each failed; counted from the files at
    # the end, so a Ctrl-C between a write and its bookkeeping miscounts nothing.
    attempted: dict[int, bool] = {}
    status = "failed"
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
                attempted[task.point] = not isinstance(outcome, Done)
                try:
                    store.write_point(task.point, rows, replace=task.point in failed_before)
                except OSError as exc:
                    status = "failed: disk full" if is_disk_full(exc) else "failed: cannot write"
                    raise _write_failure(store, task.point, exc) from None
                bar.set_postfix(failed=sum(attempted.values()), refresh=False)
                bar.update(1)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        stored = store.completed_points()
        ran = sum(1 for point in attempted if point in stored)
        failed = sum(1 for point, bad in attempted.items() if bad and point in stored)
        _record_end(store, run_id, status, ran, failed)
    return SweepSummary(
        path=store.path,
        points=len(design.points),
        ran=ran,
        skipped=len(design.points) - len(todo_ids),
        failed=failed,
        seconds=time.perf_counter() - started,
    )


def _write_failure(store: ResultsStore, point: int, exc: OSError) -> StoreError:
    """One line for a point that could not be written; its temporary file is gone."""
    store.remove_temporaries()
    safe = len(store.completed_points())
    what = "disk full" if is_disk_full(exc) else f"cannot write ({exc.strerror or exc})"
    return StoreError(
        f"{what} while writing point {point} to {store.path}; the {safe} point(s) "
        "stored before it are safe; free space and rerun with --resume"
    )


def _record_end(store: ResultsStore, run_id: str, status: str, ran: int, failed: int) -> None:
    """Record how an invocation ended; best effort when the disk is full."""
    try:
        store.update_invocation(
            run_id, ended=now_iso(), status=status, points_run=ran, points_failed=failed
        )
    except OSError:
        store.remove_temporaries()

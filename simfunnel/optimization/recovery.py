"""Crash safety of a study: one writer, slots, stored trials that prove who they are.

**Slots.** A study's trials fill slots 0, 1, 2... in order, and the results store
names each trial's part by its slot. Usually slot n is Optuna's trial n. But a
process killed inside Optuna's ask step leaves an open trial without all its
parameters: on resume it is marked ``abandoned`` and failed
(``study.tell(..., state=FAIL)``), and its slot is asked again as a new Optuna trial.
The sampler of each ask is seeded from the slot, not from Optuna's trial number, and
Optuna's samplers read only finished trials, so the rerun slot draws what the killed
run would have drawn.

**Identity.** Every row of a part records the Optuna trial number and a hash of the
trial's decision. On resume each part is verified: readable, one row per replication
with the study's seeds, and the identity of its slot's trial. A part that fails is
moved to ``quarantine/`` and its slot run again: told to Optuna if the trial was still
open, only rewritten if Optuna already holds its outcome (the same seeds and decision
give the same rows). Studies written before parts carried a hash are verified by
their decision columns instead.

**One writer.** The study folder is locked as a sweep's store is
(:meth:`ResultsStore.locked`) for the whole search and selection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simfunnel.errors import StoreError
from simfunnel.experiments.store import METADATA, ResultsStore, check_store_path

if TYPE_CHECKING:
    import optuna

#: User attribute of a trial given up on resume (killed inside the ask step).
ABANDONED = "abandoned"
#: User attribute holding a trial's slot.
SLOT = "slot"
#: Metadata key: parts carry ``trial`` and ``params_hash`` (absent in older studies).
IDENTITY_KEY = "part_identity"
IDENTITY_VERSION = 1
#: Invocation statuses of a run that never recorded its end.
UNFINISHED = ("running", "selecting")


def decision_hash(decision: dict[str, Any]) -> str:
    """A short hash of a trial's decision (the scenario overrides it sets)."""
    text = json.dumps(decision, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def abandon_incomplete(study: optuna.Study, names: list[str]) -> int:
    """Fail every open trial lacking one of ``names`` (killed inside the ask); how many."""
    import optuna

    count = 0
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        if trial.user_attrs.get(ABANDONED) or any(n not in trial.params for n in names):
            study._storage.set_trial_user_attr(trial._trial_id, ABANDONED, True)
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            count += 1
    return count


def slot_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials holding a slot, in slot order (abandoned ones left out)."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(ABANDONED)]


def identity(number: int, decision: dict[str, Any], hashed: bool) -> dict[str, Any]:
    """The column values every row of a trial's part must hold."""
    if hashed:
        return {"trial": number, "params_hash": decision_hash(decision)}
    return {"trial": number, **decision}


@dataclass
class ResumePlan:
    """What a resume does with each slot already in the study.

    ``recover``: open trials whose part is stored (told from it); ``rerun``: open
    trials without a sound part (run and told); ``heal``: finished trials without a
    sound part (run and rewritten, not told); ``quarantined``: parts set aside.
    """

    recover: list[int] = field(default_factory=list)
    rerun: list[int] = field(default_factory=list)
    heal: list[int] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)


def plan_resume(
    store: ResultsStore,
    slots: list[optuna.trial.FrozenTrial],
    decisions: list[dict[str, Any]],
    seeds: list[int],
    hashed: bool,
) -> ResumePlan:
    """Verify every part against its slot's trial, set aside the bad ones, and plan."""
    import optuna

    expected = {
        slot: identity(t.number, d, hashed)
        for slot, (t, d) in enumerate(zip(slots, decisions, strict=True))
    }
    plan = ResumePlan()
    damaged = store.damaged_parts(seeds, expected)
    if damaged:
        store.quarantine(list(damaged))
        plan.quarantined = sorted(damaged)
    stored = store.completed_points()
    for slot, trial in enumerate(slots):
        if trial.state == optuna.trial.TrialState.RUNNING:
            (plan.recover if slot in stored else plan.rerun).append(slot)
        elif slot not in stored:
            plan.heal.append(slot)
    return plan


@contextmanager
def writing(out: Path, resume: bool) -> Iterator[ResultsStore]:
    """The study folder, locked for this process alone; new unless ``resume``.

    Raises
    ------
    StoreError
        ``out`` is a file or cannot be written, holds something else (without
        ``resume``), or another process is writing to it (naming its pid and host).
    """
    check_store_path(out)
    store = ResultsStore(out)
    if not resume:
        store.refuse_if_not_empty("study")
    store.make_dirs()
    with store.locked():
        if resume and not ResultsStore.exists(out) and not store.is_empty():
            raise StoreError(
                f"{out}: holds no study ({METADATA} is missing) but is not empty; "
                "choose another --out"
            )
        if not resume:
            store.refuse_if_not_empty("study")
        yield store


def mark_unfinished(store: ResultsStore) -> None:
    """Record the invocations that never recorded their end as stopped (killed)."""
    meta = store.metadata()
    for entry in meta["invocations"]:
        if entry.get("status") in UNFINISHED:
            entry["status"] = "stopped without finishing"
    store.write_metadata(meta)


def study_damaged(path: Path, exc: BaseException) -> StoreError:
    """One line for a ``study.db`` that Optuna cannot read, and how to go on."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(
        f"{path}: not a readable Optuna study ({first}); it cannot be resumed: move it "
        "aside and run the optimisation again into a new --out (the rows already "
        f"stored stay readable in {path.parent / 'points'})"
    )

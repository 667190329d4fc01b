"""An optimisation survives anything: kills at any instant, Ctrl-C, damaged parts, a
second writer, a damaged study.db; and refuses bad input in one line. Real CLI."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT

from simfunnel.experiments.store import ResultsStore, load_results
from simfunnel.optimization import optimize
from simfunnel.optimization.recovery import ABANDONED, IDENTITY_KEY
from simfunnel.optimization.search import (
    STUDY_NAME,
    distributions,
    storage_url,
    trials_frame,
)
from simfunnel.optimization.spec import load_optimize_spec

TINY = {
    "scenario": "balanced",
    "overrides": {"run.horizon_days": 40, "run.warmup_days": 7},
    "budget": {
        "total_per_week_usd": 30000,
        "sources": ["referral", "organic_search", "paid_social"],
    },
    "parameters": [{"path": "team.reps", "range": [8, 14]}],
    "objective": "cac",
    "constraints": ["burnout_index <= 0.5"],
    "replications": 2,
    "trials": 6,
    "batch_size": 2,
    "seed": 21,
    "selection": {"top": 2, "replications": 3},
}
ENV = dict(os.environ, PYTHONWARNINGS="ignore")


def write(tmp_path, spec, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def command(spec_path, out, *extra):
    return [sys.executable, "-m", "simfunnel", "optimize", spec_path, "--out", str(out), *extra]


def start(args):
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(args, timeout=300):
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def answer(done):
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    data.pop("path")
    return data


def by_slot(out):
    frame = trials_frame(out)
    return frame[[c for c in frame.columns if c != "error"]].reset_index(drop=True)


def wait_for(predicate, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    pytest.fail("the study was too slow to reach the kill point")


def parts(out):
    return list((out / "points").glob("part-*.parquet")) if (out / "points").is_dir() else []


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted study, through the CLI: its folder and its JSON answer."""
    tmp = tmp_path_factory.mktemp("whole")
    out = tmp / "study"
    done = finish(command(write(tmp, TINY), out, "--backend", "serial", "--json", "--quiet"))
    return out, answer(done)


def test_a_trial_killed_inside_the_ask_is_failed_and_its_slot_drawn_again(tmp_path, whole):
    # A study stopped after 4 trials, then killed while Optuna asked the fifth: an open
    # trial holding only some of its parameters (what a kill inside study.ask leaves).
    spec = write(tmp_path, dict(TINY, trials=4))
    out = tmp_path / "study"
    assert finish(command(spec, out, "--backend", "serial", "--quiet")).returncode == 0
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(out))
    trial = study.ask()
    first = next(iter(distributions(load_optimize_spec(TINY))))
    trial.suggest_float(first, 0.0, 1.0)
    del study

    done = finish(command(write(tmp_path, TINY), out, "--resume", "--backend", "serial"))
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(out))
    abandoned = [t for t in study.trials if t.user_attrs.get(ABANDONED)]
    assert [t.number for t in abandoned] == [4]
    assert abandoned[0].state == optuna.trial.TrialState.FAIL
    # slot 4 drew what an uninterrupted study drew: the whole study is the same
    pd.testing.assert_frame_equal(by_slot(out), by_slot(whole[0]))
    rows = load_results(out)
    assert sorted(rows["point"].unique()) == list(range(6))
    assert rows.loc[rows["point"] == 4, "trial"].unique().tolist() == [5]


def test_missing_truncated_and_swapped_parts_are_rerun(tmp_path, whole):
    out = tmp_path / "study"
    spec = write(tmp_path, TINY)
    assert finish(command(spec, out, "--backend", "serial", "--quiet")).returncode == 0
    before = load_results(out).drop(columns=["run_id", "elapsed_seconds"])
    points = out / "points"
    one, two = (points / "part-000001.parquet"), (points / "part-000002.parquet")
    b1, b2 = one.read_bytes(), two.read_bytes()
    one.write_bytes(b2)  # another trial's rows, well formed
    two.write_bytes(b1)
    three = points / "part-000003.parquet"
    three.write_bytes(three.read_bytes()[:200])  # truncated
    (points / "part-000000.parquet").unlink()  # missing

    done = finish(command(spec, out, "--resume", "--backend", "serial", "--json", "--quiet"))
    assert answer(done) == whole[1]
    after = load_results(out).drop(columns=["run_id", "elapsed_seconds"])
    pd.testing.assert_frame_equal(after, before)
    assert len(list((out / "quarantine").glob("*.parquet"))) == 3
    # each part names its trial and the hash of its decision
    part = pq.read_table(points / "part-000001.parquet").to_pandas()
    assert part["trial"].tolist() == [1, 1] and part["params_hash"].nunique() == 1


def test_a_study_written_before_parts_carried_an_identity_resumes(tmp_path, whole):
    out = tmp_path / "study"
    first = finish(command(write(tmp_path, dict(TINY, trials=4)), out, "--backend", "serial"))
    assert first.returncode == 0, first.stderr
    # as older simfunnel wrote it: no identity flag, no params_hash column
    meta = json.loads((out / "metadata.json").read_text())
    del meta[IDENTITY_KEY]
    (out / "metadata.json").write_text(json.dumps(meta))
    for part in parts(out):
        table = pq.read_table(part)
        pq.write_table(table.drop(["params_hash"]), part)
    done = finish(command(write(tmp_path, TINY), out, "--resume", "--backend", "serial", "--json"))
    assert answer(done) == whole[1]
    pd.testing.assert_frame_equal(by_slot(out), by_slot(whole[0]))
    assert not (out / "quarantine").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_killed_at_random_instants_resumes_to_the_uninterrupted_study(tmp_path, whole, backend):
    spec = write(tmp_path, TINY)
    out = tmp_path / "study"
    args = command(spec, out, "--backend", backend, "--workers", "2", "--json", "--quiet")
    rng = random.Random(22 if backend == "serial" else 23)
    stored = []  # trials stored at each kill
    # start-up (before or while the study is made), then at random instants part way
    # through the search (a random number of stored trials, then a random delay: a
    # loaded machine is slower, so the instants follow the study, not the clock), then
    # in the selection
    instants: list[object] = [0.4, 1.2]
    instants += [("trials", rng.randint(1, TINY["trials"] - 1)) for _ in range(3)]
    for i, delay in enumerate([*instants, "selection"]):
        proc = start([*args, "--resume"] if i else args)
        if delay == "selection":
            reached = wait_for(lambda: any(out.glob("selection-*/points/part-*")), proc)
        elif isinstance(delay, tuple):
            target = min(max(delay[1], len(parts(out)) + 1), TINY["trials"] - 1)
            reached = wait_for(lambda n=target: len(parts(out)) >= n, proc)
            time.sleep(rng.uniform(0.0, 0.1))
            reached = reached and proc.poll() is None
        else:
            time.sleep(delay)
            reached = proc.poll() is None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had ended
            reached = False
        proc.communicate()
        stored.append(len(parts(out)))
        if not reached:
            break  # it finished before the kill: nothing left to interrupt
        # recorded complete only once the selection is: never by a killed selection
        meta = ResultsStore.open(out).metadata() if ResultsStore.exists(out) else {}
        if meta.get("invocations") and meta["invocations"][-1]["status"] == "complete":
            (selection,) = out.glob("selection-*")
            chosen = ResultsStore.open(selection)
            assert chosen.metadata()["invocations"][-1]["status"] == "complete"
            assert len(chosen.completed_points()) == TINY["selection"]["top"] + 1
    assert stored[0] == 0 and any(0 < n < TINY["trials"] for n in stored), stored
    done = finish([*args, "--resume"])
    assert answer(done) == whole[1]
    pd.testing.assert_frame_equal(by_slot(out), by_slot(whole[0]))
    rows = load_results(out)
    assert sorted(rows["point"].unique()) == list(range(TINY["trials"]))
    assert not rows.duplicated(["point", "replication"]).any()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["invocations"][-1]["status"] == "complete"
    assert all(e["status"] != "running" for e in meta["invocations"])
    (selection,) = out.glob("selection-*")
    assert ResultsStore.open(selection).metadata()["invocations"][-1]["status"] == "complete"


@pytest.mark.slow
def test_ctrl_c_at_random_instants_is_one_line_and_resumes_to_the_same_study(tmp_path, whole):
    spec = write(tmp_path, TINY)
    out = tmp_path / "study"
    args = command(spec, out, "--backend", "processes", "--workers", "2", "--json", "--quiet")
    rng = random.Random(130)
    for i in range(6):
        proc = start([*args, "--resume"] if i else args)
        time.sleep(rng.uniform(0.3, 4.0))
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        _, err = proc.communicate(timeout=120)
        # -SIGINT: Python ends a process whose Ctrl-C escaped an embedded evaluation
        # by SIGINT itself, after our line; a shell reports 130 for both
        assert proc.returncode in (0, 130, -signal.SIGINT), err
        # one line; none when the Ctrl-C lands while Python itself is starting, before
        # anything of simfunnel runs (the interpreter ends quietly)
        assert len(err.splitlines()) == (proc.returncode == 130) or (
            proc.returncode == -signal.SIGINT and len(err.splitlines()) <= 1
        ), err
    done = finish([*args, "--resume"])
    assert answer(done) == whole[1]
    pd.testing.assert_frame_equal(by_slot(out), by_slot(whole[0]))


@pytest.mark.parametrize(
    "backend", ["processes", "serial", pytest.param("dask", marks=pytest.mark.slow)]
)
def test_ctrl_c_is_one_line_and_exit_130(tmp_path, backend):
    spec = write(tmp_path, dict(TINY, trials=40, batch_size=4))
    out = tmp_path / "study"
    proc = start(command(spec, out, "--backend", backend, "--workers", "2", "--quiet"))
    assert wait_for(lambda: len(parts(out)) >= 2, proc, timeout=180)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, -signal.SIGINT), err  # a shell sees 130 for both
    assert err.splitlines() == [
        f"simfunnel: interrupted; every completed trial is stored in {out}; continue with --resume"
    ]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["invocations"][-1]["status"] == "interrupted"


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    spec = write(tmp_path, TINY)
    out = tmp_path / "study"
    assert finish(command(spec, out, "--backend", "serial", "--quiet")).returncode == 0
    with ResultsStore(out).locked():
        done = finish(command(spec, out, "--resume", "--backend", "serial"))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert f"pid {os.getpid()} on {os.uname().nodename}" in line and "--resume" in line


def test_two_optimisations_on_one_study_the_second_is_refused(tmp_path):
    spec = write(tmp_path, dict(TINY, trials=40, batch_size=4))
    out = tmp_path / "study"
    first = start(command(spec, out, "--backend", "serial", "--quiet"))
    try:
        assert wait_for(lambda: len(parts(out)) >= 1, first)
        second = finish(command(spec, out, "--resume", "--backend", "serial", "--quiet"))
        still_running = first.poll() is None
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
    assert still_running
    assert second.returncode == 2
    (line,) = second.stderr.splitlines()
    assert f"in use by simfunnel pid {first.pid} on {os.uname().nodename}" in line


def test_a_damaged_study_db_is_one_line_naming_it(tmp_path):
    spec = write(tmp_path, dict(TINY, trials=2))
    out = tmp_path / "study"
    assert finish(command(spec, out, "--backend", "serial", "--quiet")).returncode == 0
    db = out / "study.db"
    db.write_bytes(db.read_bytes()[:3000])
    done = finish(command(spec, out, "--resume", "--backend", "serial"))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert str(db) in line and "not a readable Optuna study" in line and "new --out" in line


def test_every_trial_failing_names_the_first_cause_and_its_rows(tmp_path):
    # the base scenario is within --max-leads, every mix of ten times its budget is not
    spec = dict(TINY, budget=dict(TINY["budget"], total_per_week_usd=300_000), trials=2)
    out = tmp_path / "study"
    args = command(
        write(tmp_path, spec), out, "--backend", "serial", "--quiet", "--max-leads", "2000"
    )
    done = finish(args)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "every trial failed (2); the first, trial 0: LimitError: " in line
    assert "raise --max-leads" in line
    assert str(out / "points" / "part-000000.parquet") in line
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["invocations"][-1]["status"] == "failed"


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (
            {"constraints": {"burnout_index": {"max": "abc"}}},
            ["--constraint", "cac <= 9000"],
            "constraint burnout_index: max must be a number, got 'abc'",
        ),
        ({"trials": 2000}, [], "this would be 4,009 runs (2,000 trials x 2 replications + 3"),
        ({}, ["--max-runs", "10"], "this would be 21 runs (6 trials x 2 replications"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, change, extra, message):
    spec = write(tmp_path, {**TINY, **change})
    out = tmp_path / "study"
    args = command(spec, out, "--backend", "serial", *extra)
    if "--max-runs" not in extra and "trials" in change:
        args += ["--max-runs", "1000"]
    done = finish(args)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert message in line, line
    assert not out.exists()


def test_out_naming_a_file_says_so(tmp_path):
    spec = write(tmp_path, TINY)
    target = tmp_path / "taken.txt"
    target.write_text("mine")
    done = finish(command(spec, target, "--backend", "serial"))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert f"{target}: is a file" in line
    assert target.read_text() == "mine"


def test_the_limit_counts_the_selection_and_says_how_to_raise_it(tmp_path):
    spec = load_optimize_spec(TINY)
    with pytest.raises(Exception, match=r"21 runs .*raise --max-runs"):
        optimize(spec, tmp_path / "s", backend="serial", progress=False, max_runs=20)


def test_a_ctrl_c_swallowed_by_a_finalizer_is_raised_again():
    import sys

    from simfunnel.cli import _redeliver_interrupts

    class Finalized:
        def __del__(self):
            raise KeyboardInterrupt  # where Python would only print "Exception ignored"

    previous = sys.unraisablehook
    stop = _redeliver_interrupts()
    try:
        with pytest.raises(KeyboardInterrupt):
            obj = Finalized()
            del obj
            time.sleep(5)  # the interrupt comes back within 10 ms
    finally:
        stop()
        sys.unraisablehook = previous

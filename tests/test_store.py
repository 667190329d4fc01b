"""The results store under stress: damaged parts, two writers, lost metadata, a full disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml
from conftest import ROOT

from simfunnel.errors import StoreError
from simfunnel.experiments import store as store_module
from simfunnel.experiments.store import ResultsStore, load_results
from simfunnel.experiments.sweep import run_sweep

SPEC = {
    "scenario": "quality_heavy",
    "overrides": {"run.horizon_days": 21, "run.warmup_days": 7},
    "parameters": [{"path": "team.reps", "range": [2, 7]}],
    "design": {"kind": "grid", "levels": 6},
    "replications": 2,
    "seed": 5,
    "kpis": ["cac", "customers"],
}


SWEEP = [sys.executable, "-m", "simfunnel", "sweep"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A complete six-point store, built once and copied by each test."""
    path = tmp_path_factory.mktemp("built") / "store"
    run_sweep(SPEC, path, backend="serial", progress=False)
    return path


@pytest.fixture
def store(built, tmp_path):
    path = tmp_path / "store"
    shutil.copytree(built, path)
    return path


def sweep_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "simfunnel", "sweep", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        timeout=timeout,
    )


def spec_file(tmp_path, **changes):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **changes}))
    return path


def assert_complete(path, points=6, replications=2):
    results = load_results(path)
    assert sorted(results.point.unique()) == list(range(points))
    assert not results.duplicated(["point", "replication"]).any()
    assert len(results) == points * replications
    assert (results.status == "ok").all()
    return results


@pytest.mark.parametrize("damage", ["truncate", "empty", "other rows"])
def test_a_damaged_part_is_named_then_quarantined_and_recomputed_on_resume(
    store, tmp_path, cli, damage
):
    part = store / "points" / "part-000003.parquet"
    data = part.read_bytes()
    if damage == "truncate":
        part.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        part.write_bytes(b"")
    else:  # a readable part holding another point's rows
        shutil.copy(store / "points" / "part-000001.parquet", part)
    if damage != "other rows":
        out = cli("analyze", str(store))
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert "part-000003.parquet: unreadable" in out.stderr and "--resume" in out.stderr
        with pytest.raises(StoreError, match=r"part-000003\.parquet: unreadable"):
            load_results(store)
    before = {p.name: p.read_bytes() for p in (store / "points").glob("part-*")}

    out = sweep_cli(str(spec_file(tmp_path)), "--out", str(store), "--resume", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "1 run now, 1 damaged part(s) moved to quarantine/ and recomputed" in out.stdout
    results = assert_complete(store)
    # the damaged file is kept aside, and the recomputed point is the same point
    (kept,) = (store / "quarantine").iterdir()
    assert kept.name.startswith("part-000003.") and kept.read_bytes() == before[part.name]
    assert results[results.point == 3]["team.reps"].tolist() == [5, 5]
    # the sound parts were not touched
    for name, content in before.items():
        if name != part.name:
            assert (store / "points" / name).read_bytes() == content


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2, 3]", "metadata.json: holds a list, not a store's metadata"),
        ('{"format_version": 1, "invocations": []}', "metadata.json: has no 'spec'"),
        ('{"format_version": 1, "spec": ', "metadata.json: unreadable"),
        (
            '{"format_version": 1, "spec": {"x": 1}, "invocations": []}',
            "metadata.json: its 'spec' is not a valid sweep spec",
        ),
    ],
)
def test_damaged_metadata_is_the_stores_own_one_line_error(store, cli, content, message):
    (store / "metadata.json").write_text(content)
    out = cli("analyze", str(store))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert message in out.stderr
    if "spec" not in message:  # the rows themselves are still readable without a spec
        with pytest.raises(StoreError, match="the store is damaged"):
            load_results(store)


def test_a_second_writer_is_refused_naming_the_holder_and_nothing_is_duplicated(tmp_path):
    spec = spec_file(
        tmp_path,
        parameters=[{"path": "team.reps", "range": [2, 41]}],
        design={"kind": "grid", "levels": 40},
        overrides={"run.horizon_days": 60, "run.warmup_days": 7},
    )
    store = tmp_path / "store"
    first = subprocess.Popen(
        [*SWEEP, str(spec), "--out", str(store), "--backend", "serial", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    try:
        deadline = time.time() + 120
        while not list((store / "points").glob("part-*.parquet")) if store.exists() else True:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.time() < deadline, "the first sweep never stored a point"
            time.sleep(0.05)
        second = sweep_cli(str(spec), "--out", str(store), "--resume", "--quiet")
        running = first.poll() is None
    finally:
        first.wait(timeout=600)
    assert running, "the first sweep finished before the second started: make it longer"
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert f"in use by simfunnel pid {first.pid} on {socket.gethostname()}" in second.stderr
    assert first.returncode == 0
    results = load_results(store)
    assert not results.duplicated(["point", "replication"]).any() and len(results) == 80
    assert results.run_id.nunique() == 1
    meta = json.loads((store / "metadata.json").read_text())
    assert [i["status"] for i in meta["invocations"]] == ["complete"]
    assert (store / "lock").read_text() == ""  # released


def test_a_dead_holders_lock_is_stale_and_taken_over(store, tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    record = {"pid": int(dead.stdout), "host": socket.gethostname(), "since": "earlier"}
    (store / "lock").write_text(json.dumps(record))
    (store / "points" / "part-000004.parquet").unlink()
    summary = run_sweep(SPEC, store, backend="serial", progress=False, resume=True)
    assert (summary.ran, summary.skipped) == (1, 5)
    assert_complete(store)


def test_resume_adopts_a_store_whose_metadata_was_never_written(store, tmp_path):
    (store / "metadata.json").unlink()
    (store / "points" / "part-000002.parquet").unlink()
    refused = sweep_cli(str(spec_file(tmp_path)), "--out", str(store), "--quiet")
    assert refused.returncode == 2 and "--resume" in refused.stderr
    out = sweep_cli(str(spec_file(tmp_path)), "--out", str(store), "--resume", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "1 run now, 5 already stored" in out.stdout
    assert_complete(store)
    assert ResultsStore.open(store).metadata()["spec"]["seed"] == SPEC["seed"]


def test_resume_refuses_parts_of_another_sweep_without_metadata(store, tmp_path):
    (store / "metadata.json").unlink()
    out = sweep_cli(str(spec_file(tmp_path, seed=6)), "--out", str(store), "--resume", "--quiet")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "has no metadata.json and its parts are not this sweep's" in out.stderr
    assert not (store / "metadata.json").exists()


def test_an_empty_points_folder_alone_resumes_as_new(tmp_path):
    (tmp_path / "store" / "points").mkdir(parents=True)
    summary = run_sweep(SPEC, tmp_path / "store", backend="serial", progress=False, resume=True)
    assert summary.ran == 6
    assert_complete(tmp_path / "store")


def test_a_full_disk_is_one_line_cleans_up_and_records_the_failure(tmp_path, monkeypatch):
    real_write = os.write
    writes = {"n": 0}

    def full_after_some(fd, data):
        writes["n"] += 1
        if writes["n"] == 5:  # metadata, invocation, two points... then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(store_module.os, "write", full_after_some)
    path = tmp_path / "store"
    with pytest.raises(StoreError) as caught:
        run_sweep(SPEC, path, backend="serial", progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("disk full while writing point 2 to")
    assert "the 2 point(s) stored before it are safe; free space and rerun with --resume" in message
    assert not list(path.rglob("*.tmp"))
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["invocations"][-1]["status"] == "failed: disk full"
    assert meta["invocations"][-1]["points_run"] == 2

    monkeypatch.setattr(store_module.os, "write", real_write)
    again = run_sweep(SPEC, path, backend="serial", progress=False, resume=True)
    assert (again.ran, again.skipped) == (4, 2)
    assert_complete(path)


def test_ctrl_c_on_dask_prints_one_line(tmp_path):
    spec = spec_file(
        tmp_path,
        parameters=[{"path": "team.reps", "range": [2, 41]}],
        design={"kind": "grid", "levels": 40},
        overrides={"run.horizon_days": 60, "run.warmup_days": 7},
    )
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [*SWEEP, str(spec), "--out", str(store), "--backend", "dask", "--workers", "2", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        start_new_session=True,
    )
    deadline = time.time() + 180
    while not (store.exists() and list((store / "points").glob("part-*.parquet"))):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "the sweep never stored a point"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        f"simfunnel: interrupted; every completed point is stored in {store}; "
        "continue with --resume"
    ]
    results = load_results(store)
    assert not results.duplicated(["point", "replication"]).any()
    meta = json.loads((store / "metadata.json").read_text())
    assert meta["invocations"][-1]["status"] == "interrupted"


def test_localcluster_listens_on_loopback_only():
    import psutil

    from simfunnel.experiments.backends import DaskBackend

    with DaskBackend(workers=1) as backend:
        assert backend.address.startswith("tcp://127.0.0.1:")
        workers = backend._client.scheduler_info()["workers"]
        assert workers and all(w.startswith("tcp://127.0.0.1:") for w in workers)
        me = psutil.Process()
        listening = [
            c.laddr.ip
            for p in [me, *me.children(recursive=True)]
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    assert listening and set(listening) <= {"127.0.0.1", "::1"}


def test_placing_a_part_never_replaces_one_and_a_held_lock_excludes_writers(store):
    first, second = ResultsStore(store), ResultsStore(store)
    part = store / "points" / "part-000000.parquet"
    original = part.read_bytes()
    with first.locked():
        with pytest.raises(store_module.StoreLockedError, match=f"pid {os.getpid()}"):
            second.write_point(0, [{"point": 0}], replace=True)
        # even past the existence check, the hard link refuses to replace the part
        with pytest.raises(FileExistsError):
            store_module._write_atomic(part, b"other", replace=False)
    assert part.read_bytes() == original
    assert not list(store.rglob("*.tmp"))
    assert (store / "lock").read_text() == ""

"""Experiments through the real command line, in subprocesses: compare, sweep, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from simfunnel.experiments.store import load_results


def write_spec(path, points=40, **extra):
    spec = {
        "scenario": "quality_heavy",
        "overrides": {"run.horizon_days": 120, "run.warmup_days": 7},
        "parameters": [{"path": "team.reps", "range": [3, 2 + points]}],
        "design": {"kind": "grid", "levels": points},
        "replications": 2,
        "seed": 11,
        "kpis": ["cac", "customers", "burnout_index"],
    }
    spec.update(extra)
    path.write_text(yaml.safe_dump(spec))
    return path


def start_sweep(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "simfunnel", "sweep", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_parts(store, at_least, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        parts = list((store / "points").glob("part-*.parquet")) if store.exists() else []
        if len(parts) >= at_least:
            return len(parts)
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before {at_least} points: {proc.stderr.read()}")
        time.sleep(0.01)
    pytest.fail("sweep too slow to reach the kill point")


def test_killed_sweep_resumes_without_losing_or_repeating_points(tmp_path):
    spec = write_spec(tmp_path / "spec.yaml")
    store = tmp_path / "store"
    proc = start_sweep(
        str(spec), "--out", str(store), "--backend", "processes", "--workers", "2", "--quiet"
    )
    wait_for_parts(store, 5, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # a crashed machine: no clean-up at all
    proc.wait(timeout=30)
    before = load_results(store)
    done_before = dict(zip(before.point, before.run_id, strict=True))
    assert 5 <= len(done_before) < 40, "the kill must land part way"
    # every stored point is whole: both replications
    assert (before.groupby("point").size() == 2).all()

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "simfunnel",
            "sweep",
            str(spec),
            "--out",
            str(store),
            "--resume",
            "--backend",
            "processes",
            "--workers",
            "2",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"{len(done_before)} already stored" in out.stdout
    after = load_results(store)
    assert sorted(after.point.unique()) == list(range(40))
    assert not after.duplicated(["point", "replication"]).any()
    assert len(after) == 80
    # completed points were not rerun: they keep the first invocation's run id
    kept = after[after.point.isin(list(done_before))]
    assert (kept.point.map(done_before) == kept.run_id).all()
    assert after[~after.point.isin(list(done_before))].run_id.nunique() == 1
    assert not list(store.rglob("*.tmp"))
    meta = json.loads((store / "metadata.json").read_text())
    assert [i["status"] for i in meta["invocations"]] == ["stopped without finishing", "complete"]


def test_ctrl_c_keeps_every_completed_point_and_says_how_to_resume(tmp_path):
    spec = write_spec(tmp_path / "spec.yaml")
    store = tmp_path / "store"
    proc = start_sweep(str(spec), "--out", str(store), "--backend", "serial")
    wait_for_parts(store, 3, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "continue with --resume" in err and "Traceback" not in err
    results = load_results(store)
    assert results.point.nunique() >= 3
    meta = json.loads((store / "metadata.json").read_text())
    assert meta["invocations"][-1]["status"] == "interrupted"
    assert meta["invocations"][-1]["points_run"] == results.point.nunique()


def test_sweep_cli_progress_summary_and_analyze(cli, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", points=4)
    out = cli("sweep", str(spec), "--out", str(tmp_path / "s"), "--backend", "serial")
    assert out.returncode == 0, out.stderr
    assert "4 points in" in out.stdout and "0 failed" in out.stdout
    assert "sweep: 100%" in out.stderr and "point/s" in out.stderr  # the tqdm bar
    quiet = cli("sweep", str(spec), "--out", str(tmp_path / "q"), "--backend", "serial", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""
    analyzed = cli(
        "analyze", str(tmp_path / "s"), "--best", "cac", "--constraint", "burnout_index <= 0.9"
    )
    assert analyzed.returncode == 0, analyzed.stderr
    assert "spearman" in analyzed.stdout and "least cac with burnout_index <= 0.9" in (
        analyzed.stdout
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"parameters": [{"path": "team.reps", "range": [10, 4]}]},
            "parameter team.reps: range: low must be below high",
        ),
        (
            {"parameters": [{"path": "team.seats", "levels": [4, 5]}]},
            "parameter team.seats: value 4 is not valid",
        ),
        (
            {"parameters": [{"path": "team.reps", "levels": ["x", "y"]}]},
            "parameter team.reps: value 'x' is not valid",
        ),
        ({"parameters": [{"path": "team.reps", "levels": []}]}, "parameter team.reps: levels"),
        ({"replications": 0}, "replications"),
    ],
)
def test_bad_spec_exit_2_one_line_no_store(cli, tmp_path, change, message):
    spec = write_spec(tmp_path / "spec.yaml", **change)
    out = cli("sweep", str(spec), "--out", str(tmp_path / "never"), "--backend", "serial")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "never").exists()


def test_resume_with_another_spec_is_refused(cli, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", points=3)
    assert (
        cli(
            "sweep", str(spec), "--out", str(tmp_path / "s"), "--backend", "serial", "--quiet"
        ).returncode
        == 0
    )
    other = write_spec(tmp_path / "other.yaml", points=5)
    out = cli("sweep", str(other), "--out", str(tmp_path / "s"), "--resume", "--quiet")
    assert out.returncode == 2 and "different sweep spec" in out.stderr
    assert load_results(tmp_path / "s").point.nunique() == 3


def test_compare_cli_table_json_and_csv(cli, tmp_path):
    args = [
        "compare",
        "volume_heavy",
        "quality_heavy",
        "-n",
        "3",
        "--backend",
        "serial",
        "--set",
        "run.horizon_days=90",
        "--quiet",
    ]
    table = cli(*args)
    assert table.returncode == 0, table.stderr
    assert "baseline volume_heavy" in table.stdout
    assert any(line.split()[:2] == ["cac", "quality_heavy"] for line in table.stdout.splitlines())
    as_json = cli(*args, "--json", "--baseline", "quality_heavy")
    payload = json.loads(as_json.stdout)
    assert payload["baseline"] == "quality_heavy"
    rows = {(r["kpi"], r["scenario"]): r for r in payload["rows"]}
    vol = rows[("customers", "volume_heavy")]
    assert vol["diff"] == pytest.approx(vol["mean"] - rows[("customers", "quality_heavy")]["mean"])
    assert vol["ci_low"] <= vol["mean"] <= vol["ci_high"]
    assert vol["n"] == vol["n_pairs"] == 3
    cac = rows[("cac", "volume_heavy")]
    assert cac["n_pairs"] <= cac["n"] <= 3
    csv_path = tmp_path / "cmp.csv"
    assert cli(*args, "--csv", str(csv_path)).returncode == 0
    frame = pd.read_csv(csv_path)
    assert {"kpi", "scenario", "mean", "diff_low", "diff_high", "significant"} <= set(frame)


def test_replicate_cli_with_sequential_stopping(cli):
    out = cli(
        "replicate",
        "quality_heavy",
        "-n",
        "3",
        "--kpi",
        "leads",
        "--precision",
        "0.5",
        "--backend",
        "serial",
        "--set",
        "run.horizon_days=60",
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("quality_heavy: 3 replications")
    bad = cli("replicate", "quality_heavy", "--kpi", "profit", "--precision", "0.1", "--quiet")
    assert bad.returncode == 2 and "unknown KPI 'profit'" in bad.stderr


def test_dask_backend_with_unreachable_scheduler_is_one_line(cli):
    out = cli(
        "compare",
        "volume_heavy",
        "quality_heavy",
        "-n",
        "2",
        "--backend",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:9",
        "--quiet",
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], lines

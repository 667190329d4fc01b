"""Experiments through the real command line, in subprocesses: compare, sweep, resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import openpyxl
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
    assert "Spearman" in analyzed.stdout and "Least cac with burnout_index <= 0.9" in (
        analyzed.stdout
    )
    # human labels, no identifiers or scientific notation, and an .xlsx beside
    assert "CAC (cost per customer)" in analyzed.stdout and "team: reps" in analyzed.stdout
    assert not re.search(r"\d[eE][+-]\d", analyzed.stdout)
    narrow = cli(
        "analyze", str(tmp_path / "s"), "--xlsx", str(tmp_path / "a.xlsx"), env={"COLUMNS": "60"}
    )
    assert narrow.returncode == 0, narrow.stderr
    table = [x for x in narrow.stdout.splitlines() if not x.startswith("tables written")]
    assert max(len(line) for line in table) <= 60
    book = openpyxl.load_workbook(tmp_path / "a.xlsx")
    assert book.sheetnames == ["Sensitivity", "Best points"]
    headers = [c.value for c in book["Best points"][1]]
    assert "team: reps" in headers and "CAC (cost per customer)" in headers


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
    table = cli(*args, env={"COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    assert "baseline volume_heavy" in table.stdout
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80  # fits the terminal
    cac = lines.index("CAC (cost per customer)")  # human labels, one block per KPI
    assert lines[cac + 1].split()[:2] == ["volume_heavy", "$" + lines[cac + 1].split()[1][1:]]
    assert lines[cac + 1].split()[-1] == "baseline"
    assert lines[cac + 2].split()[0] == "quality_heavy"
    assert not re.search(r"\d[eE][+-]\d", table.stdout)
    for line in lines:  # a star exactly where the printed interval of the change excludes 0
        found = re.search(r"([+-][\d,.]+)% (\*|\s) +([+-][\d,.]+)% to ([+-][\d,.]+)%$", line)
        if found:
            low, high = (float(found.group(i).replace(",", "")) for i in (3, 4))
            assert (found.group(2) == "*") == (low > 0 or high < 0), line
    as_json = cli(*args, "--json", "--baseline", "quality_heavy", "--seed", "5")
    payload = json.loads(as_json.stdout)
    assert payload["baseline"] == "quality_heavy"
    assert payload["seed"] == 5 and payload["overrides"] == {"run.horizon_days": 90}
    assert payload["scenarios"] == ["quality_heavy", "volume_heavy"]
    assert all(type(r["n"]) is int and type(r["n_pairs"]) is int for r in payload["rows"])
    rows = {(r["kpi"], r["scenario"]): r for r in payload["rows"]}
    vol = rows[("customers", "volume_heavy")]
    assert vol["diff"] == pytest.approx(vol["mean"] - rows[("customers", "quality_heavy")]["mean"])
    assert vol["ci_low"] <= vol["mean"] <= vol["ci_high"]
    assert vol["n"] == vol["n_pairs"] == 3
    cac = rows[("cac", "volume_heavy")]
    assert cac["n_pairs"] <= cac["n"] <= 3
    csv_path, xlsx_path = tmp_path / "cmp.csv", tmp_path / "cmp.xlsx"
    assert cli(*args, "--csv", str(csv_path), "--xlsx", str(xlsx_path)).returncode == 0
    frame = pd.read_csv(csv_path)
    assert {"kpi", "scenario", "mean", "diff_low", "diff_high", "significant"} <= set(frame)
    sheet = openpyxl.load_workbook(xlsx_path)["Comparison"]
    rows = [[c for c in row] for row in sheet.iter_rows(min_row=3)]
    assert [c.value for c in rows[0]][:4] == ["KPI", "strategy", "mean", "95% CI low"]
    first = {(r[0].value, r[1].value): r for r in rows[1:]}
    base = first[("CAC (cost per customer)", "volume_heavy")]
    assert base[5].value == "baseline"  # not zeros
    other = first[("CAC (cost per customer)", "quality_heavy")]
    assert other[2].number_format == '"$"#,##0' and other[8].number_format.startswith("+0.0%")
    assert other[2].value == pytest.approx(
        frame.set_index(["kpi", "scenario"]).loc[("cac", "quality_heavy"), "mean"]
    )
    bad = cli(*args, "--xlsx", str(tmp_path / "no" / "x.xlsx"))
    assert bad.returncode == 2 and "no such folder" in bad.stderr


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
    bad = cli("replicate", "quality_heavy", "--kpi", "profits", "--precision", "0.1", "--quiet")
    assert bad.returncode == 2 and "unknown KPI 'profits'" in bad.stderr


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


@pytest.mark.slow
def test_a_sweep_killed_at_random_instants_resumes_to_the_uninterrupted_one(tmp_path):
    import random

    spec = write_spec(tmp_path / "spec.yaml", points=16)
    args = ["--backend", "processes", "--workers", "2", "--quiet"]
    whole = tmp_path / "whole"
    done = subprocess.run(
        [sys.executable, "-m", "simfunnel", "sweep", str(spec), "--out", str(whole), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    store = tmp_path / "killed"
    rng = random.Random(7)
    # at start-up (before the store exists or while it is made), then anywhere
    instants = [0.3, 0.9, *(rng.uniform(0.5, 3.0) for _ in range(4))]
    stored = []
    for i, delay in enumerate(instants):
        proc = start_sweep(str(spec), "--out", str(store), *(["--resume"] if i else []), *args)
        time.sleep(delay)
        alive = proc.poll() is None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            alive = False
        proc.communicate()
        stored.append(len(load_results(store).point.unique()) if (store / "points").exists() else 0)
        if not alive:
            break  # it finished before the kill
    assert any(0 < n < 16 for n in stored), stored  # at least one kill landed part way
    again = ["sweep", str(spec), "--out", str(store), "--resume", *args]
    resumed = subprocess.run(
        [sys.executable, "-m", "simfunnel", *again],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    keys = ["point", "replication"]
    after = load_results(store).sort_values(keys).reset_index(drop=True)
    expected = load_results(whole).sort_values(keys).reset_index(drop=True)
    assert not after.duplicated(keys).any()
    columns = ["point", "replication", "cac", "customers", "burnout_index"]
    pd.testing.assert_frame_equal(after[columns], expected[columns])

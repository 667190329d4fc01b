"""The comparison across team sizes: common random numbers, the standing at each size,
and the sentence that says where the answer changes."""

import json

import numpy as np
import pytest
from conftest import run_cli

import simfunnel
from simfunnel.experiments.across import AcrossComparison, Standing
from simfunnel.experiments.replications import t_interval

SHORT = {"run.horizon_days": 200, "run.warmup_days": 21}


@pytest.fixture(scope="module")
def across():
    return simfunnel.compare_across(
        ["volume_heavy", "quality_heavy"],
        {"team.reps": [4, 16]},
        n=4,
        seed=7,
        backend="serial",
        progress=False,
        overrides=SHORT,
    )


def test_every_strategy_and_size_uses_the_same_seeds(across):
    seeds = {
        (level, name): tuple(runs.loc[runs.scenario == name, "seed"])
        for level, comparison in across.comparisons.items()
        for name, runs in [(n, comparison.runs) for n in across.scenarios]
    }
    assert len(set(seeds.values())) == 1
    # and a level's runs are those of a plain simulation with that team
    run = across.comparisons[4].runs.query("scenario == 'quality_heavy'").iloc[0]
    alone = simfunnel.simulate(
        "quality_heavy", seed=int(run.seed), overrides={**SHORT, "team.reps": 4}
    )
    assert alone.kpis["cac"] == pytest.approx(run.cac)


def test_a_small_team_drowns_in_cheap_leads(across):
    runs = across.comparisons[4].runs
    wide = runs.pivot(index="replication", columns="scenario", values="cac")
    # CAC varies by factors: the paired interval of the log ratio
    _, low, _ = t_interval(np.log(wide["volume_heavy"] / wide["quality_heavy"]).to_numpy())
    assert low > 0
    standing = across.standing(4, "cac")
    assert standing.best == ("quality_heavy",) and not standing.tied
    assert "volume_heavy" not in across.standing(4, "ltv_to_cac").best


def test_verdict_names_the_sizes_and_where_the_answer_changes(across):
    sentence = across.verdict("cac")
    small, large = across.standing(4, "cac"), across.standing(16, "cac")
    assert "quality_heavy has the lowest CAC" in sentence
    if small.best == large.best:
        assert "does not change" in sentence
    else:
        assert "changes between 4 reps and 16 reps" in sentence
        assert sentence.startswith("Up to 4 reps") and "from 16 reps" in sentence


def test_standing_groups_ties_by_the_paired_interval():
    # three strategies, made to order: a and b equal on average, c clearly worse
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        noise = rng.normal()
        rows += [
            {"scenario": "a", "replication": i, "seed": i, "cac": 100 + noise + rng.normal(0, 1)},
            {"scenario": "b", "replication": i, "seed": i, "cac": 100 + noise + rng.normal(0, 1)},
            {"scenario": "c", "replication": i, "seed": i, "cac": 150 + noise},
        ]
    import pandas as pd

    from simfunnel.experiments.comparison import Comparison

    comparison = Comparison(runs=pd.DataFrame(rows), baseline="a", order=("a", "b", "c"))
    across = AcrossComparison("team.reps", (3,), {3: comparison})
    standing = across.standing(3, "cac")
    assert set(standing.best) == {"a", "b"} and standing.tied and standing.runner_up == "c"
    assert isinstance(standing, Standing)
    assert "a and b are statistically tied" in across.verdict("cac") or (
        "b and a are statistically tied" in across.verdict("cac")
    )


def test_compare_vary_on_the_command_line(tmp_path):
    result = run_cli(
        "compare",
        "volume_heavy",
        "quality_heavy",
        "--vary",
        "team.reps=4,16",
        "-n",
        "3",
        "--backend",
        "serial",
        "--set",
        "run.horizon_days=150",
        "--quiet",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["parameter"] == "team.reps" and payload["levels"] == [4, 16]
    assert payload["verdicts"]["cac"].endswith(".")
    levels = {row["team.reps"] for row in payload["rows"]}
    assert levels == {4, 16}


@pytest.mark.parametrize("vary", ["team.reps", "=4,5", "team.reps=4,4"])
def test_bad_vary_is_one_line(vary):
    result = run_cli("compare", "volume_heavy", "quality_heavy", "--vary", vary, "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "vary" in lines[0] and "Traceback" not in result.stderr


VARY = (
    "compare",
    "volume_heavy",
    "quality_heavy",
    "--vary",
    "team.reps=4,8",
    "-n",
    "2",
    "--backend",
    "serial",
    "--set",
    "run.horizon_days=40",
    "--set",
    "run.warmup_days=7",
    "--quiet",
)


def _workbook_rows(path):
    import openpyxl

    sheet = openpyxl.load_workbook(path)["Comparison by level"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    return rows[0], rows[1:]


@pytest.mark.parametrize("extra", [(), ("--json",), ("--csv", "t.csv")])
def test_compare_vary_writes_every_output_asked_for(tmp_path, extra):
    # with --vary, --xlsx once wrote nothing and still exited 0
    extra = tuple(str(tmp_path / a) if a.endswith(".csv") else a for a in extra)
    book = tmp_path / "across.xlsx"
    result = run_cli(*VARY, "--xlsx", str(book), *extra)
    assert result.returncode == 0, result.stderr
    head, rows = _workbook_rows(book)
    assert head[:4] == ["team: reps", "KPI", "strategy", "mean"]
    assert {r[0] for r in rows} == {4, 8}
    assert {r[2] for r in rows} == {"volume_heavy", "quality_heavy"}
    base = next(r for r in rows if r[2] == "volume_heavy")
    assert base[6] == "baseline"
    if "--json" in extra:
        payload = json.loads(result.stdout)  # the workbook's line goes to stderr
        cac = {
            (r["team.reps"], r["scenario"]): r["mean"] for r in payload["rows"] if r["kpi"] == "cac"
        }
        shown = {(r[0], r[2]): r[3] for r in rows if r[1] == "CAC (cost per customer)"}
        assert shown == pytest.approx(cac)
    else:
        assert f"table written to {book}" in result.stdout
    if "--csv" in extra:
        assert (tmp_path / "t.csv").is_file()


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--xlsx", "out.csv", "--xlsx {}: the file name must end in .xlsx"),
        ("--xlsx", "no/out.xlsx", "no such folder"),
        ("--csv", "no/out.csv", "does not exist"),
    ],
)
def test_compare_vary_refuses_an_output_it_cannot_write_before_running(tmp_path, flag, value, says):
    target = str(tmp_path / value)
    result = run_cli(*VARY, flag, target, timeout=30)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.splitlines() == [line] and says.format(target) in line


def test_compare_vary_json_and_csv_together_are_refused_in_one_line(tmp_path):
    result = run_cli(*VARY, "--json", "--csv", str(tmp_path / "t.csv"), timeout=30)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.splitlines() == [line] and "not allowed with argument --json" in line


def test_compare_without_vary_writes_the_workbook_beside_json(tmp_path):
    import openpyxl

    plain = [a for a in VARY if a not in ("--vary", "team.reps=4,8")]
    book = tmp_path / "plain.xlsx"
    result = run_cli(*plain, "--json", "--xlsx", str(book))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    sheet = openpyxl.load_workbook(book)["Comparison"]
    shown = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert len(shown) == len(rows) and {r[1] for r in shown} == {"volume_heavy", "quality_heavy"}


def test_one_strategy_across_team_sizes_through_the_cli(cli, tmp_path):
    import json as _json

    args = ["compare", "balanced", "--vary", "team.reps=6,8,12", "-n", "2", "--quiet"]
    args += ["--set", "run.horizon_days=42", "--set", "run.warmup_days=7"]
    done = cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    answer = _json.loads(done.stdout)
    names = [f"balanced at team.reps={n}" for n in (6, 8, 12)]
    assert sorted(answer["scenarios"]) == sorted(names)
    # the scenario's own team (8) is the baseline; the levels are paired against it
    assert answer["baseline"] == "balanced at team.reps=8"
    costs = {r["scenario"]: r for r in answer["rows"] if r["kpi"] == "total_cost"}
    assert costs["balanced at team.reps=12"]["mean"] > costs["balanced at team.reps=6"]["mean"]
    text = cli(*args, "--xlsx", str(tmp_path / "levels.xlsx"))
    assert text.returncode == 0, text.stderr
    assert "balanced at team.reps=12" in text.stdout and (tmp_path / "levels.xlsx").exists()
    one = cli("compare", "balanced", "--vary", "team.reps=6", "-n", "2", "--quiet")
    assert one.returncode == 2
    assert "needs at least two levels for one scenario" in one.stderr
    assert one.stderr.strip().count("\n") == 0

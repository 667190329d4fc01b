"""Notebooks and reports, for real: papermill execution, HTML export, batch, failures."""

import base64
import html
import json
import re

import nbformat
import openpyxl
import pytest
from conftest import run_cli

SMALL = '{"run.horizon_days": 150, "run.warmup_days": 14}'


@pytest.fixture(scope="module")
def vvq(tmp_path_factory):
    out = tmp_path_factory.mktemp("vvq")
    result = run_cli(
        "report",
        "volume_vs_quality",
        "--out",
        str(out),
        "-p",
        "replications",
        "4",
        "-p",
        "team_sizes",
        "[5, 12]",
        "-p",
        "overrides",
        SMALL,
        "-p",
        "backend",
        "serial",
    )
    assert result.returncode == 0, result.stderr
    return out, result


def within(entry):
    lo, mid, hi = entry["ci_low"], entry["mean"], entry["ci_high"]
    return lo is None or hi is None or lo - 1e-9 <= mid <= hi + 1e-9


def test_volume_vs_quality_headline_makes_sense(vvq):
    out, result = vvq
    facts = json.loads((out / "volume_vs_quality.json").read_text())
    assert facts["baseline"] == "volume_heavy" and facts["replications"] == 4
    assert set(facts["scenarios"]) == {"volume_heavy", "quality_heavy", "balanced"}
    for name, kpis in facts["scenarios"].items():
        assert kpis["cac"]["mean"] > 0, name
        assert kpis["revenue"]["mean"] >= 0 and 0 <= kpis["burnout_index"]["mean"] <= 1
        assert all(within(entry) for entry in kpis.values()), name
    for name, diffs in facts["differences"].items():
        mean_diff = (
            facts["scenarios"][name]["customers"]["mean"]
            - (facts["scenarios"]["volume_heavy"]["customers"]["mean"])
        )
        assert diffs["customers"]["diff"] == pytest.approx(mean_diff)
        assert diffs["burnout_index"]["rel_low"] <= diffs["burnout_index"]["rel_high"]
    # the conclusion is written from the numbers: across team sizes first, then the
    # scenarios' own team with each strategy's CAC and whether it pays back
    # the decision first: at the scenarios' own team, what to choose and at what cost
    assert facts["conclusion"].startswith(facts["verdict"])
    assert facts["verdict"].startswith(f"Decision: with {facts['own_level']} reps, ")
    assert "136 days" in facts["verdict"] and "95% CI $" in facts["verdict"]
    assert facts["verdicts"]["cac"] in facts["conclusion"]
    assert facts["verdicts"]["ltv_to_cac"] in facts["conclusion"]
    cac = facts["scenarios"]["quality_heavy"]["cac"]["mean"]
    assert f"quality_heavy ${cac:,.0f} a customer" in facts["conclusion"]
    assert "pays back" in facts["conclusion"] or "does not pay back" in facts["conclusion"]
    diff = facts["differences"]["quality_heavy"]["cac"]
    rel = diff["rel_change"]
    if diff["significant"]:
        verb = "lowers" if rel < 0 else "raises"
        expected = f"quality_heavy {verb} CAC by {100 * abs(rel):.0f}%"
    else:
        expected = "quality_heavy does not change CAC significantly"
    assert expected in facts["comparison_conclusion"]
    assert facts["levels"] == sorted(set(facts["levels"])) and facts["own_level"] in facts["levels"]
    assert facts["conclusion"] in result.stdout
    assert (
        facts["summary"]["cac[quality_heavy]"] == facts["scenarios"]["quality_heavy"]["cac"]["mean"]
    )


def test_report_writes_a_spreadsheet_and_shows_progress(vvq):
    out, result = vvq
    assert f"spreadsheet:       {out / 'volume_vs_quality.xlsx'}" in result.stdout
    facts = json.loads((out / "volume_vs_quality.json").read_text())
    book = openpyxl.load_workbook(out / "volume_vs_quality.xlsx")
    assert book.sheetnames == [
        "Decision",
        "By team size",
        "LTV-CAC and payback",
        "Comparison",
        "About",
    ]
    rows = list(book["Comparison"].iter_rows(min_row=4, values_only=True))
    cac = {r[1]: r for r in rows if r[0] == "CAC (cost per customer)"}
    assert cac["quality_heavy"][2] == pytest.approx(
        facts["scenarios"]["quality_heavy"]["cac"]["mean"]
    )
    assert cac["volume_heavy"][5] == "baseline"
    said = [r[1] for r in book["Decision"].iter_rows(min_row=2, values_only=True)]
    assert said[0] == facts["verdict"] and " ".join(said) == facts["conclusion"]
    about = dict(book["About"].iter_rows(min_row=2, values_only=True))
    assert about["parameter replications"] == 4 and about["report"] == "volume_vs_quality"
    # papermill's bar: cells done out of the total
    total = len(nbformat.read(out / "volume_vs_quality.ipynb", as_version=4).cells)
    assert f"{total}/{total} [" in result.stderr


def test_html_report_hides_code_and_embeds_every_figure(vvq):
    out, result = vvq
    page = (out / "volume_vs_quality.html").read_text()
    assert f"HTML report:       {out / 'volume_vs_quality.html'}" in result.stdout
    nb = nbformat.read(out / "volume_vs_quality.ipynb", as_version=4)
    images = [
        o["data"]["image/png"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    embedded = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3 and len(embedded) == len(images)
    assert all(base64.b64decode(e)[:4] == b"\x89PNG" for e in embedded)
    # the KPI table speaks to people: human labels, percentages, the baseline named
    assert "<table" in page and "change vs baseline" in page and "quality_heavy" in page
    assert "<td>baseline</td>" in page and "rel_change" not in page and "<td>False</td>" not in page
    assert "simfunnel.compare(" not in page  # code hidden
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?://', page)
    assert "injected-parameters" in json.dumps(nb.cells[2].metadata) or any(
        "injected-parameters" in c.metadata.get("tags", []) for c in nb.cells
    )


def test_report_opens_with_its_verdict_and_provenance(vvq):
    out, _ = vvq
    page = html.unescape((out / "volume_vs_quality.html").read_text())
    facts = json.loads((out / "volume_vs_quality.json").read_text())
    assert "<title>More leads, or better leads?</title>" in page
    # the verdict comes before the first figure, and the provenance box under it
    verdict = page.index(facts["verdicts"]["cac"])
    box = page.index("Scenarios:</strong>")
    assert verdict < box < page.index("<img")
    prov = facts["provenance"]
    assert prov["replications"] == 4 and prov["seed"] == 1 and prov["horizon_days"] == 150
    assert prov["overrides"] == {"run.horizon_days": 150, "run.warmup_days": 14}
    for text in (
        "replications:</strong> 4",
        "seed:</strong> 1",
        "horizon:</strong> 150 days",
        "run: horizon (days) = 150",
        "team sizes:</strong> 5, 8, 12 reps",
        f"simfunnel</strong> {prov['version']}",
        prov["date"],
    ):
        assert text in page, text
    # every figure is described by what it shows: alt text from the data, not a default
    alts = re.findall(r'<img[^>]*alt="([^"]*)"', page)
    assert len(alts) == page.count("<img") >= 3
    assert not [a for a in alts if "No description" in a or len(a) < 40]


def test_scenario_notebook(scenario_report):
    tmp_path, result = scenario_report  # shared with the browser check (conftest.py)
    assert result.returncode == 0, result.stderr
    facts = json.loads((tmp_path / "scenario.json").read_text())
    assert facts["scenario"] == "balanced" and facts["replications"] == 3
    assert facts["kpis"]["cac"]["mean"] > 0
    assert all(within(v) for v in facts["kpis"].values())
    assert facts["kpis"]["leads"]["mean"] >= facts["kpis"]["customers"]["mean"] > 0
    page = html.unescape((tmp_path / "scenario.html").read_text())
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', page)) == 4
    # decision first: the verdict, with the interval of what it states, before any figure
    verdict = facts["verdict"]
    customers = facts["kpis"]["customers"]
    assert verdict.startswith(
        f"balanced wins {customers['mean']:,.0f} customers (95% CI {customers['ci_low']:,.0f} to "
        f"{customers['ci_high']:,.0f}) in 136 days"
    )
    assert "pay" in verdict  # whether it pays back
    assert page.index(verdict) < page.index("<img")
    assert "<title>One scenario in depth</title>" in page
    assert facts["provenance"]["replications"] == 3 and "seed:</strong> 1" in page
    # human tables: stage rates as percentages, no raw identifiers as headings
    assert "lead_to_won" not in page and "Lead to won" in page
    # the what-if sliders need a live notebook: a report says so instead
    assert "The what-if sliders need a live notebook" in page
    kpis = openpyxl.load_workbook(tmp_path / "scenario.xlsx")["KPIs"]
    row = next(r for r in kpis.iter_rows(min_row=2) if r[0].value == "CAC (cost per customer)")
    assert row[1].value == pytest.approx(facts["kpis"]["cac"]["mean"])
    assert row[1].number_format == '"$"#,##0'


def test_parameter_sweep_notebook(sweep_report):
    out, result = sweep_report  # shared with the browser check (conftest.py)
    assert result.returncode == 0, result.stderr
    facts = json.loads((out / "parameter_sweep.json").read_text())
    assert facts["points"] == 6
    # every point meets the constraint: counted over all six, not the five best listed
    assert len(facts["best"]) == 5
    assert facts["points_meeting_constraints"] == 6
    assert "; 6 of 6 points meet the constraints." in facts["verdict"]
    assert facts["best"] and all(b["burnout_index"] <= 0.9 for b in facts["best"])
    # with two levels a side, the best point sits on a bound of team.reps: the report warns
    assert any("team: reps" in w for w in facts["warnings"])
    page = html.unescape((out / "parameter_sweep.html").read_text())
    assert page.index(facts["verdict"]) < page.index("Warning:") < page.index("<img")
    assert facts["verdict"].startswith("Best under burnout index (0-1) at most 0.900: team: reps")
    assert facts["provenance"]["replications"] == 1 and "design:</strong> grid, 6 points" in page
    assert facts["best"][0]["cac"] == min(b["cac"] for b in facts["best"])
    assert 1 <= len(facts["pareto_front"]) <= 6
    assert {row["parameter"] for row in facts["sensitivity"]} == {"team.reps"}
    assert (out / "store" / "metadata.json").is_file()  # the sweep was stored
    book = openpyxl.load_workbook(out / "parameter_sweep.xlsx")
    assert book.sheetnames[:4] == ["Decision", "Best points", "Pareto front", "Sensitivity"]
    best = list(book["Best points"].iter_rows(values_only=True))
    assert "team: reps" in best[0] and len(best) == len(facts["best"]) + 1


def test_unknown_parameter_and_wrong_type_are_refused_before_running(tmp_path):
    unknown = run_cli(
        "report", "volume_vs_quality", "--out", str(tmp_path / "a"), "-p", "replicatoins", "3"
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [unknown.stderr.strip()]
    assert "parameter 'replicatoins': not a parameter of volume_vs_quality" in unknown.stderr
    wrong = run_cli(
        "report", "volume_vs_quality", "--out", str(tmp_path / "b"), "-p", "replications", "many"
    )
    assert wrong.returncode == 2 and "parameter replications: expected int, got str" in (
        wrong.stderr
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    nb = run_cli("report", "nope", "--out", str(tmp_path / "c"))
    assert nb.returncode == 2 and "is not one of" in nb.stderr


@pytest.mark.parametrize(
    ("notebook", "name", "value", "says"),
    [
        ("scenario", "scenario", "nope", "parameter scenario: 'nope' is neither a file nor"),
        ("scenario", "overrides", '{"team.nope": 3}', "parameter overrides: team.nope: unknown"),
        ("scenario", "backend", "threads", "parameter backend: must be one of serial"),
        ("volume_vs_quality", "scenarios", '["balanced", "nope"]', "parameter scenarios: 'nope'"),
        ("volume_vs_quality", "baseline", "nope", "parameter baseline: 'nope' is not among"),
        ("parameter_sweep", "objective", "nope", "parameter objective: 'nope' is not among the"),
        ("parameter_sweep", "heatmap_kpi", "nope", "parameter heatmap_kpi: 'nope' is not among"),
        ("parameter_sweep", "constraints", '{"nope": {"max": 1}}', "parameter constraints: 'no"),
        ("calibration", "mapping", "nope", "parameter mapping: 'nope' is neither a preset"),
        ("budget_mix", "example", '{"scenario": "nope"}', "parameter example: "),
    ],
)
def test_a_name_that_names_nothing_is_refused_before_the_kernel(
    tmp_path, notebook, name, value, says
):
    out = tmp_path / "r"
    result = run_cli("report", notebook, "--out", str(out), "-p", name, value, timeout=60)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert says in line and line.splitlines() == [line]
    assert "cell" not in line and not out.exists()  # no cell ran, nothing written


def test_failing_cell_names_the_cell_and_keeps_the_partial_notebook(tmp_path):
    result = run_cli(
        "report",
        "volume_vs_quality",
        "--out",
        str(tmp_path),
        "-p",
        "team_sizes",
        "[-1]",  # no name: found wrong only when the cell builds the team
        "-p",
        "replications",
        "2",
        "--quiet",  # no progress bar: the error alone
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    named = r"volume_vs_quality: cell (\d+) \('([^']*)'\) failed: ScenarioError"
    match = re.search(named, lines[0])
    assert match, lines[0]
    assert "team.reps: must be >= 1" in lines[0] and "partial notebook is kept" in lines[0]
    partial = nbformat.read(tmp_path / "volume_vs_quality.ipynb", as_version=4)
    errors = [
        o for c in partial.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert errors and errors[0]["ename"] == "ScenarioError"
    # the named cell is the one that failed, by its index and first line in the saved file
    failed = partial.cells[int(match.group(1))]
    assert failed.source.startswith(match.group(2).removesuffix("..."))
    assert any(o.get("output_type") == "error" for o in failed.outputs)
    assert not (tmp_path / "volume_vs_quality.json").exists()
    assert not (tmp_path / "volume_vs_quality.html").exists()


def test_batch_of_parameter_sets_with_an_index(batch_report):
    batch, result = batch_report  # shared with the browser check (conftest.py)
    assert result.returncode == 0, result.stderr
    index = (batch / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+\.html)">', index)
    assert len(links) == 2
    for link in links:
        assert (batch / link).is_file()
    # one column per KPI, with human labels; a line per strategy within it
    assert "<th>CAC (cost per customer)</th>" in index and "<th>scenarios</th>" in index
    assert "quality_heavy: $" in index and "balanced: $" in index
    assert "<td>quality_heavy, volume_heavy</td>" in index
    assert "<th>replications</th>" not in index and "replications <b>2</b>" in index
    # folder names carry the parameter that varies, lists included
    assert sorted(p.name for p in batch.iterdir() if p.is_dir()) == [
        "01_scenarios-quality_heavy+volume_heavy",
        "02_scenarios-volume_heavy+balanced",
    ]
    first = json.loads(next(batch.glob("01_*/*.json")).read_text())
    value = first["summary"]["cac[quality_heavy]"]
    assert f"{value:,.0f}" in index
    # no baseline given: the first scenario listed, not the notebook's volume_heavy
    assert first["baseline"] == "quality_heavy"
    assert "reports: 100%" in result.stderr and "2/2" in result.stderr  # batch progress


def test_batch_names_show_every_varied_parameter():
    from simfunnel.reporting.report import set_names

    same_scalars = [
        {"scenarios": ["volume_heavy", "quality_heavy"], "replications": 4, "seed": 1},
        {"scenarios": ["volume_heavy", "balanced"], "replications": 4, "seed": 1},
        {
            "scenarios": ["volume_heavy", "balanced"],
            "replications": 4,
            "seed": 1,
            "overrides": {"team.reps": 20},
        },
    ]
    names = set_names(same_scalars)
    assert len(set(n.split("_", 1)[1] for n in names)) == 3  # distinct past the number
    assert names[0] == "01_scenarios-volume_heavy+quality_heavy"
    assert names[2] == "03_scenarios-volume_heavy+balanced_overrides-team.reps-20"
    assert set_names([{"replications": 4}]) == ["01_replications-4"]


def test_grid_of_parameters(tmp_path):
    from simfunnel.reporting.report import parameter_sets

    sets = parameter_sets(
        {
            "grid": {"seed": [1, 2], "baseline": ["volume_heavy", "balanced"]},
            "fixed": {"replications": 2},
        }
    )
    assert len(sets) == 4 and all(s["replications"] == 2 for s in sets)
    assert {(s["seed"], s["baseline"]) for s in sets} == {
        (1, "volume_heavy"),
        (1, "balanced"),
        (2, "volume_heavy"),
        (2, "balanced"),
    }


def test_list_shows_notebooks_and_typed_parameters():
    result = run_cli("report", "--list")
    assert result.returncode == 0
    for name in ("scenario", "volume_vs_quality", "parameter_sweep"):
        assert f"\n{name}\n" in f"\n{result.stdout}"
    assert "    replications: int = 10" in result.stdout
    assert "    scenarios: list = " in result.stdout


def test_notebooks_have_one_plain_parameters_cell():
    import ast

    from simfunnel.reporting.report import available_notebooks, notebook_parameters

    for name, path in available_notebooks().items():
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        tree = ast.parse(tagged[0].source)
        for statement in tree.body:
            assert isinstance(statement, ast.AnnAssign), (name, ast.dump(statement))
            ast.literal_eval(statement.value)  # plain values only
        declared = [s.target.id for s in tree.body]
        # papermill's own parser sees every one of them (it skips lines it cannot read)
        assert list(notebook_parameters(path)) == declared, name


def _reading_notebook(folder):
    """A two-cell notebook that reads the file its ``data`` parameter names."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            'data: str = ""  # a file to read', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(
            'import json\nfrom pathlib import Path\njson.dumps({"read": Path(data).read_text()})'
        ),
    ]
    path = folder / "reads.ipynb"
    nbformat.write(nb, path)
    return path


def test_calibration_report_paths_are_relative_to_the_callers_folder(tmp_path):
    # as `simfunnel report calibration -p leads leads.csv ...` from the data's folder:
    # the kernel runs in --out, so a relative path must reach it as an absolute one
    _reading_notebook(tmp_path)
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n")
    done = run_cli(
        "report",
        "reads.ipynb",
        "-p",
        "data",
        "leads.csv",
        "--out",
        "rep",
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ran = nbformat.read(tmp_path / "rep" / "reads.ipynb", as_version=4)
    assert "L1" in str(ran.cells[-1].outputs)


def test_calibration_report_refuses_a_missing_input_before_the_kernel(tmp_path):
    for name, value in [("leads", "nope.csv"), ("mapping", "missing.yaml")]:
        out = tmp_path / f"rep_{name}"
        result = run_cli("report", "calibration", "-p", name, value, "--out", str(out))
        assert result.returncode == 2, result.stderr
        assert (
            result.stderr.strip() == f"simfunnel: error: parameter {name}: no such file {value!r}"
        )
        assert not out.exists()


def test_calibration_report_paths_in_a_list_are_resolved_too(tmp_path, monkeypatch):
    from simfunnel.errors import ReportError
    from simfunnel.reporting.report import absolute_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("{}")
    given = {"scenarios": ["mine.yaml", "volume_heavy"], "headline_json": "h.json", "n": 3}
    assert absolute_paths(given) == {
        "scenarios": [str(tmp_path / "mine.yaml"), "volume_heavy"],
        "headline_json": "h.json",
        "n": 3,
    }
    with pytest.raises(ReportError, match=r"parameter scenarios: no such file 'gone\.yaml'"):
        absolute_paths({"scenarios": ["volume_heavy", "gone.yaml"]})

"""The real command line, in a subprocess."""

import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT


def test_run_prints_a_kpi_table(cli):
    out = cli("run", "quality_heavy", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "quality_heavy (seed 3" in out.stdout
    lines = [line for line in out.stdout.splitlines()[2:] if line.startswith("  ")]
    rows = {line.split("  ")[1].strip(): line for line in lines}
    assert rows["CAC (cost per customer)"].split()[-2].startswith("$")
    assert rows["CAC (cost per customer)"].split()[-1] == "cac"
    assert rows["Leads gone stale"].split()[-2].endswith("%")
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", rows["Leads"].split()[-2])


def test_run_table_fits_the_terminal(cli):
    for columns in (60, 80, 200):
        out = cli("run", "quality_heavy", "--seed", "3", env={"COLUMNS": str(columns)})
        assert out.returncode == 0, out.stderr
        assert max(len(line) for line in out.stdout.splitlines()) <= columns
    assert "leads that arrived in the window" in out.stdout  # room for the meaning at 200


def test_run_json_with_overrides_matches_the_api(cli):
    import simfunnel

    out = cli(
        "run",
        "volume_heavy",
        "--json",
        "--seed",
        "11",
        "--set",
        "team.reps=14",
        "--set",
        "sources.paid_social.budget_per_week_usd=9000",
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    api = simfunnel.simulate(
        "volume_heavy",
        seed=11,
        overrides={"team.reps": 14, "sources.paid_social.budget_per_week_usd": 9000},
    ).kpis
    assert payload["seed"] == 11
    assert payload["overrides"] == {
        "team.reps": 14,
        "sources.paid_social.budget_per_week_usd": 9000,
    }
    assert type(payload["kpis"]["leads"]) is int and type(payload["kpis"]["reps_quit"]) is int
    assert type(payload["kpis"]["cac"]) is float
    assert payload["kpis"]["cac"] == pytest.approx(api["cac"])
    assert payload["kpis"]["leads"] == api["leads"]


def test_list_and_validate(cli, tmp_path):
    out = cli("list", env={"COLUMNS": "80"})
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == [
        "balanced",
        "quality_heavy",
        "volume_heavy",
    ]
    assert max(len(line) for line in lines) <= 80  # descriptions wrap under themselves
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "sources": [{"name": "web", "leads_per_week": 50, "cost_per_lead_usd": 120}],
            }
        )
    )
    out = cli("validate", str(good))
    assert out.returncode == 0 and "valid scenario 'mine'" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "volume_heavy", "--set", "team.reps=0"], "team.reps: must be >= 1, got 0"),
        (
            ["run", "volume_heavy", "--set", "team.repz=3"],
            "team.repz: unknown field (did you mean 'reps'?)",
        ),
        (
            ["run", "volume_heavy", "--set", "proces.decay.enabled=false"],
            "unknown path at 'proces' (did you mean 'process'?)",
        ),
        (["run", "volume_heavvy"], "did you mean 'volume_heavy'?"),
        (
            ["run", "volume_heavy", "--set", "sources.paid_social.cost_per_lead_usd=-5"],
            "sources[0].cost_per_lead_usd: must be > 0, got -5",
        ),
        (
            ["run", "volume_heavy", "--set", "process.routing.policy=random"],
            "process.routing.policy: must be one of",
        ),
        (["run", "volume_heavy", "--set", "team.reps=many"], "team.reps: "),
        (["run", "volume_heavy", "--set", "sources.tv.leads_per_week=3"], "no item named 'tv'"),
        (["run", "volume_heavy", "--set", "teamreps"], "expected dotted.path=value"),
        (["run", "no_such_scenario"], "neither a file nor a bundled scenario"),
        (["validate", "missing.yaml"], "no such file"),
        (["run", "volume_heavy", "--seed", "x"], "--seed: must be a whole number >= 0, got 'x'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(cli, args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert out.stdout == ""


def test_validate_reports_every_bad_field_one_line_each(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "sources": [{"name": "web", "leads_per_week": -1, "cost_per_lead_usd": 0}],
                "team": {"reps": 2, "selling_share": 2},
            }
        )
    )
    out = cli("validate", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3
    # each line names the file, so that of two files compared the wrong one is clear
    assert all(x.startswith("simfunnel: error: bad.yaml: ") for x in lines), lines
    assert any("sources[0].leads_per_week: must be >= 0, got -1" in x for x in lines)
    assert any("sources[0].cost_per_lead_usd: must be > 0, got 0" in x for x in lines)
    assert any("team.selling_share: must be <= 1, got 2" in x for x in lines)


def test_unparseable_file(cli, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("sources: [\n")
    out = cli("validate", str(bad))
    assert out.returncode == 2 and "cannot parse" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


HEAVY = {"scipy", "pandas", "SALib", "dask", "distributed", "papermill", "matplotlib"}


@pytest.mark.parametrize("args", [["--help"], ["list"], ["--version"]])
def test_quick_commands_do_not_load_heavy_libraries(args):
    # what makes `--help` and `list` instant (benchmarks/bench_cli.py times them)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "simfunnel", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()}
    assert "simfunnel" in loaded
    assert not loaded & HEAVY, loaded & HEAVY


def test_import_simfunnel_is_lazy_but_complete():
    code = (
        "import sys, simfunnel; assert 'pandas' not in sys.modules; "
        "missing = [n for n in simfunnel.__all__ if not hasattr(simfunnel, n)]; "
        "assert not missing, missing; assert 'pandas' in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_bare_simfunnel_prints_usage_with_examples(cli):
    out = cli()
    assert out.returncode == 2
    assert out.stderr.startswith("usage: simfunnel")
    assert "examples:" in out.stderr and "simfunnel compare" in out.stderr
    assert "Traceback" not in out.stderr


def test_version(cli):
    from simfunnel.version import __version__

    out = cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"simfunnel {__version__}"


def test_broken_pipe_exits_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "simfunnel", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    proc.stdout.close()  # the reader goes away before a line is written, as `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_a_report_command_skips_the_iri_grammars_and_notebooks_still_validate():
    # the report command marks jsonschema's optional IRI module absent (2 s of start-up);
    # nbformat must still read and validate every shipped notebook without it
    code = (
        "import sys\n"
        "from simfunnel import cli\n"
        "cli._skip_iri_grammars()\n"
        "import nbformat\n"
        "from simfunnel.reporting.report import available_notebooks\n"
        "for path in available_notebooks().values():\n"
        "    nbformat.validate(nbformat.read(path, as_version=4))\n"
        "print(sys.modules['rfc3987_syntax'] is None, len(available_notebooks()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    skipped, notebooks = out.stdout.split()
    assert skipped == "True" and int(notebooks) >= 4

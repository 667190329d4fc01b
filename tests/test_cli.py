"""The real command line, in a subprocess."""

import json

import pytest
import yaml


def test_run_prints_a_kpi_table(cli):
    out = cli("run", "quality_heavy", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "quality_heavy (seed 3" in out.stdout
    for kpi in ("cac", "burnout_index", "median_response_hours", "revenue"):
        assert f"  {kpi} " in out.stdout


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
    assert payload["kpis"]["cac"] == pytest.approx(api["cac"])
    assert payload["kpis"]["leads"] == api["leads"]


def test_list_and_validate(cli, tmp_path):
    out = cli("list")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.splitlines()] == [
        "balanced",
        "quality_heavy",
        "volume_heavy",
    ]
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
        (["run", "volume_heavy", "--set", "team.repz=3"], "team.repz: unknown field"),
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
        (["run", "volume_heavy", "--seed", "x"], "invalid int value"),
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
    assert any("sources[0].leads_per_week: must be >= 0, got -1" in x for x in lines)
    assert any("sources[0].cost_per_lead_usd: must be > 0, got 0" in x for x in lines)
    assert any("team.selling_share: must be <= 1, got 2" in x for x in lines)


def test_unparseable_file(cli, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("sources: [\n")
    out = cli("validate", str(bad))
    assert out.returncode == 2 and "cannot parse" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

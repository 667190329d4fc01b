"""simfunnel explain: every effective field with its value, origin and default's source."""

import inspect
import json

import pytest
from conftest import ROOT, run_cli

import simfunnel
from simfunnel.calibration.pipeline import calibrate
from simfunnel.calibration.samples import sample_path

EXAMPLE = ROOT / "simfunnel" / "calibration" / "samples" / "example_scenario.yaml"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    path = tmp_path_factory.mktemp("explain") / "calibrated.yaml"
    calibrate(sample_path(), simulate=False).write(path)
    return path


def test_explain_lists_the_cost_drivers_first_then_every_field():
    result = run_cli("explain", "balanced", env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headings = [
        "What drives cost: deal size",
        "What drives cost: churn",
        "What drives cost: rep cost",
        "What drives cost: hiring cost",
        "What drives cost: cost per lead",
        "Everything else, by section of docs/assumptions.md",
        "Burnout and turnover",
    ]
    at = [out.index(h) for h in headings]
    assert at == sorted(at)
    assert "A bundled scenario" in out
    row = next(line for line in out.splitlines() if "burnout.annual_turnover" in line)
    assert row.split()[1:] == ["0.3", "default", "#burnout-and-turnover"]
    assert all(len(line) <= 120 for line in out.splitlines())


def test_explain_json_gives_each_field_value_origin_and_source(calibrated):
    result = run_cli("explain", str(calibrated), "--json", "--set", "team.reps=6")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    fields = {f["path"]: f for f in facts["fields"]}
    cpl = fields["sources.paid_search.cost_per_lead_usd"]
    assert (cpl["value"], cpl["origin"]) == (198.0, "default")
    assert cpl["section"] == "docs/assumptions.md#cost-per-lead"
    lpw = fields["sources.paid_search.leads_per_week"]
    assert lpw["origin"] == "data"
    assert lpw["interval"][0] < lpw["value"] < lpw["interval"][1]
    assert (fields["team.reps"]["value"], fields["team.reps"]["origin"]) == (6, "file")
    assert facts["origins"]["data"] > 0 and facts["origins"]["default"] > 0
    assert facts["fields"][0]["group"] == "deal size"
    assert not facts["bundled"]


def test_explain_reads_a_file_written_before_provenance_existed():
    result = run_cli("explain", str(EXAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    fields = {f["path"]: f for f in json.loads(result.stdout)["fields"]}
    assert fields["sources.paid_search.cost_per_lead_usd"]["origin"] == "file"
    assert fields["burnout.recovery_days"]["origin"] == "default"
    assert {f["origin"] for f in fields.values()} == {"file", "default"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "'nope' is neither a file nor a bundled scenario"),
        (["balanced", "--set", "team.repz=3"], "team.repz"),
        (["balanced", "--set", "team.reps=0"], "team.reps: must be >= 1"),
    ],
)
def test_explain_refuses_bad_input_in_one_line(args, message):
    result = run_cli("explain", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_every_flag_is_a_keyword_of_the_library_call():
    params = inspect.signature(simfunnel.explain).parameters
    for flag in ("json", "overrides"):
        assert params[flag].kind is inspect.Parameter.KEYWORD_ONLY
    text = simfunnel.explain("balanced", overrides={"team.reps": 12}, width=200)
    assert "team.reps" in text
    assert json.loads(simfunnel.explain("balanced", json=True))["scenario"] == "balanced"

"""Where each value came from: the scenario's provenance block, written by calibrate."""

import math

import pytest
import yaml
from conftest import ROOT

from simfunnel.calibration.pipeline import calibrate
from simfunnel.calibration.samples import sample_path
from simfunnel.calibration.scenario import DEFAULT_CPL_USD
from simfunnel.errors import ScenarioError
from simfunnel.origins import field_origins
from simfunnel.parameters import load_scenario

EXAMPLE = ROOT / "simfunnel" / "calibration" / "samples" / "example_scenario.yaml"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    cal = calibrate(sample_path(), simulate=False)
    path = tmp_path_factory.mktemp("cal") / "calibrated.yaml"
    cal.write(path)
    return cal, path


def by_path(fields):
    return {f.path: f for f in fields}


def test_calibrate_writes_origins_with_intervals_that_read_back(calibrated):
    cal, path = calibrated
    raw = yaml.safe_load(path.read_text())
    block = raw["provenance"]
    assert load_scenario(path) == cal.scenario  # the block reads back as written
    lpw = block["sources.paid_search.leads_per_week"]
    assert lpw["origin"] == "data"
    low, high = lpw["interval"]
    value = raw["sources"][[s["name"] for s in raw["sources"]].index("paid_search")][
        "leads_per_week"
    ]
    assert low < value < high
    # CRM exports hold no cost: calibrate writes the $198 default, and says so
    cpl = block["sources.paid_search.cost_per_lead_usd"]
    assert cpl == {"origin": "default", "source": "docs/assumptions.md#cost-per-lead"}
    _, fields = field_origins(path)
    fields = by_path(fields)
    assert fields["sources.paid_search.cost_per_lead_usd"].value == DEFAULT_CPL_USD
    assert fields["sources.paid_search.cost_per_lead_usd"].origin == "default"
    assert fields["sources.paid_search.leads_per_week"].origin == "data"
    assert fields["sources.paid_search.leads_per_week"].interval == (low, high)
    # not written at all: filled in by the schema
    assert fields["burnout.annual_turnover"].origin == "default"


def test_a_fitted_field_is_marked_fit(calibrated):
    cal, _ = calibrated
    from simfunnel.calibration.evidence import record_provenance

    cal.fitted_paths.append("sources.paid_search.quality")
    record_provenance(cal)
    block = cal.scenario.provenance
    assert block["sources.paid_search.quality.ready"].origin == "fit"
    cal.fitted_paths.remove("sources.paid_search.quality")
    record_provenance(cal)


def test_a_file_without_the_block_counts_as_the_users_where_it_sets_a_value():
    # written by an earlier simfunnel calibrate: no provenance block
    assert "provenance" not in yaml.safe_load(EXAMPLE.read_text())
    scenario, fields = field_origins(EXAMPLE)
    assert scenario.provenance == {}
    fields = by_path(fields)
    assert fields["sources.paid_search.cost_per_lead_usd"].origin == "file"
    assert fields["team.reps"].origin == "file"
    assert fields["burnout.annual_turnover"].origin == "default"
    assert fields["burnout.annual_turnover"].section == "docs/assumptions.md#burnout-and-turnover"


def test_an_override_is_the_users():
    _, fields = field_origins(
        "balanced", {"burnout.annual_turnover": 0.2, "sources.0.gross_margin": 0.7}
    )
    fields = by_path(fields)
    assert fields["burnout.annual_turnover"].origin == "file"
    assert fields["burnout.annual_turnover"].value == 0.2
    assert fields["sources.paid_social.gross_margin"].origin == "file"
    assert fields["sources.paid_social.gross_margin"].source == "override"
    assert fields["burnout.recovery_days"].origin == "default"


def test_the_cost_drivers_come_first_in_order():
    _, fields = field_origins("balanced")
    groups = list(dict.fromkeys(f.group for f in fields))
    assert groups[:5] == ["deal size", "churn", "rep cost", "hiring cost", "cost per lead"]


def test_a_block_that_names_no_field_or_a_wrong_origin_is_refused():
    raw = yaml.safe_load((ROOT / "simfunnel" / "scenarios" / "balanced.yaml").read_text())
    with pytest.raises(ScenarioError, match=r"'team\.repz' is not a field of the scenario"):
        load_scenario({**raw, "provenance": {"team.repz": {"origin": "data"}}})
    with pytest.raises(ScenarioError, match="origin"):
        load_scenario({**raw, "provenance": {"team.reps": {"origin": "guess"}}})
    ok = load_scenario({**raw, "provenance": {"team.reps": {"origin": "fit", "interval": [6, 9]}}})
    (entry,) = ok.provenance.values()
    assert entry.interval == (6.0, 9.0) and not math.isnan(entry.interval[0])

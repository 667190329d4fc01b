"""docs/assumptions.md: every default has a section there, and the project cites it alone."""

import re
import subprocess

from conftest import ROOT

from simfunnel import assumptions
from simfunnel.parameters import Scenario, load_scenario

PAGE = (ROOT / "docs" / "assumptions.md").read_text()


def _slug(heading: str) -> str:
    # GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


ANCHORS = {_slug(h) for h in re.findall(r"^## (.+)$", PAGE, flags=re.MULTILINE)}


def _leaf_paths(data, prefix=""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaf_paths(value, f"{prefix}{key}.")
    elif isinstance(data, list) and data and all(isinstance(v, dict) and "name" in v for v in data):
        for item in data:
            yield from _leaf_paths(item, f"{prefix}{item['name']}.")
    else:
        yield prefix.rstrip(".")


def test_every_section_the_code_cites_is_a_heading_of_the_page():
    cited = {anchor for _, anchor in assumptions.SECTIONS} | set(assumptions.TITLES)
    assert cited <= ANCHORS, cited - ANCHORS
    for anchor, title in assumptions.TITLES.items():
        assert _slug(title) == anchor


def test_every_anchor_cited_in_the_package_exists():
    cited = set()
    for path in [
        *ROOT.glob("simfunnel/**/*.py"),
        *ROOT.glob("simfunnel/**/*.yaml"),
        ROOT / "README.md",
        *ROOT.glob("docs/*.md"),
    ]:
        cited |= set(re.findall(r"assumptions\.md#([a-z0-9-]+)", path.read_text()))
    assert cited, "nothing cites the page"
    assert cited <= ANCHORS, cited - ANCHORS


def test_every_field_of_a_bundled_scenario_has_its_section_and_is_on_the_page():
    scenario = load_scenario("balanced")
    paths = list(_leaf_paths(scenario.model_dump(mode="json")))
    assert "sources.referral.deal_size.mean_usd" in paths
    assert assumptions.section_of("sources.referral.deal_size.mean_usd") == "deal-size"
    assert assumptions.section_of("team.hiring_cost_usd") == "hiring-and-ramp"
    assert assumptions.section_of("team.loaded_cost_per_hour_usd") == "rep-cost"
    assert assumptions.section_of("sources.referral.cost_per_lead_usd") == "cost-per-lead"
    for path in paths:
        if path in ("name", "description"):
            continue
        generic = assumptions.generic_path(path)
        leaf = generic.split(".")[-1]
        if leaf in ("name", "description"):
            continue
        # each field is named on the page: its own name, or its group's (sources[].fit)
        parent = generic.split(".")[-2] if "." in generic else leaf
        assert f"{leaf}`" in PAGE or f"{parent}`" in PAGE, f"{path} is not on the page"


def test_the_schema_defaults_are_the_figures_on_the_page():
    team = Scenario.model_fields["team"].default
    assert f"${team.hiring_cost_usd:,.0f}" in PAGE
    assert f"${team.loaded_cost_per_hour_usd:,.0f} an hour" in PAGE
    from simfunnel.calibration.scenario import DEFAULT_CPL_USD

    assert f"${DEFAULT_CPL_USD:,.0f}" in PAGE
    assert "$12,000" in PAGE  # DealSize().mean_usd


def test_the_installed_package_locates_the_page():
    located = assumptions.assumptions_path()
    assert located.read_text() == PAGE


def test_the_project_cites_its_own_page_not_an_outside_file():
    found = subprocess.run(
        ["grep", "-rln", "domain.md", "simfunnel", "notebooks", "README.md", "docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert found.stdout == ""

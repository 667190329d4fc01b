"""A report's provenance box: the defaults behind its numbers, the cost figures not yours."""

import html
import json
import re

from conftest import run_cli

from simfunnel.calibration.pipeline import calibrate
from simfunnel.calibration.samples import sample_path
from simfunnel.reporting.provenance import provenance


def test_the_box_flags_a_default_cost_per_lead_and_links_the_page(tmp_path):
    """A real papermill run of the scenario report on a calibrated scenario."""
    scenario = tmp_path / "calibrated.yaml"
    calibrate(sample_path(), simulate=False).write(scenario)
    out = tmp_path / "report"
    result = run_cli(
        "report",
        "scenario",
        "--out",
        str(out),
        "-p",
        "scenario",
        str(scenario),
        "-p",
        "replications",
        "2",
        "-p",
        "overrides",
        '{"run.horizon_days": 90, "run.warmup_days": 7}',
        "-p",
        "backend",
        "serial",
        "--quiet",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    page = html.unescape((out / "scenario.html").read_text())
    box = re.search(r"<blockquote>(.*?)</blockquote>", page, flags=re.S).group(1)
    flag = "cost per lead is the default $198 for all sources: give your spend"
    assert "cost figures that are defaults, not yours:</strong> " + flag in box
    assert '<a href="assumptions.md">docs/assumptions.md</a>' in box
    assert "other defaults: " in box
    # the link resolves: the page sits beside the report
    assert (out / "assumptions.md").read_text().startswith("# Assumptions")
    facts = json.loads((out / "scenario.json").read_text())
    assert flag in facts["provenance"]["cost_defaults"]


def test_bundled_scenarios_are_named_as_benchmarks_with_no_cost_flag():
    prov = provenance(["volume_heavy", "balanced"], {"team.reps": 5}, 2, 1, 0.0)
    assert prov.cost_defaults == []  # every cost figure is set in the bundled files
    assert (
        prov.assumptions[0]
        == "the bundled scenarios' figures are published benchmarks, not your company's"
    )
    assert prov.assumptions[1].startswith("other defaults: burnout and turnover (11 fields)")
    box = prov.markdown()
    assert "**assumptions** ([docs/assumptions.md](assumptions.md)): the bundled" in box
    assert "cost figures that are defaults" not in box


def test_an_overridden_cost_figure_is_the_users_not_a_default(tmp_path):
    scenario = tmp_path / "calibrated.yaml"
    calibrate(sample_path(), simulate=False).write(scenario)
    names = ["organic_search", "paid_search", "referral"]
    given = {f"sources.{n}.cost_per_lead_usd": 150 for n in names[:2]}
    prov = provenance(str(scenario), given, 2, 1, 0.0)
    assert "cost per lead is the default $198 for referral: give your spend" in prov.cost_defaults
    assert not any("all sources" in f and "cost per lead" in f for f in prov.cost_defaults)

"""No silent default in money: optimize refuses a split that rests on a default cost per lead.

A calibrated scenario records the cost per lead it could not see as a default in its
``provenance:`` block. A user who turns its volumes into budgets and leaves that cost
would get a recommendation built on $198 a lead; optimize refuses in one line, and with
--allow-default-costs goes on and says so in its answer.
"""

from __future__ import annotations

import json

import yaml

import simfunnel
from simfunnel.calibration.samples import sample_path

BUDGETS = {"organic_search": 3000.0, "paid_search": 5000.0}


def _budget_scenario(tmp_path, cost_given: bool = False):
    cal = simfunnel.calibrate(sample_path(), simulate=False)
    raw = yaml.safe_load(cal.to_yaml())
    for src in raw["sources"]:
        if src["name"] in BUDGETS:
            src.pop("leads_per_week")
            src["budget_per_week_usd"] = BUDGETS[src["name"]]
            if cost_given:
                src["cost_per_lead_usd"] = 120.0
    raw["run"].update({"horizon_days": 42, "warmup_days": 7})
    path = tmp_path / "calibrated.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = {
        "scenario": str(path),
        "budget": {"total_per_week_usd": 8000, "sources": sorted(BUDGETS)},
        "objective": "cac",
        "replications": 1,
        "trials": 2,
        "batch_size": 2,
        "seed": 3,
        "selection": {"top": 1, "replications": 2},
    }
    if cost_given:  # the provenance still says default: the spec's overrides give it
        spec["overrides"] = {f"sources.{s}.cost_per_lead_usd": 120.0 for s in BUDGETS}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return str(tmp_path / "spec.yaml")


def test_a_default_cost_per_lead_is_refused_in_one_line(cli, tmp_path):
    spec = _budget_scenario(tmp_path)
    done = cli("optimize", spec, "--out", str(tmp_path / "study"), "--backend", "serial")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "cost per lead of organic_search, paid_search: a default" in done.stderr
    assert "--allow-default-costs" in done.stderr
    assert not (tmp_path / "study" / "study.db").exists()


def test_allowed_the_answer_says_what_it_rests_on(cli, tmp_path):
    spec = _budget_scenario(tmp_path)
    args = ["--out", str(tmp_path / "study"), "--backend", "serial", "--allow-default-costs"]
    done = cli("optimize", spec, *args, "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["default_costs"] == sorted(BUDGETS)
    assert "rests on a default cost per lead for organic_search, paid_search" in answer["sentence"]


def test_a_cost_given_in_the_spec_counts_as_given(cli, tmp_path):
    spec = _budget_scenario(tmp_path, cost_given=True)
    done = cli("optimize", spec, "--out", str(tmp_path / "study"), "--backend", "serial", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["default_costs"] == []

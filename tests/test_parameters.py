import json

import pytest
import yaml

import simfunnel
from simfunnel.parameters import apply_overrides, parse_assignment, read_scenario_dict


def test_bundled_scenarios_load_and_share_team_and_budget():
    names = simfunnel.bundled_scenarios()
    assert set(names) == {"volume_heavy", "quality_heavy", "balanced"}
    scenarios = [simfunnel.load_scenario(n) for n in names]
    teams = {s.team.model_dump_json() for s in scenarios}
    assert len(teams) == 1, "bundled scenarios must share one team to compare fairly"
    budgets = {sum(src.budget_per_week_usd or 0 for src in s.sources) for s in scenarios}
    assert budgets == {30_000}
    assert all(desc for desc in names.values())


def test_every_field_documents_a_unit_or_meaning():
    # Every numeric field's name or description names its unit or meaning.
    units = (
        "_usd",
        "_days",
        "_years",
        "days_",
        "_hours",
        "_minutes",
        "_hour",
        "_per_",
        "probability",
        "share",
        "reps",
        "seed",
        "elasticity",
        "alpha",
        "beta",
        "sigma",
        "multiplier",
        "_auc",
        "threshold",
        "floor",
        "_k",
        "attempts",
        "productivity",
        "turnover",
        "score",
        "fatigue",
    )
    from pydantic import BaseModel

    def walk(model: type[BaseModel]):
        for name, field in model.model_fields.items():
            ann = field.annotation
            for sub in getattr(ann, "__args__", (ann,)):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    yield from walk(sub)
            if ann in (float, int, float | None, int | None):
                yield name, field.description or ""

    for name, desc in walk(simfunnel.Scenario):
        assert any(u in name or u in desc.lower() for u in units), name


def test_unknown_keys_are_rejected_not_defaulted():
    raw = read_scenario_dict("balanced")
    raw["team"]["rep"] = 3
    with pytest.raises(simfunnel.ScenarioError) as err:
        simfunnel.load_scenario(raw)
    assert err.value.problems == ["team.rep: unknown field (did you mean 'reps'?), got 3"]


def test_messages_name_path_value_and_range():
    raw = read_scenario_dict("volume_heavy")
    raw["sources"][2]["cost_per_lead_usd"] = -5
    raw["process"] = {"contact_probability": 1.5, "routing": {"policy": "random"}}
    with pytest.raises(simfunnel.ScenarioError) as err:
        simfunnel.load_scenario(raw)
    problems = err.value.problems
    assert "sources[2].cost_per_lead_usd: must be > 0, got -5" in problems
    assert "process.contact_probability: must be <= 1, got 1.5" in problems
    assert any(
        p.startswith("process.routing.policy: must be one of") and "'random'" in p for p in problems
    )


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"quality": {"ready": 0.5, "not_ready": 0.5, "unqualified": 0.5}}, "must be 1, got 1.5"),
        ({"leads_per_week": 10}, "exactly one of leads_per_week and budget_per_week_usd"),
        ({"day_of_week_profile": [1, 2, 3]}, "must have 7 weights, got 3"),
        (
            {"bursts": [{"start": "2026-03-01", "end": "2026-02-01", "multiplier": 2}]},
            "end must not be before start",
        ),
    ],
)
def test_cross_field_rules(change, fragment):
    raw = read_scenario_dict("volume_heavy")
    raw["sources"][0].update(change)
    with pytest.raises(simfunnel.ScenarioError) as err:
        simfunnel.load_scenario(raw)
    assert any(p.startswith("sources[0]") and fragment in p for p in err.value.problems), (
        err.value.problems
    )


def test_score_threshold_requires_score_routing():
    with pytest.raises(simfunnel.ScenarioError, match=r"needs routing\.policy 'score'"):
        simfunnel.load_scenario("balanced", {"process.routing.nurture_below_score": 0.3})


def test_overrides_by_name_and_index_and_yaml_values():
    sc = simfunnel.load_scenario(
        "volume_heavy",
        {
            "team.reps": 5,
            "sources.paid_social.budget_per_week_usd": 6000,
            "sources.1.cost_per_lead_usd": 33,
            "team.working_days": ["mon", "tue"],
        },
    )
    assert sc.team.reps == 5
    assert sc.sources[0].budget_per_week_usd == 6000
    assert sc.sources[1].cost_per_lead_usd == 33
    assert sc.team.working_days == ("mon", "tue")
    assert parse_assignment("team.reps=12") == ("team.reps", 12)
    assert parse_assignment("process.routing.policy=score") == ("process.routing.policy", "score")
    with pytest.raises(simfunnel.ScenarioError, match="no item named 'nope'"):
        apply_overrides(read_scenario_dict("balanced"), {"sources.nope.cost_per_lead_usd": 1})


def test_load_from_yaml_json_and_dict_agree(tmp_path):
    raw = read_scenario_dict("quality_heavy")
    y = tmp_path / "s.yaml"
    y.write_text(yaml.safe_dump(raw))
    j = tmp_path / "s.json"
    j.write_text(json.dumps(raw, default=str))
    a, b, c = (simfunnel.load_scenario(x) for x in (y, j, raw))
    assert a == b == c == simfunnel.load_scenario("quality_heavy")


def test_budget_mode_has_diminishing_returns():
    base = simfunnel.load_scenario("volume_heavy").sources[0]
    doubled = simfunnel.load_scenario(
        "volume_heavy", {"sources.paid_social.budget_per_week_usd": 2 * base.budget_per_week_usd}
    ).sources[0]
    assert doubled.effective_cost_per_lead_usd == pytest.approx(
        base.cost_per_lead_usd * 2**base.cpl_elasticity
    )
    assert (
        base.effective_leads_per_week
        < doubled.effective_leads_per_week
        < (2 * base.effective_leads_per_week)
    )

"""The optimisation spec: forms it accepts, and one precise line for each mistake."""

import pytest

from simfunnel.errors import SpecError
from simfunnel.metrics import KPI_DOCS
from simfunnel.optimization.spec import (
    MAXIMIZE,
    MINIMIZE,
    constraints_with,
    default_direction,
    load_optimize_spec,
)

BASE = {
    "scenario": "balanced",
    "budget": {"total_per_week_usd": 30000, "sources": ["referral", "paid_social"]},
}


def spec(**extra):
    return load_optimize_spec({**BASE, **extra})


def test_constraints_as_mapping_or_strings_are_the_same():
    a = spec(constraints={"burnout_index": {"max": 0.35}, "customers": {"min": 20}})
    b = spec(constraints=["burnout_index <= 0.35", "customers>=20"])
    c = spec(constraints="burnout_index <= 0.35")
    assert a.constraint_list() == b.constraint_list()
    assert [x.describe() for x in a.constraint_list()] == [
        "burnout_index <= 0.35",
        "customers >= 20",
    ]
    assert c.constraint_list() == a.constraint_list()[:1]
    # the CLI's --constraint joins either form
    assert constraints_with({"burnout_index": {"max": 0.35}}, ["reps_quit <= 2"]) == [
        "burnout_index <= 0.35",
        "reps_quit <= 2",
    ]


def test_objectives_with_default_and_explicit_directions():
    s = spec(objective=["cac", {"revenue": "max"}, {"rep_utilization": "minimise"}])
    assert [(o.kpi, o.direction) for o in s.objectives()] == [
        ("cac", "minimize"),
        ("revenue", "maximize"),
        ("rep_utilization", "minimize"),
    ]
    assert s.resolved_sampler() == "nsga2"
    assert spec().resolved_sampler() == "tpe"
    # every KPI has a default direction, or a precise request for one
    for kpi in KPI_DOCS:
        if kpi in MAXIMIZE | MINIMIZE:
            assert default_direction(kpi) in ("minimize", "maximize")
        else:
            with pytest.raises(SpecError, match=f"write {{{kpi}: minimize}}"):
                spec(objective=kpi)
    # the value KPIs of the recalibrated model already have their directions
    assert {"ltv", "ltv_to_cac", "lifetime_revenue", "profit"} <= MAXIMIZE
    assert "cac_payback_months" in MINIMIZE


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"objective": {"cac": "lowest"}}, "objective cac: direction must be minimize or maximize"),
        ({"objective": ["cac", "cac"]}, "objective: cac is given twice"),
        (
            {"constraints": {"burnout_index": {"below": 0.3}}},
            "expected min and/or max, got 'below'",
        ),
        ({"constraints": {"burnout_index": {"max": "x"}}}, "max must be a number, got 'x'"),
        ({"constraints": ["burnout_index <= lots"]}, "'lots' is not a number"),
        ({"constraints": ["burnout_index == 0.3"]}, "use <= or >="),
        ({"constraints": ["vibes <= 3"]}, "constraint: unknown KPI 'vibes'"),
        (
            {"budget": {**BASE["budget"], "max_share": {"referral": 0.3, "paid_social": 0.3}}},
            "budget.max_share: the maximum shares add up to 0.6, below 1",
        ),
        (
            {
                "budget": {
                    **BASE["budget"],
                    "min_share": {"referral": 0.7, "paid_social": 0.1},
                    "max_share": {"referral": 0.5},
                }
            },
            "the minimum share of referral (0.7) is above its maximum (0.5)",
        ),
        (
            {"budget": {**BASE["budget"], "max_share": {"radio": 0.5}}},
            "budget.max_share: 'radio' is not one of the budget's sources",
        ),
        (
            {"budget": {**BASE["budget"], "total_per_week_usd": 30000.5}},
            "budget.total_per_week_usd: must be a whole number of dollars",
        ),
        ({"budget": {**BASE["budget"], "sources": ["referral"]}}, "budget.sources"),
        ({"parameters": [{"path": "team.reps", "range": [4, 9.5]}]}, "whole-number bounds"),
        ({"parameters": [{"path": "team.reps", "range": [0, 9]}]}, "value 0 is not valid"),
        (
            {"parameters": [{"path": "sources.referral.budget_per_week_usd", "range": [1, 9]}]},
            "already set by the budget split",
        ),
        ({"budget": None}, "nothing to optimise"),
        ({"trials": 0}, "trials: must be >= 1, got 0"),
        ({"sampler": "cmaes", "objective": ["cac", "revenue"]}, "sampler: cmaes"),
    ],
)
def test_each_mistake_is_named(extra, message):
    with pytest.raises(SpecError) as err:
        spec(**extra)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_source_given_by_volume_cannot_be_budgeted():
    with pytest.raises(SpecError, match="given by leads_per_week"):
        spec(
            overrides={
                "sources.referral.budget_per_week_usd": None,
                "sources.referral.leads_per_week": 50,
            }
        )

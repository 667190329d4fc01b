"""The verdict of an optimisation on selection runs of known outcome: when a change of
split or of team is recommended, and what the sentence says."""

import re

import numpy as np
import pandas as pd
import pytest

from simfunnel.optimization.select import CURRENT, Candidate, choose
from simfunnel.optimization.spec import budget_path, load_optimize_spec
from simfunnel.optimization.verdict import rep_week_cost, sentence, team_cost, verdict

SPEC = load_optimize_spec(
    {
        "scenario": "balanced",
        "budget": {"total_per_week_usd": 30000, "sources": ["referral", "paid_social"]},
        "parameters": [{"path": "team.reps", "range": [8, 16]}],
        "objective": "cac",
        "constraints": {"burnout_index": {"max": 0.5}},
        "replications": 2,
        "trials": 4,
        "selection": {"top": 2, "replications": 8},
    }
)


def _choice(cacs):
    """Selection runs with these CAC means by candidate (paired noise, common seeds)."""
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 300, 8)
    decisions = {
        CURRENT: (15000, 15000, 8),
        "trial 1": (20000, 10000, 8),
        "trial 2": (20000, 10000, 12),
    }
    candidates = []
    rows = []
    for point, (label, (a, b, reps)) in enumerate(decisions.items()):
        decision = {budget_path("referral"): a, budget_path("paid_social"): b, "team.reps": reps}
        candidates.append(Candidate(label, None if label == CURRENT else point, decision))
        for r in range(8):
            rows.append(
                {
                    "scenario": label,
                    "point": point,
                    "replication": r,
                    "status": "ok",
                    "cac": cacs[label] + noise[r] + rng.normal(0, 300),
                    "burnout_index": 0.2,
                    "revenue": 1e6,
                    "customers": 50.0,
                    "reps_quit": 0.0,
                    "stale_share": 0.01,
                }
            )
    return choose(candidates, pd.DataFrame(rows), SPEC)


def test_a_larger_team_that_beats_the_best_split_at_the_current_team_is_recommended_with_its_cost():
    choice = _choice({CURRENT: 20000, "trial 1": 18000, "trial 2": 15000})
    said = verdict(SPEC, choice)
    assert said.kind == "change" and said.label == "trial 2"
    cost = team_cost(SPEC, 8, 12)
    assert (
        cost
        == f"4 more reps than your 8, about ${4 * rep_week_cost(SPEC):,.0f} a week in paid hours"
    )
    text = sentence(SPEC, choice)
    assert text.startswith(
        "Put $20,000 a week in referral and $10,000 in paid social, with 12 reps."
    )
    assert f"It changes the team: {cost}; that beats the best split at your 8 reps on CAC" in text


def test_a_larger_team_no_better_than_the_best_split_at_the_current_team_is_not_recommended():
    choice = _choice({CURRENT: 20000, "trial 1": 16000, "trial 2": 15990})
    assert choice.best == "trial 2"  # the lowest mean, by a hair
    said = verdict(SPEC, choice)
    assert said.kind == "change" and said.label == "trial 1"  # the split changes, the team stays
    text = sentence(SPEC, choice)
    assert text.startswith(
        "Put $20,000 a week in referral and $10,000 in paid social, with 8 reps."
    )
    assert "A team of 12 did no better on CAC than the best split at your 8 reps" in text
    assert "so the team stays" in text


def test_nothing_significantly_better_keeps_the_current_split():
    choice = _choice({CURRENT: 20000, "trial 1": 19800, "trial 2": 20010})
    said = verdict(SPEC, choice)
    assert said.kind == "keep" and said.label == CURRENT
    text = sentence(SPEC, choice)
    assert re.match(
        r"Keep your current split; nothing tried beats it on CAC by more than \d+%", text
    )
    assert "Put $" not in text and "{" not in text


@pytest.mark.parametrize("reps", [4, 8])
def test_the_cost_of_fewer_reps_is_a_saving(reps):
    assert team_cost(SPEC, 10, reps).startswith(
        f"{10 - reps} reps fewer than your 10, saving about $"
    )


def test_a_better_mix_found_at_the_current_team_is_said_beside_the_recommendation(tmp_path):
    from simfunnel.optimization import optimize
    from simfunnel.reporting.budget_mix import team_size_takeaway

    spec = SPEC.model_dump(mode="json")
    spec.update(trials=2, batch_size=2, overrides={"run.horizon_days": 40, "run.warmup_days": 7})
    spec["selection"] = {"top": 1, "replications": 3}
    result = optimize(spec, tmp_path / "s", backend="serial", progress=False)
    recommended = float(result.best["cac"])
    own = 8  # balanced's own team
    table = pd.DataFrame(
        [
            {"reps": own, "feasible": True, "candidate": "trial 0", "cac": recommended / 2},
            {"reps": 14, "feasible": True, "candidate": "trial 1", "cac": recommended * 2},
        ]
    ).set_index("reps")
    text = team_size_takeaway(table, "cac", result)
    assert f"At your {own} reps, a search of its own found CAC $" in text
    assert "the two searches differ by chance" in text
    table.loc[own, "cac"] = recommended * 1.5  # no better: nothing more to say
    assert "a search of its own" not in team_size_takeaway(table, "cac", result)

"""The effects domain.md lists, reproduced by the bundled scenarios and the model."""

import pytest

import simfunnel


@pytest.fixture(scope="module")
def bundled():
    return {n: simfunnel.simulate(n).kpis for n in ("volume_heavy", "quality_heavy", "balanced")}


def test_volume_heavy_more_leads_cheaper_per_lead_but_dearer_per_customer(bundled):
    vol, qual, bal = bundled["volume_heavy"], bundled["quality_heavy"], bundled["balanced"]
    assert vol["leads"] > bal["leads"] > qual["leads"]
    assert vol["cpl"] < bal["cpl"] < qual["cpl"]
    assert vol["cac"] > bal["cac"] > qual["cac"]
    assert vol["median_response_hours"] > qual["median_response_hours"]
    assert vol["burnout_index"] > qual["burnout_index"]
    assert vol["stale_share"] > qual["stale_share"]


def test_source_ordering_per_lead_when_capacity_is_ample():
    # domain.md 1: referral converts best per lead, events and bought lists worst.
    rates = {}
    for name in ("quality_heavy", "volume_heavy"):
        funnel = simfunnel.simulate(name, overrides={"team.reps": 60}).funnel()
        rates.update(funnel["lead_to_won"].to_dict())
    assert rates["referral"] > rates["organic_search"] > rates["targeted_events"]
    assert rates["paid_social"] > rates["purchased_list"]
    assert rates["referral"] == max(rates.values())


def test_faster_response_raises_contact_rate_through_decay():
    def run(reps, decay):
        return simfunnel.simulate(
            "volume_heavy",
            overrides={"team.reps": reps, "process.decay.enabled": decay, "run.horizon_days": 150},
        )

    slow, fast = run(10, True).kpis, run(40, True).kpis
    assert fast["median_response_hours"] < slow["median_response_hours"]
    assert fast["contact_rate"] > slow["contact_rate"] + 0.05

    def contact_by_speed(result):
        worked = result.leads[result.leads.attempts > 0]
        contacted = worked.furthest_stage != "new"
        quick = worked.first_response_hours < 1
        late = worked.first_response_hours > 16
        return contacted[quick].mean(), contacted[late].mean()

    quick, late = contact_by_speed(run(40, True))
    assert quick > late + 0.1
    # without the decay curve, how fast a lead was answered hardly matters
    quick_nd, late_nd = contact_by_speed(run(40, False))
    assert abs(quick_nd - late_nd) < (quick - late) / 3


def test_more_reps_lower_the_stale_share():
    shares = [
        simfunnel.simulate("balanced", overrides={"team.reps": r}).kpis["stale_share"]
        for r in (6, 12, 24)
    ]
    assert shares[0] > shares[1] > shares[2]


def test_burnout_raises_quitting():
    def quits(k):
        return sum(
            simfunnel.simulate(
                "volume_heavy", seed=s, overrides={"burnout.quit_fatigue_k": k}
            ).kpis["reps_quit"]
            for s in range(6)
        )

    assert quits(3.0) > quits(0.0) * 1.5


def test_overload_raises_fatigue_and_it_recovers_with_capacity():
    tired = simfunnel.simulate("volume_heavy", overrides={"team.reps": 8}).kpis
    rested = simfunnel.simulate("volume_heavy", overrides={"team.reps": 40}).kpis
    assert tired["rep_utilization"] > 0.9 > rested["rep_utilization"]
    assert tired["burnout_index"] > 2 * rested["burnout_index"]


def test_score_routing_with_threshold_sends_low_scores_to_nurture():
    base = simfunnel.simulate("volume_heavy", overrides={"process.routing.policy": "score"})
    gated = simfunnel.simulate(
        "volume_heavy",
        overrides={"process.routing.policy": "score", "process.routing.nurture_below_score": 0.5},
    )
    assert gated.kpis["nurtured_share"] > base.kpis["nurtured_share"] + 0.2
    worked = gated.leads[gated.leads.attempts > 0]
    assert worked.score.mean() > gated.leads.score.mean()


def test_working_hours_make_night_leads_wait_for_the_morning():
    r = simfunnel.simulate(
        "quality_heavy", overrides={"process.patience.enabled": False, "team.reps": 40}
    )
    leads = r.leads[r.leads.first_response_hours.notna()]
    hour = leads.arrival_hours % 24
    night = leads[(hour >= 20) | (hour < 6)]
    start = (night.arrival_hours + night.first_response_hours) % 24
    assert (start >= 9 - 1e-9).all() and (start <= 17 + 1e-9).all()
    assert night.first_response_hours.median() > 3

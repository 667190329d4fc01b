"""Figures, tables, verdicts and takeaways of the reports, as plain Python (no notebook)."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from simfunnel.reporting import headline, plots, tables
from simfunnel.reporting.provenance import Provenance, settings_overrides

FUNNEL = pd.DataFrame(
    {
        "leads": [1000, 400],
        "contacted": [500, 300],
        "qualified": [100, 200],
        "opportunities": [80, 150],
        "won": [8, 30],
        "lead_to_won": [0.008, 0.075],
    },
    index=pd.Index(["paid_social", "referral"], name="source"),
)


def test_stage_rates_are_shares_of_the_previous_stage():
    assert plots.stage_rates([1000, 500, 100, 0, 0])[:4] == [1.0, 0.5, 0.2, 0.0]
    assert math.isnan(plots.stage_rates([10, 0, 0])[2])


def test_funnel_chart_is_linear_and_writes_the_stage_rates():
    fig = plots.funnel_chart(FUNNEL)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"
    texts = {t.get_text() for t in ax.texts}
    # contacted/leads of paid_social, qualified/contacted, won/opportunities of referral
    assert {"1,000", "50%", "20%", "75%"} <= texts


def test_funnel_table_fits_and_reads_like_the_funnel():
    table = tables.funnel_table(FUNNEL)
    assert list(table.columns) == [
        "Leads",
        "Contacted",
        "Qualified",
        "Opportunities",
        "Won",
        "Lead to won",
    ]
    assert table.loc["paid_social", "Qualified"] == "100 (20.0%)"
    assert table.loc["referral", "Lead to won"] == "7.5%"
    assert table.columns.name == "source" and table.index.name is None


def test_funnel_takeaway_names_the_narrowest_step_and_the_sources():
    text = headline.funnel_takeaway(FUNNEL)
    # totals: 1400 -> 800 -> 300 -> 230 -> 38: opportunities to won is the narrowest (17%)
    assert text.startswith("Of 1,400 leads, 3% were won")
    assert "opportunities to won (17% get through)" in text
    assert "referral converts best (7.5% of its leads won), paid_social worst (0.8%)" in text


def leads_frame(delays, nurture=None):
    return pd.DataFrame(
        {
            "source": ["a"] * len(delays),
            "first_response_hours": delays,
            "routed_to_nurture": nurture or [False] * len(delays),
        }
    )


def test_response_bins_count_never_worked_leads_and_leave_out_nurture():
    leads = leads_frame(
        [0.01, 0.2, 0.7, 2.0, 10.0, 30.0, 100.0, np.nan, np.nan, 0.01],
        nurture=[False] * 9 + [True],
    )
    bins = plots.response_bins(leads)
    assert list(bins.index) == [label for label, _ in plots.RESPONSE_BINS] + ["never worked"]
    assert bins["a"].tolist() == [1, 1, 1, 1, 1, 1, 1, 2]
    text = headline.response_takeaway(bins)
    assert text == (
        "33% of leads got a first attempt within an hour and 56% within a day; 22% were "
        "never attempted (gone stale or still waiting)."
    )
    fig = plots.response_time_chart(leads)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == "never worked" and labels[0] == "under 5 min"


def test_robust_colour_limits_ignore_an_outlier():
    values = [20_000, 21_000, 22_500, 23_000, 24_000, 25_000, 26_000, 27_000, 1_240_000]
    assert plots.robust_limits(values) == (20_000, 27_000)
    assert plots.robust_limits(values[:-1]) == (20_000, 27_000)
    means = pd.DataFrame(
        {
            "team.reps": [8, 8, 8, 16, 16, 16, 24, 24, 24],
            "sources.x.budget_per_week_usd": [4000, 12000, 20000] * 3,
            "cac": values,
        }
    )
    fig = plots.heatmap(means, "team.reps", "sources.x.budget_per_week_usd", "cac")
    image = fig.axes[0].images[0]
    assert image.norm.vmax == 27_000  # not 1.24M: the other cells keep their colours
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "$1.24M" in texts and "$20k" in texts
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["$4k", "$12k", "$20k"]


def test_compact_numbers():
    assert plots.compact(1_240_000, "usd") == "$1.24M"
    assert plots.compact(23_292.4, "usd") == "$23.3k"
    assert plots.compact(0.214, "share") == "21%"
    assert plots.compact(0.2141, "index") == "0.21"
    assert plots.compact(812, "count") == "812"
    assert plots.compact(math.nan) == "-"
    assert plots.compact("fifo", "number") == "fifo"  # a swept policy, not a number


def test_chart_is_150_dpi_with_its_takeaway_as_alt_text():
    chart = plots.Chart(plots.funnel_chart(FUNNEL, title="Funnel"), "Funnel. Most leads are lost.")
    data, meta = chart._repr_png_()
    image = Image.open(io.BytesIO(data))
    assert round(image.info["dpi"][0]) >= 150
    assert image.size[0] >= 0.8 * 150 * chart.figure.get_figwidth()
    assert meta["alt"] == "Funnel. Most leads are lost." == repr(chart)


def comparison_table():
    index = pd.MultiIndex.from_tuples(
        [
            ("cac", "volume_heavy"),
            ("cac", "quality_heavy"),
            ("revenue", "volume_heavy"),
            ("revenue", "quality_heavy"),
        ],
        names=["kpi", "scenario"],
    )
    return pd.DataFrame(
        {
            "mean": [200_000.0, 28_000.0, 1e5, 9e5],
            "ci_low": [150_000.0, 25_000.0, 9e4, 8e5],
            "ci_high": [250_000.0, 31_000.0, 1.1e5, 1e6],
            "diff": [0.0, -172_000.0, 0.0, 8e5],
            "rel_change": [0.0, -0.86, 0.0, 8.0],
            "rel_low": [0.0, -0.9, 0.0, 7.0],
            "rel_high": [0.0, -0.8, 0.0, 9.5],
            "significant": [False, True, False, True],
        },
        index=index,
    )


def test_comparison_table_reads_baseline_and_percentages():
    table = tables.comparison_table(comparison_table(), "volume_heavy")
    base = table.loc[("CAC (cost per customer)", "volume_heavy")]
    assert base["change vs baseline"] == "baseline" and base["mean"] == "$200,000"
    other = table.loc[("Revenue, first deals", "quality_heavy")]
    assert other["change vs baseline"] == "+800.0%"
    assert other["95% interval of the change"] == "+700.0% to +950.0%"
    assert other[""] == "significant"
    assert "rel_change" not in table.columns and "False" not in table.to_string()


def test_difference_chart_gives_each_kpi_its_own_panel():
    fig = plots.difference_chart(comparison_table(), ["cac", "revenue"], "volume_heavy")
    assert len(fig.axes) == 2
    left, right = (ax.get_xlim() for ax in fig.axes)
    # CAC's -90..-80% keeps a scale of its own, not squeezed by revenue's +950%
    assert left[1] - left[0] < 150 and right[1] > 900


def test_best_of_takeaway_knows_which_way_is_better():
    text = headline.best_of_takeaway(comparison_table(), ["cac", "revenue"])
    assert "CAC (cost per customer): quality_heavy ($28,000.0)" in text or (
        "CAC (cost per customer): quality_heavy ($28,000)" in text
    )
    assert "Revenue, first deals: quality_heavy" in text


def test_cost_takeaway_points_at_cheap_leads_that_make_dear_customers():
    costs = pd.DataFrame(
        {"cac": [30_000.0, 6_000.0, math.nan], "cpl": [80.0, 200.0, 50.0]},
        index=["paid_search", "referral", "events"],
    )
    assert headline.cost_takeaway(costs) == (
        "A customer costs $6,000 from referral and $30,000 from paid_search (5.0x as much), "
        "although paid_search's leads are the cheaper ($80 against $200 a lead); events won "
        "no customer."
    )


def scenario_facts(ltv, months=30.0, provenance=None):
    kpis = {
        "customers": {"mean": 120.4, "ci_low": 110.0, "ci_high": 131.0},
        "cac": {"mean": 27_900.0, "ci_low": 26_000.0, "ci_high": 30_000.0},
        "ltv_to_cac": {"mean": ltv[0], "ci_low": ltv[1], "ci_high": ltv[2]},
        "cac_payback_months": {"mean": months, "ci_low": None, "ci_high": None},
        "rep_utilization": {"mean": 0.91},
        "burnout_index": {"mean": 0.214},
        "stale_share": {"mean": 0.12},
    }
    facts = {"scenario": "quality_heavy", "replications": 10, "kpis": kpis}
    if provenance:
        facts["provenance"] = provenance
    return facts


def test_scenario_verdict_states_the_numbers_with_their_intervals():
    prov = {"horizon_days": 425.0, "warmup_days": 60.0}
    text = headline.scenario_sentence(scenario_facts((0.8, 0.7, 0.9), provenance=prov))
    assert text.startswith(
        "quality_heavy wins 120 customers (95% CI 110 to 131) in 365 days, at $27,900 each "
        "(95% CI $26,000 to $30,000)."
    )
    assert "It does not pay back: LTV/CAC 0.8 (95% CI 0.7 to 0.9)" in text
    assert "Its reps are 91% busy; their burnout index is 0.21" in text
    assert "12% of leads go stale" in text and text.endswith("(Means of 10 replications.)")
    well = headline.scenario_sentence(scenario_facts((4.0, 3.5, 4.6), months=9.0))
    assert "It pays back well: LTV/CAC 4.0 (95% CI 3.5 to 4.6), CAC back in 9 months" in well
    unsure = headline.scenario_sentence(scenario_facts((1.2, 0.8, 1.6)))
    assert "It may or may not pay back" in unsure


def test_provenance_box_shows_every_input():
    box = Provenance(
        scenarios=["balanced"],
        overrides={"team.reps": 14},
        horizon_days=120.0,
        warmup_days=14.0,
        replications=4,
        seed=7,
        run_seconds=12.3,
        version="9.9",
        date="2026-01-02 03:04:05 UTC",
        details={"team sizes": "5, 12"},
    ).markdown()
    for text in (
        "**Scenario:** balanced",
        "team: reps = 14",
        "**horizon:** 120 days",
        "after a 14-day warm-up",
        "**replications:** 4",
        "**seed:** 7",
        "**team sizes:** 5, 12",
        "**simfunnel** 9.9",
        "2026-01-02 03:04:05 UTC, 12 s",
    ):
        assert text in box


def test_plain_settings_become_overrides_and_contradictions_are_refused():
    assert settings_overrides({"a.b": 1}, team_size=12, horizon_days=0) == {
        "a.b": 1,
        "team.reps": 12,
    }
    assert settings_overrides({"team.reps": 12}, team_size=12) == {"team.reps": 12}
    with pytest.raises(ValueError, match="team_size = 9 contradicts"):
        settings_overrides({"team.reps": 12}, team_size=9)
    with pytest.raises(ValueError, match="not a plain setting"):
        settings_overrides({}, team=3)


def sweep_means():
    return pd.DataFrame(
        {
            "team.reps": [8, 16, 24, 8],
            "sources.paid_social.budget_per_week_usd": [4000, 12000, 20000, 20000],
            "cac": [30_000.0, 22_000.0, 25_000.0, 40_000.0],
            "cac_sem": [1000.0, 500.0, 800.0, 900.0],
            "burnout_index": [0.2, 0.3, 0.6, 0.1],
            "n_ok": [5, 5, 5, 5],
        },
        index=pd.Index([0, 1, 2, 3], name="point"),
    )


def sweep_spec(reps_range):
    import simfunnel

    return simfunnel.load_spec(
        {
            "scenario": "volume_heavy",
            "parameters": [
                {"path": "team.reps", "range": reps_range},
                {"path": "sources.paid_social.budget_per_week_usd", "range": [4000, 20000]},
            ],
            "replications": 5,
        }
    )


def test_sweep_verdict_and_a_warning_when_the_best_point_is_on_a_bound():
    import simfunnel

    means = sweep_means()
    best = simfunnel.best_points(means, "cac", constraints={"burnout_index": {"max": 0.5}})
    rule = headline.human_rule({"burnout_index": {"max": 0.5}})
    assert rule == "burnout index (0-1) at most 0.500"
    text = headline.sweep_sentence(means, best, list(means.columns[:2]), "cac", True, rule)
    low, high = 22_000 - 2.776445 * 500, 22_000 + 2.776445 * 500
    assert text.startswith(
        "Best under burnout index (0-1) at most 0.500: team: reps = 16, paid social: budget per "
        f"week (USD) = $12,000 gives the lowest CAC (cost per customer), $22,000 (95% CI "
        f"${low:,.0f} to ${high:,.0f}, 5 replications); 3 of 4 points meet the constraints."
    )
    # 16 reps is inside [8, 24]; in [16, 24] it is the lowest value swept
    assert headline.sweep_bound_warnings(sweep_spec([8, 24]), best) == []
    (warning,) = headline.sweep_bound_warnings(sweep_spec([16, 24]), best)
    assert warning.startswith("The best point sits at the lowest value swept of team: reps (16)")
    # most of the Pareto front at the top of the team's range: said too
    front = means.iloc[[1, 2, 2]].assign(
        **{
            "team.reps": [24, 24, 16],
            "sources.paid_social.budget_per_week_usd": [12000, 8000, 20000],
        }
    )
    edges = headline.sweep_bound_warnings(sweep_spec([8, 24]), best, front)
    assert edges == [
        "2 of the 3 Pareto points sit at the highest value swept of team: reps (24): better "
        "trade-offs may lie beyond it."
    ]
    nothing = means[means["burnout_index"] > 1]
    assert headline.sweep_sentence(means, nothing, [], "cac", True, rule).startswith(
        "No point of the 4 swept meets burnout index"
    )


def test_what_if_overrides_keep_the_weekly_total():
    from simfunnel.reporting.whatif import WhatIf

    out = WhatIf({"a": 1.0, "b": 3.0}, 9).overrides(20_000)
    assert out == {
        "team.reps": 9,
        "sources.a.budget_per_week_usd": 5000.0,
        "sources.b.budget_per_week_usd": 15000.0,
    }
    with pytest.raises(ValueError, match="must not all be zero"):
        WhatIf({"a": 0.0}, 3).overrides(1000)


def test_what_if_panel_reruns_when_the_button_is_pressed():
    pytest.importorskip("ipywidgets")
    from simfunnel.reporting.whatif import what_if_panel

    panel = what_if_panel("balanced", {}, seed=3, replications=2, horizon_days=40)
    out = panel.children[-1]
    before = out.value
    assert "as it is" in before and "what if" in before
    panel.sliders["team"].value = 2  # a much smaller team
    panel.run()
    assert out.value != before and "Customers won" in out.value


def test_sweep_verdict_says_whether_the_best_point_pays_back():
    import simfunnel

    means = sweep_means()
    means["ltv_to_cac"] = [1.0, 4.0, 2.0, 0.5]
    means["ltv_to_cac_sem"] = [0.1, 0.2, 0.1, 0.1]
    means["cac_payback_months"] = [30.0, 9.0, 20.0, 50.0]
    best = simfunnel.best_points(means, "cac", constraints={"burnout_index": {"max": 0.5}})
    text = headline.sweep_sentence(means, best, ["team.reps"], "cac", True, "no constraint")
    low, high = 4.0 - 2.776445 * 0.2, 4.0 + 2.776445 * 0.2
    assert text.endswith(
        f"That point pays back well: LTV/CAC 4.0 (95% CI {low:.1f} to {high:.1f}), CAC back in "
        "9 months (healthy: 3x, <12)."
    )


def test_decision_names_what_to_choose_at_the_teams_own_size():
    import simfunnel

    across = simfunnel.compare_across(
        ["volume_heavy", "quality_heavy"],
        {"team.reps": [3, 8]},
        n=3,
        seed=1,
        overrides={"run.horizon_days": 60, "run.warmup_days": 7},
        backend="serial",
        progress=False,
    )
    table = across.comparisons[3].table(["cac"])
    standing = across.standing(3, "cac")
    text = headline.decision_sentence(across, 3, 53)
    assert text.startswith("Decision: with 3 reps, ")
    for name in across.scenarios:
        cac = float(table.loc[("cac", name), "mean"])
        assert f"${cac:,.0f}" in text  # every strategy's CAC is stated
        if name in standing.best:  # with its interval, then its customers
            assert f"{name} ${cac:,.0f} a customer (95% CI $" in text or (
                f"choose {name}: ${cac:,.0f} a customer (95% CI $" in text
            )
    if standing.tied:
        assert "statistically tied on CAC" in text
    else:
        best = standing.best[0]
        assert text.startswith(f"Decision: with 3 reps, choose {best}: $")
    assert re.search(r"\(95% CI \$[\d,]+ to \$[\d,]+; [\d,]+ customers in 53 days\)", text)
    # at both team sizes, whichever way the decision reads (one best, or a tie)
    for level in (3, 8):
        sentence = headline.decision_sentence(across, level, 53)
        assert "days95%" not in sentence and "; )" not in sentence


def test_axis_labels_never_show_an_identifier():
    from simfunnel.metrics import KPI_DOCS
    from simfunnel.reporting.plots import kpi_label

    for kpi in KPI_DOCS:
        label = kpi_label(kpi)
        assert "_" not in label and not label[0].islower(), (kpi, label)
    assert kpi_label("cac") == "CAC (USD per customer)"


def test_what_if_panel_reproduces_the_baseline_when_nothing_is_moved():
    pytest.importorskip("ipywidgets")
    from simfunnel.reporting.whatif import what_if_panel

    # quality_heavy splits $30,000 as 10/12/8: shares 33.3%, 40% and 26.7%, not 33/40/27
    panel = what_if_panel("quality_heavy", {}, seed=3, replications=2, horizon_days=40)
    shares = {k: s.value for k, s in panel.sliders.items() if k != "team"}
    assert shares == pytest.approx(
        {"referral": 100 / 3, "organic_search": 40.0, "targeted_events": 80 / 3}, abs=0.05
    ), shares
    before = panel.children[-1].value
    panel.run()  # nothing moved: the what-if is the scenario as it is, to the cent
    assert panel.then == panel.now
    assert panel.children[-1].value == before
    panel.sliders["referral"].value = 50.0  # a move changes the figures
    panel.run()
    assert panel.then != panel.now


def test_a_heatmap_says_what_its_cells_average_over():
    import itertools

    import pandas as pd

    from simfunnel.reporting import headline, plots

    grid = list(itertools.product([6, 8], ["round_robin", "speed"], [0.1, 0.2, 0.3]))
    means = pd.DataFrame(grid, columns=["team.reps", "process.routing.policy", "x.share"])
    means["cac"] = [1000.0 + 10 * i for i in range(len(means))]
    params = ["team.reps", "process.routing.policy", "x.share"]
    text = headline.heatmap_takeaway(means, params[0], params[1], "cac", params)
    assert text.endswith("levels)).") and "each cell averages over" in text and "(3 levels)" in text
    fig = plots.heatmap(means, params[0], params[1], "cac", parameters=params)
    assert any("averages over" in t.get_text() for t in fig.texts)
    # two parameters only: nothing is averaged, nothing is said
    two = means[means["x.share"] == 0.1]
    assert "averages" not in headline.heatmap_takeaway(two, params[0], params[1], "cac", params)
    assert not plots.heatmap(two, params[0], params[1], "cac", parameters=params).texts

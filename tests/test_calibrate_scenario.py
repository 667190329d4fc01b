"""From a lead frame to a scenario: pooling, profiles, bursts, mappings, the written YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.estimate import volume_estimates
from simfunnel.calibration.read.mapping import mapping_from_dict
from simfunnel.parameters import load_scenario

ROLES = ("lead_id", "source", "created_at", "qualified_at", "won_at", "lost_at", "amount", "owner")


def _frame(seed: int = 2) -> pd.DataFrame:
    """Half a year of date-only leads: two sources, and one too small to stand alone."""
    rng = np.random.default_rng(seed)
    n = 1200
    source = rng.choice(["Paid Search", "Referral"], n, p=[0.7, 0.3]).astype(object)
    source[:12] = "Trade Show"
    created = pd.Timestamp("2025-01-06") + pd.to_timedelta(rng.integers(0, 182, n), unit="D")
    qualified = rng.random(n) < 0.3
    won = qualified & (rng.random(n) < 0.4)
    close = created + pd.to_timedelta(rng.integers(5, 60, n), unit="D")
    return pd.DataFrame(
        {
            "lead_id": [f"x{i}" for i in range(n)],
            "source": source,
            "created_at": created.strftime("%d/%m/%Y"),
            "qualified_at": pd.Series(created.strftime("%d/%m/%Y")).where(qualified),
            "won_at": pd.Series(close.strftime("%d/%m/%Y")).where(won),
            "lost_at": pd.Series(close.strftime("%d/%m/%Y")).where(qualified & ~won),
            "amount": np.where(won, rng.lognormal(9.3, 0.5, n).round(2), np.nan),
            "owner": rng.choice(["ann", "bo", "cy"], n),
        }
    )


@pytest.fixture(scope="module")
def cal() -> simfunnel.Calibration:
    mapping = {"leads": {r: r for r in ROLES}, "dates": {"dayfirst": True}}
    return simfunnel.calibrate(_frame(), mapping=mapping, simulate=False)


def test_small_sources_are_pooled_and_named(cal: simfunnel.Calibration) -> None:
    assert cal.pooled == ["trade_show"]
    assert [s.name for s in cal.scenario.sources] == ["other", "paid_search", "referral"]
    assert any(
        "pooled into 'other'" in line and "trade_show" in line for line in cal.summary_lines()
    )


def test_date_only_data_gives_no_hour_profile(cal: simfunnel.Calibration) -> None:
    for source in cal.scenario.sources:
        assert source.hour_of_day_profile is None
        assert source.day_of_week_profile is not None and len(source.day_of_week_profile) == 7
    assert cal.scenario.team.reps == 3


def test_written_yaml_reads_back_and_carries_the_evidence(
    cal: simfunnel.Calibration, tmp_path: Path
) -> None:
    path = cal.write(tmp_path / "mine.yaml")
    assert load_scenario(path) == cal.scenario
    text = path.read_text()
    paid = cal.estimates.set_index(["field", "source"]).loc[("leads_per_week", "paid_search")]
    line = next(
        x for x in text.splitlines() if "leads_per_week" in x and f"{int(paid.n)} rows" in x
    )
    assert f"{paid.estimate:.4g}" in line and f"{paid.low:.4g}" in line
    assert "win_probability" in text and "days_to_close" in text and "mean_usd" in text
    # what the data could not inform is listed as a default
    assert "process.decay (needs first-response times and outcomes)" in text
    assert "process.routing.score_auc (no score column)" in text
    # the estimates table lists the defaults too, marked as such
    table = cal.estimates
    assert (table.loc[table["from_data"], "n"] > 0).all()
    defaults = table[~table["from_data"]].set_index(["field", "source"])
    assert defaults.loc[("process.decay.tau_minutes", "all"), "estimate"] == 180.0
    assert ("cost_per_lead_usd", "paid_search") in defaults.index
    assert ("leads_per_week", "paid_search") not in defaults.index


def test_a_status_map_and_a_deals_table_joined_on_another_column() -> None:
    leads = pd.DataFrame(
        {
            "Ref": [f"R{i}" for i in range(60)],
            "Channel": ["web"] * 60,
            "Opened": ["2025-02-01 09:00"] * 60,
            "State": ["Hot"] * 20 + ["Dead"] * 20 + ["Talking"] * 20,
            "Deal": [f"D{i}" if i < 10 else None for i in range(60)],
        }
    )
    deals = pd.DataFrame(
        {
            "DealId": [f"D{i}" for i in range(10)] + ["D99"],
            "Result": ["Closed Won"] * 4 + ["Closed Lost"] * 3 + ["Negotiation"] * 4,
            "Closed": ["2025-03-01"] * 11,
            "Value": ["$1,200.50"] * 11,
        }
    )
    mapping = mapping_from_dict(
        {
            "leads": {
                "lead_id": "Ref",
                "source": "Channel",
                "created_at": "Opened",
                "status": "State",
            },
            "deals": {
                "lead_id": "DealId",
                "match": "Deal",
                "status": "Result",
                "closed_at": "Closed",
                "amount": "Value",
            },
            "status_values": {"Hot": "qualified", "Dead": "lost", "Talking": "contacted"},
        }
    )
    from simfunnel.calibration.read import lead_frame

    frame, report = lead_frame(leads, deals, mapping, max_bad_share=0.1)
    assert (frame["status"] == "won").sum() == 4
    assert (frame["status"] == "lost").sum() == 20 + 3
    assert frame["amount"].dropna().tolist() == [1200.5] * 4
    assert int(frame["opportunity"].sum()) == 10
    assert int(frame["qualified"].sum()) == 20 and int(frame["contacted"].sum()) == 20
    assert any("matches no lead: 1 of 11 rows, e.g. 'D99'" in line for line in report.skipped)


def test_a_campaign_burst_and_a_trend_are_found() -> None:
    rng = np.random.default_rng(11)
    days = np.arange(0, 364)
    rate = 20.0 * np.exp(0.7 * days / 364)  # about doubles over the year
    rate[140:161] *= 3.0  # a three-week campaign
    counts = rng.poisson(rate)
    created = pd.Timestamp("2025-01-06") + pd.to_timedelta(np.repeat(days, counts), unit="D")
    created += pd.to_timedelta(rng.uniform(8, 18, len(created)), unit="h")
    frame = pd.DataFrame(
        {"lead_id": np.arange(len(created)), "source": "web", "created_at": created}
    )
    rows, extras = volume_estimates(frame)
    bursts = extras["web"]["bursts"]
    assert len(bursts) == 1
    start, end, mult, low, high, _ = bursts[0]
    assert low < mult < high
    assert abs((pd.Timestamp(start) - pd.Timestamp("2025-05-26")).days) <= 7
    assert abs((pd.Timestamp(end) - pd.Timestamp("2025-06-15")).days) <= 7
    assert 2.5 < mult < 3.5
    trend = next(r for r in rows if r["field"] == "trend_per_year")
    assert trend["low"] < np.expm1(0.7) < trend["high"] * 1.3
    assert trend["low"] > 0


def _won_deals_only() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, object]]:
    """All leads, and a deals file of the won deals alone: lead id, close date, amount."""
    rng = np.random.default_rng(5)
    n = 300
    created = pd.Timestamp("2025-01-06") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
    won = rng.random(n) < 0.1
    leads = pd.DataFrame(
        {
            "Id": [f"L{i}" for i in range(n)],
            "Channel": rng.choice(["Web", "Referral"], n),
            "Created": created.strftime("%Y-%m-%d"),
        }
    )
    close = created + pd.to_timedelta(rng.integers(5, 60, n), unit="D")
    deals = pd.DataFrame(
        {
            "Lead": leads["Id"][won],
            "Close Date": close[won].strftime("%Y-%m-%d"),
            "Amount": rng.lognormal(9, 0.5, int(won.sum())).round(2),
        }
    )
    mapping = {
        "leads": {"lead_id": "Id", "source": "Channel", "created_at": "Created"},
        "deals": {"lead_id": "Lead", "won_at": "Close Date", "amount": "Amount"},
    }
    return leads, deals, mapping


def test_won_deals_alone_observe_no_opportunity_stage() -> None:
    leads, deals, mapping = _won_deals_only()
    cal = simfunnel.calibrate(leads, deals, mapping=mapping, simulate=False)
    assert "opportunity" not in set(cal.observed["stage"])  # not invented equal to won
    won = cal.observed[cal.observed["stage"] == "won"]
    assert len(won) == 2 and (won["rate"] < 0.3).all()  # lead -> won is still observed
    fitted = cal.estimates[cal.estimates["from_data"]]
    assert not fitted["field"].isin(["win_probability", "opportunity_probability"]).any()
    defaults = cal.scenario.process
    for src in cal.scenario.sources:
        assert src.win_probability in (None, defaults.win_probability)
    text = cal.to_yaml()
    line = next(x for x in text.splitlines() if ".win_probability (" in x)
    assert "needs an opportunity stage" in line
    assert not any(x.lstrip().startswith("win_probability:") for x in text.splitlines())


def test_one_event_for_qualified_and_opportunity_is_not_a_chance_of_one() -> None:
    """Salesforce opens the opportunity when it converts the lead: the dates coincide."""
    rng = np.random.default_rng(6)
    n = 200
    created = pd.Timestamp("2025-01-06") + pd.to_timedelta(rng.integers(0, 90, n), unit="D")
    converted = rng.random(n) < 0.3
    won = converted & (rng.random(n) < 0.4)
    converted_at = pd.Series((created + pd.Timedelta(days=3)).strftime("%Y-%m-%d"))
    close = pd.Series((created + pd.Timedelta(days=30)).strftime("%Y-%m-%d"))
    frame = pd.DataFrame(
        {
            "lead_id": [f"s{i}" for i in range(n)],
            "source": "web",
            "created_at": created.strftime("%Y-%m-%d"),
            "qualified_at": converted_at.where(converted),
            "opportunity_at": converted_at.where(converted),
            "won_at": close.where(won),
            "lost_at": close.where(converted & ~won),
        }
    )
    cal = simfunnel.calibrate(frame, simulate=False)
    fitted = cal.estimates[cal.estimates["from_data"]].set_index(["field", "source"])
    assert ("opportunity_probability", "web") not in fitted.index
    assert ("win_probability", "web") in fitted.index  # opportunity -> won still is
    assert cal.scenario.sources[0].opportunity_probability is None
    text = cal.to_yaml()
    line = next(x for x in text.splitlines() if ".opportunity_probability (" in x)
    assert "not identifiable" in line and "became opportunities the day they qualified" in line
    # counted once: the fit sees the opportunity, not a qualified stage equal to it
    assert "qualified" not in set(cal.observed["stage"])


def test_comments_say_what_the_close_time_is_and_no_skipped_fit(cal: simfunnel.Calibration) -> None:
    text = cal.to_yaml()
    line = next(x for x in text.splitlines() if x.lstrip().startswith("days_to_close:"))
    assert "mean days from qualified to close" in line
    assert "the model draws an exponential with this mean" in line
    assert "best fit by AIC: " in line and "lowest AIC (exponential +" not in line
    assert "interval: the exponential's exact chi-square interval, scaled to this mean" in line
    # built with simulate=False: nothing in the header claims a fit by simulation
    assert "(fitted by simulation)" not in text
    assert "not fitted: the fit by simulation was skipped" in text
    assert not cal.estimates["method"].str.contains("shared/domain.md").any()

"""Exports that start at any stage, or show only the last one, come back as they were.

Each round trip exports a known world with fewer stages than the model has (only won
dates, a converted flag, rows that are all opportunities), calibrates it, and checks
that the written scenario simulates every source's observed rate inside its interval.
"""

import numpy as np
import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.fit import DECOMPOSITION
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.parameters import load_scenario

NAMES = load_scenario(sample_path(EXAMPLE_SCENARIO)).source_names
# lead->won of about 5%, 12% and 20%: above what the stage defaults allow for two of them
TRUTH = load_scenario(
    sample_path(EXAMPLE_SCENARIO),
    {
        "run.horizon_days": 182,
        **{
            f"sources.{n}.win_probability": w for n, w in zip(NAMES, (0.55, 0.75, 0.9), strict=True)
        },
    },
)


def reproduced(cal: simfunnel.Calibration) -> pd.DataFrame:
    check = cal.fit_check(replications=6, workers=2)
    table = check.table
    return table[table["stage"] != "leads_per_week"]


@pytest.fixture(scope="module")
def won_only() -> simfunnel.Calibration:
    full = to_crm(simfunnel.simulate(TRUTH, seed=5))
    return simfunnel.calibrate(
        full[["lead_id", "source", "created_at", "won_at"]],
        replications=3,
        workers=2,
        progress=False,
    )


def test_only_won_dates_calibrate_the_product_of_the_stage_chances(won_only):
    rates = reproduced(won_only)
    assert list(rates["stage"].unique()) == ["won"]
    assert rates["inside"].all(), rates[["source", "observed", "simulated"]]
    fit = won_only.fit
    # one stated decomposition, on every chance the data does not show
    assert set(fit["parameter"]) == {"quality.ready", "opportunity_probability", "win_probability"}
    assert fit["method"].str.contains(DECOMPOSITION, regex=False).all()
    assert not fit["at_bound"].any()
    # the chances move together: all above their defaults where the rate is above theirs
    scenario = won_only.scenario
    best = max(NAMES, key=lambda n: float(won_only.observed.set_index("source").loc[n, "rate"]))
    src = next(s for s in scenario.sources if s.name == best)
    assert src.win_probability > 0.3 and src.opportunity_probability > 0.6
    assert src.quality.ready > 0.27
    assert DECOMPOSITION in won_only.to_yaml()


def synthetic(rates: dict[str, float], per_source: int = 400, seed: int = 1) -> pd.DataFrame:
    """Leads over half a year with a converted flag (status) and no other date."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for name, rate in rates.items():
        created = start + pd.to_timedelta(np.sort(rng.uniform(0, 182, per_source)), unit="D")
        won = rng.random(per_source) < rate
        rows.append(
            pd.DataFrame(
                {
                    "lead_id": [f"{name}-{i}" for i in range(per_source)],
                    "source": name,
                    "created_at": created.round("min"),
                    "status": np.where(won, "won", "lost"),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def converted() -> simfunnel.Calibration:
    frame = synthetic({"course_a": 0.9, "course_b": 0.45, "course_c": 0.06})
    return simfunnel.calibrate(frame, replications=3, workers=2, progress=False)


def test_a_converted_flag_far_above_what_calls_reach_enters_past_them(converted):
    rates = reproduced(converted)
    assert len(rates) == 3
    assert rates["inside"].all(), rates[["source", "observed", "simulated"]]
    by_name = {s.name: s for s in converted.scenario.sources}
    # 90% converted: no cold-call funnel reaches it, the rows behave as open deals
    assert by_name["course_a"].entry_stage == "opportunity"
    assert by_name["course_a"].win_probability == pytest.approx(0.9, abs=0.05)
    assert by_name["course_c"].entry_stage == "lead"
    assert "entry_stage: opportunity" in converted.to_yaml()


def test_an_export_whose_rows_are_all_opportunities_enters_there():
    rng = np.random.default_rng(3)
    frame = synthetic({"inbound": 0.52, "outbound": 0.5}, seed=2)
    frame["opportunity_at"] = frame["created_at"]
    days = pd.to_timedelta(rng.exponential(50, len(frame)), unit="D").round("min")
    frame["won_at"] = (frame["created_at"] + days).where(frame["status"] == "won")
    frame["lost_at"] = (frame["created_at"] + days).where(frame["status"] == "lost")
    cal = simfunnel.calibrate(frame, as_of="2025-06-30", replications=3, workers=2, progress=False)
    for src in cal.scenario.sources:
        assert src.entry_stage == "opportunity"
        observed = cal.observed.set_index(["source", "stage"]).loc[(src.name, "won"), "rate"]
        assert src.win_probability == pytest.approx(observed, abs=1e-3)
    rates = reproduced(cal)
    assert rates["inside"].all(), rates[["source", "stage", "observed", "simulated"]]


def pipeline(never: float, mean_days: float, seed: int = 4) -> pd.DataFrame:
    """Opportunities over half a year: a share never closes, the rest close in ~mean_days."""
    rng = np.random.default_rng(seed)
    frame = synthetic({"inbound": 0.5, "outbound": 0.5}, per_source=500, seed=seed)
    frame["opportunity_at"] = frame["created_at"]
    days = pd.to_timedelta(rng.exponential(mean_days, len(frame)), unit="D").round("min")
    closes = rng.random(len(frame)) >= never
    close_at = (frame["created_at"] + days).where(closes)
    frame["won_at"] = close_at.where(frame["status"] == "won")
    frame["lost_at"] = close_at.where(frame["status"] == "lost")
    frame.loc[~closes, "status"] = "open"
    return frame


def test_open_deals_that_never_close_do_not_stretch_the_time_to_close():
    frame = pipeline(never=0.4, mean_days=20)
    cal = simfunnel.calibrate(frame, as_of="2024-12-31", simulate=False)
    rows = cal.estimates[cal.estimates["field"] == "days_to_close"].set_index("source")
    assert sorted(rows.index) == ["inbound", "outbound"]
    for source, row in rows.iterrows():
        assert row["low"] <= 20 <= row["high"], (source, row["estimate"])
        assert row["high"] < 30
        assert "cure" in row["method"]
        assert next(s for s in cal.scenario.sources if s.name == source).days_to_close < 30


def test_created_to_won_dates_give_the_time_to_close():
    rng = np.random.default_rng(8)
    frame = synthetic({"marketplace": 0.3, "web": 0.15}, per_source=800, seed=8)
    days = pd.to_timedelta(rng.exponential(15, len(frame)), unit="D").round("min")
    won_at = (frame["created_at"] + days).where(frame["status"] == "won")
    frame["won_at"] = won_at.where(won_at <= pd.Timestamp("2024-07-15"))  # not yet won
    frame = frame.drop(columns="status")
    cal = simfunnel.calibrate(frame, as_of="2024-07-15", simulate=False)
    rows = cal.estimates[cal.estimates["field"] == "days_to_close"].set_index("source")
    assert sorted(rows.index) == ["marketplace", "web"]
    for source, row in rows.iterrows():
        assert row["low"] <= 15 <= row["high"], (source, row["estimate"])
        assert "creation to won" in row["method"]
    assert "days_to_close" not in " ".join(cal.defaults)

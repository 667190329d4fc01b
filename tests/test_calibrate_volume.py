"""Volume as it is now and where it is going: trends, campaigns, and the arrival process.

A known world is exported as a CRM would export it: paid search grows 3x a year and
ran a campaign early on, organic search is flat, referral is seen only in two
campaigns. Calibrated, the scenario must carry the trend from the recent level, keep
every campaign lead, and simulate the history's last weeks (and the first weeks after
it) inside their intervals. The seeds are fixed, so every assertion is decided the same
way on every run.
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import simfunnel
from simfunnel.calibration.estimate.volume import history_end
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.errors import ScenarioError
from simfunnel.limits import scenario_workload
from simfunnel.parameters import load_scenario

END = date(2026, 1, 5)  # the end of the run: a year from 2025-01-06
CAMPAIGNS = [("2025-03-03", "2025-03-16", 100.0), ("2025-09-01", "2025-09-07", 150.0)]
TRUTH = load_scenario(
    sample_path(EXAMPLE_SCENARIO),
    {
        "run.horizon_days": 364,
        "run.accounting": "window",
        "sources.paid_search.trend_per_year": 2.0,  # 3x a year
        "sources.paid_search.trend_reference": END.isoformat(),
        "sources.paid_search.bursts": [
            {"start": "2025-02-03", "end": "2025-02-16", "multiplier": 3.0}
        ],
        "sources.referral.leads_per_week": 0.0,
        "sources.referral.bursts": [
            {"start": s, "end": e, "extra_leads_per_week": x} for s, e, x in CAMPAIGNS
        ],
    },
)
DAY = pd.Timedelta(days=1)


def _poisson(count: int) -> tuple[float, float]:
    low = stats.chi2.ppf(0.025, 2 * count) / 2 if count else 0.0
    return float(low), float(stats.chi2.ppf(0.975, 2 * count + 2) / 2)


def _counts(frame: pd.DataFrame, source: str, start: pd.Timestamp, end: pd.Timestamp) -> int:
    created = pd.to_datetime(frame["created_at"])
    return int(((frame["source"] == source) & (created >= start) & (created < end)).sum())


@pytest.fixture(scope="module")
def export() -> pd.DataFrame:
    return to_crm(simfunnel.simulate(TRUTH, seed=3))


@pytest.fixture(scope="module")
def cal(export: pd.DataFrame) -> simfunnel.Calibration:
    return simfunnel.calibrate(export, simulate=False)


@pytest.fixture(scope="module")
def anchor(cal: simfunnel.Calibration) -> pd.Timestamp:
    """The last midnight of the history (the last lead's): weeks are counted back from it."""
    return history_end(cal.frame).floor("D")


@pytest.fixture(scope="module")
def forward(cal: simfunnel.Calibration, tmp_path_factory: pytest.TempPathFactory) -> list:
    """The written scenario, read back, replaying the history and 5 weeks past it (6 seeds)."""
    path = cal.write(tmp_path_factory.mktemp("volume") / "calibrated.yaml")
    written = load_scenario(path)
    assert cal.history is not None
    replay = {**cal.history, "run.horizon_days": cal.history["run.horizon_days"] + 35}
    longer = load_scenario(written, replay)
    return [to_crm(simfunnel.simulate(longer, seed=s)) for s in range(6)]


@pytest.fixture(scope="module")
def ahead(cal: simfunnel.Calibration, tmp_path_factory: pytest.TempPathFactory) -> list:
    """The written scenario as written: forward from the end of the history (6 seeds)."""
    written = load_scenario(cal.write(tmp_path_factory.mktemp("ahead") / "calibrated.yaml"))
    return [to_crm(simfunnel.simulate(written, seed=s)) for s in range(6)]


def estimate(cal: simfunnel.Calibration, field: str, name: str) -> pd.Series:
    table = cal.estimates
    (row,) = table[(table["field"] == field) & (table["source"] == name)].index
    return table.loc[row]


def source(cal: simfunnel.Calibration, name: str):
    return next(s for s in cal.scenario.sources if s.name == name)


def test_the_arrival_process_grows_with_the_trend_from_its_reference() -> None:
    flat = load_scenario(sample_path(EXAMPLE_SCENARIO), {"run.horizon_days": 364})
    grown = load_scenario(flat, {"sources.paid_search.trend_per_year": 2.0})
    shifted = load_scenario(
        grown, {"sources.paid_search.trend_reference": "2026-01-05"}
    )  # the level is reached at the end: the year before brings a third of it on average
    counts = []
    for scenario in (flat, grown, shifted):
        crm = to_crm(simfunnel.simulate(scenario, seed=1))
        created = pd.to_datetime(crm.loc[crm["source"] == "paid_search", "created_at"])
        quarter = ((created - pd.Timestamp("2025-01-06")) / DAY // 91).clip(upper=3)
        counts.append(np.bincount(quarter.astype(int), minlength=4))
        expected = scenario_workload(scenario).leads
        assert len(crm) == pytest.approx(expected, rel=0.05)
    # 3x a year: the last quarter brings 3 ** 0.75 = 2.3 times the first
    assert counts[0][3] / counts[0][0] == pytest.approx(1.0, abs=0.2)
    assert counts[1][3] / counts[1][0] == pytest.approx(3**0.75, rel=0.15)
    assert counts[2][3] / counts[2][0] == pytest.approx(3**0.75, rel=0.15)
    # from the start, 35 a week grows to about 2 * 35 / ln 3 on average; to the end, less
    assert counts[1].sum() == pytest.approx(35 * 52 * 2 / math.log(3), rel=0.06)
    assert counts[2].sum() == pytest.approx(35 * 52 * 2 / math.log(3) / 3, rel=0.06)


def test_a_campaign_with_its_own_leads_and_a_burst_that_sets_nothing() -> None:
    base = load_scenario(sample_path(EXAMPLE_SCENARIO), {"run.horizon_days": 120})
    own = load_scenario(
        base,
        {
            "sources.referral.leads_per_week": 0.0,
            "sources.referral.bursts": [
                {"start": "2025-02-03", "end": "2025-02-09", "extra_leads_per_week": 300}
            ],
        },
    )
    crm = to_crm(simfunnel.simulate(own, seed=2))
    created = pd.to_datetime(crm.loc[crm["source"] == "referral", "created_at"])
    low, high = _poisson(300)
    assert low <= len(created) <= high
    assert created.min() >= pd.Timestamp("2025-02-03")
    assert created.max() < pd.Timestamp("2025-02-10")
    with pytest.raises(ScenarioError, match="give multiplier or extra_leads_per_week"):
        load_scenario(
            base, {"sources.referral.bursts": [{"start": "2025-02-03", "end": "2025-02-09"}]}
        )


def test_a_trend_of_3x_a_year_is_carried_from_the_recent_level(cal, anchor) -> None:
    trend = estimate(cal, "trend_per_year", "paid_search")
    assert trend["low"] <= 2.0 <= trend["high"]
    assert trend["low"] > 0.5  # significant, and an interval that says something
    paid = source(cal, "paid_search")
    assert paid.trend_per_year == pytest.approx(trend["estimate"], rel=1e-3)
    assert paid.trend_reference == anchor.date()
    level = estimate(cal, "leads_per_week", "paid_search")
    # the truth's level at the end is 35 a week; the whole-period mean is about 60% of it
    assert level["low"] <= 35 * 3 ** (-1 / 365.25) <= level["high"]
    assert paid.leads_per_week == pytest.approx(level["estimate"], rel=1e-3)
    mean = cal.observed.groupby("source")["leads_per_week"].first()["paid_search"]
    assert mean < 0.7 * paid.leads_per_week
    # flat sources stay flat, with the plain mean
    organic = source(cal, "organic_search")
    assert organic.trend_per_year == 0 and organic.trend_reference is None
    table = cal.estimates
    assert not ((table["field"] == "trend_per_year") & (table["source"] == "organic_search")).any()
    assert organic.leads_per_week == pytest.approx(mean_of(cal, "organic_search"), rel=1e-3)


def mean_of(cal: simfunnel.Calibration, name: str) -> float:
    return float(cal.observed.groupby("source")["leads_per_week"].first()[name])


def test_the_calibration_says_which_baseline_it_chose(cal) -> None:
    lines = cal.volume_lines()
    trend = next(line for line in lines if line.startswith("paid_search:"))
    assert re.search(r"\d\.\dx a year trend \(95% .+\); baseline is the recent level", trend)
    assert "whole-period mean" in trend
    assert any(line.startswith("referral:") and "own leads" in line for line in lines)
    assert not any(line.startswith(("organic_search", "volume:")) for line in lines)
    text = cal.to_yaml()
    assert re.search(r"trend_per_year: [\d.]+  # estimate .*a year", text)
    assert "trend_reference: " in text and "leads_per_week is the level then" in text


def test_the_written_scenario_runs_forward_from_the_end_of_the_history(
    cal, export, ahead, anchor
) -> None:
    assert pd.Timestamp(cal.scenario.run.start_date) == anchor
    for name in ("paid_search", "organic_search"):
        low, high = _poisson(_counts(export, name, anchor - 28 * DAY, anchor))
        first = np.mean([_counts(f, name, anchor, anchor + 28 * DAY) for f in ahead])
        assert low <= first <= high, (name, low, high, first)
    # dated campaigns of the history are not replayed into the future
    assert sum(_counts(f, "referral", anchor, anchor + 35 * DAY) for f in ahead) <= 6


def test_simulated_recent_weeks_match_the_last_weeks_of_the_history(
    export, forward, anchor
) -> None:
    for name in ("paid_search", "organic_search"):
        last = _counts(export, name, anchor - 28 * DAY, anchor)
        low, high = _poisson(last)
        replayed = np.mean([_counts(f, name, anchor - 28 * DAY, anchor) for f in forward])
        after = np.mean([_counts(f, name, anchor, anchor + 28 * DAY) for f in forward])
        assert low <= replayed <= high, (name, last, replayed)
        assert low <= after <= high, (name, last, after)
    # the whole-period mean, as calibrated before, runs far below the last weeks
    weeks = (anchor - pd.to_datetime(export["created_at"]).min()) / DAY / 7
    mean = _counts(export, "paid_search", pd.Timestamp(0), anchor) / weeks
    assert 4 * mean < _poisson(_counts(export, "paid_search", anchor - 28 * DAY, anchor))[0]


def test_a_campaign_only_source_keeps_all_of_its_leads(cal, export, forward, anchor) -> None:
    referral = source(cal, "referral")
    observed = int((export["source"] == "referral").sum())
    assert referral.leads_per_week < 0.5
    # every campaign written with its own leads, on the days it ran
    bursts = sorted(referral.bursts, key=lambda b: b.start)
    assert [(b.start.isoformat(), b.end.isoformat()) for b in bursts] == [
        (s, e) for s, e, _ in CAMPAIGNS
    ]
    assert all(b.extra_leads_per_week > 0 and b.multiplier == 1.0 for b in bursts)
    written = sum(b.extra_leads_per_week * ((b.end - b.start).days + 1) / 7 for b in bursts)
    assert written + referral.leads_per_week * 52 == pytest.approx(observed, rel=0.02)
    low, high = _poisson(observed)
    simulated = [_counts(f, "referral", pd.Timestamp(0), anchor) for f in forward]
    assert low <= np.mean(simulated) <= high
    # dated: not replayed after the history
    assert sum(_counts(f, "referral", anchor, anchor + 35 * DAY) for f in forward) <= 6


def test_a_burst_on_a_trend_is_measured_and_applied_against_it(cal, export, forward) -> None:
    paid = source(cal, "paid_search")
    (burst,) = paid.bursts
    assert abs((burst.start - date(2025, 2, 3)).days) <= 7
    assert 2.0 < burst.multiplier < 4.2  # 3 on the trend (on the flat mean it would be ~1.3)
    start, end = pd.Timestamp(burst.start), pd.Timestamp(burst.end) + DAY
    observed = _counts(export, "paid_search", start, end)
    low, high = _poisson(observed)
    simulated = np.mean([_counts(f, "paid_search", start, end) for f in forward])
    assert low <= simulated <= high, (observed, simulated)


def test_the_cli_prints_the_chosen_baseline(export, tmp_path: Path, cli) -> None:
    export.to_csv(tmp_path / "export.csv", index=False)
    done = cli(
        "calibrate",
        str(tmp_path / "export.csv"),
        "--out",
        str(tmp_path / "mine.yaml"),
        "--no-simulate",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stderr.splitlines() if "a year trend" in x]
    assert len(lines) == 1 and "paid_search:" in lines[0]
    assert "baseline is the recent level" in lines[0]
    assert load_scenario(tmp_path / "mine.yaml").sources[1].trend_per_year > 0.5


@pytest.mark.slow
def test_fit_check_and_backtest_on_a_trending_history(export) -> None:
    from simfunnel.calibration.fit import backtest

    fitted = simfunnel.calibrate(
        export, replications=3, workers=2, progress=False, max_evaluations=30
    )
    check = fitted.fit_check(replications=6, workers=2)
    volumes = check.table[check.table["stage"] == "leads_per_week"]
    assert volumes["inside"].all(), volumes
    result = backtest(
        export,
        0.25,
        replications=10,
        workers=2,
        fit_options={"replications": 2, "max_evaluations": 20},
    )
    leads = result.table[result.table["count"] == "leads"].set_index("source")
    assert leads["inside"].all(), leads
    # the trend carried into the held-out quarter: well above the training mean
    train = export[pd.to_datetime(export["created_at"]) < result.cutoff]
    weeks = (result.cutoff - pd.to_datetime(train["created_at"]).min()) / DAY / 7
    flat = (train["source"] == "paid_search").sum() / weeks * (result.end - result.cutoff) / DAY / 7
    assert leads.loc["paid_search", "forecast"] > 1.4 * flat
    assert leads.loc["referral", "forecast"] < 3  # past campaigns are not replayed


def test_a_source_that_started_mid_history_keeps_its_level(tmp_path: Path) -> None:
    truth = load_scenario(
        TRUTH,
        {
            "sources.paid_search.trend_per_year": 0.0,
            "sources.paid_search.bursts": [],
            "sources.organic_search.bursts": [
                {"start": "2025-01-01", "end": "2025-07-06", "multiplier": 0.0}
            ],
        },
    )
    export = to_crm(simfunnel.simulate(truth, seed=4))
    cal = simfunnel.calibrate(export, simulate=False)
    organic = source(cal, "organic_search")
    level = estimate(cal, "leads_per_week", "organic_search")
    # 25 a week from July; an exponential fit over the whole year would make it ~45
    assert level["low"] <= 25 <= level["high"]
    assert organic.trend_per_year == 0
    (pause,) = organic.bursts
    assert pause.multiplier == 0 and abs((pause.end - date(2025, 7, 6)).days) <= 2
    line = next(x for x in cal.volume_lines() if x.startswith("organic_search:"))
    assert "first lead on 2025-07-0" in line and "a pause" in line
    assert cal.volume_lines()[0].startswith("volume: no source has a significant trend")
    assert load_scenario(cal.write(tmp_path / "started.yaml")) == cal.scenario
    observed = int((export["source"] == "organic_search").sum())
    replay = {**(cal.history or {}), "sources.paid_search.leads_per_week": 0.0}
    expected = scenario_workload(
        load_scenario(cal.scenario, {**replay, "sources.referral.bursts": []})
    ).leads
    assert expected == pytest.approx(observed, rel=0.05)


def test_overdispersed_flat_and_trending_histories() -> None:
    """Weekly counts noisier than Poisson: few false campaigns, trends found, levels covered."""
    from simfunnel.calibration.estimate.volume import volume_estimates

    days = np.arange(364)
    found = {"flat": [0, 0, 0], "trend": [0, 0, 0]}  # campaigns, trends, level covered
    for kind, rate, level in (
        ("flat", np.full(364, 10.0), 70.0),
        ("trend", 20.0 * 3 ** ((days - 364) / 365.25), 140.0),
    ):
        for seed in range(10):
            rng = np.random.default_rng(seed)
            counts = rng.poisson(rate * rng.gamma(4.0, 0.25, len(rate)))  # daily CV 0.5
            created = pd.Timestamp("2024-01-01") + pd.to_timedelta(
                np.repeat(days, counts) + rng.uniform(0.3, 0.7, counts.sum()), unit="D"
            )
            frame = pd.DataFrame(
                {"lead_id": np.arange(len(created)), "source": "x", "created_at": created}
            )
            rows, extras = volume_estimates(frame)
            by = {r["field"]: r for r in rows}
            found[kind][0] += len(extras["x"]["bursts"])
            found[kind][1] += "trend_per_year" in by
            volume = by["leads_per_week"]
            found[kind][2] += volume["low"] <= level <= volume["high"]
    assert found["flat"][0] <= 2 and found["flat"][1] <= 2 and found["flat"][2] >= 8
    assert found["trend"][0] <= 2 and found["trend"][1] == 10 and found["trend"][2] >= 8

"""The simulation-based fit, the fit check and the back-test, on a round trip.

A known scenario (the shipped example's, over half a year) is exported as a CRM would
export it; the fit starts from other values and must find the ones behind the export.
Few replications and evaluations keep this cheap; the seeds are fixed, so every
assertion is decided the same way on every run.
"""

import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.estimate import observed_rates, weeks_observed
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.fit import (
    backtest,
    default_parameters,
    fit_by_simulation,
    fit_check,
    history_before,
    verdict,
)
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.errors import SimfunnelError
from simfunnel.parameters import load_scenario

TRUTH = load_scenario(
    sample_path(EXAMPLE_SCENARIO), {"run.horizon_days": 182, "run.accounting": "window"}
)
DEFAULT_MIX = {"ready": 0.27, "not_ready": 0.49, "unqualified": 0.24}  # assumptions.md
SOURCES = TRUTH.source_names


def start_from(truth, train=None):
    """The truth with what the fit estimates moved to other values (and volumes from data)."""
    contact = 0.3
    ratio = truth.process.retry_contact_probability / truth.process.contact_probability
    overrides = {
        "process.contact_probability": contact,
        "process.retry_contact_probability": contact * ratio,
        **{f"sources.{s}.quality": DEFAULT_MIX for s in truth.source_names},
    }
    if train is not None:
        rates = observed_rates(train)
        overrides["run.horizon_days"] = weeks_observed(train) * 7
        for name, per_week in rates.groupby("source")["leads_per_week"].first().items():
            overrides[f"sources.{name}.leads_per_week"] = float(per_week)
    return load_scenario(truth, overrides)


@pytest.fixture(scope="module")
def export():
    return to_crm(simfunnel.simulate(TRUTH, seed=5))


@pytest.fixture(scope="module")
def observed(export):
    return observed_rates(export)


@pytest.fixture(scope="module")
def fitted(export, observed):
    return fit_by_simulation(
        start_from(TRUTH, export), observed, replications=3, workers=2, progress=False
    )


@pytest.fixture(scope="module")
def check(fitted, observed):
    return fit_check(fitted[0], observed, replications=6, workers=2)


def test_fit_recovers_the_contact_probability(fitted):
    scenario, table = fitted
    contact = table.set_index("parameter").loc["contact_probability"]
    truth = TRUTH.process.contact_probability
    assert contact["start"] == pytest.approx(0.3)
    assert contact["low"] <= truth <= contact["high"]
    assert contact["high"] - contact["low"] < 0.15  # an interval that says something
    assert scenario.process.contact_probability == pytest.approx(contact["estimate"])
    ratio = TRUTH.process.retry_contact_probability / truth
    assert scenario.process.retry_contact_probability == pytest.approx(
        contact["estimate"] * ratio, abs=1e-4
    )


def test_fit_moves_ready_shares_and_nothing_else(fitted):
    scenario, table = fitted
    ready = table[table["parameter"] == "quality.ready"].set_index("source")
    assert sorted(ready.index) == sorted(SOURCES)
    for source in scenario.sources:
        q = source.quality
        assert q.ready == pytest.approx(ready.loc[source.name, "estimate"])
        assert q.ready + q.not_ready + q.unqualified == pytest.approx(1.0)
        # the rest keeps the start's not-ready to unqualified split
        assert q.not_ready / q.unqualified == pytest.approx(0.49 / 0.24, rel=1e-3)
        truth = next(s for s in TRUTH.sources if s.name == source.name)
        assert source.leads_per_week == pytest.approx(truth.leads_per_week, rel=0.1)
        assert source.win_probability == truth.win_probability
    # the quality-heavy sources come out ahead of paid search, as in the truth
    assert ready.loc["organic_search", "estimate"] > ready.loc["paid_search", "estimate"]
    assert ready.loc["referral", "estimate"] > ready.loc["paid_search", "estimate"]
    assert table.attrs["replications"] == 3 and table.attrs["evaluations"] > len(table)


def test_fit_check_reproduces_the_observed_rates(check, observed):
    table = check.table
    rates = table[table["stage"] != "leads_per_week"]
    assert len(rates) == len(observed) == 3 * 4
    assert rates["inside"].sum() >= 10
    volumes = table[table["stage"] == "leads_per_week"]
    assert volumes["inside"].all() and len(volumes) == 3
    assert (table["simulated_low"] <= table["simulated"]).all()
    assert (table["simulated"] <= table["simulated_high"]).all()
    assert check.verdict.startswith(
        f"the calibrated model reproduces {int(rates['inside'].sum())} of 12 observed rates "
        "within their 95% intervals and 3 of 3 weekly volumes"
    )


def test_verdict_names_the_worst_miss():
    rows = [
        ("paid_search", "won", 0.02, 0.015, 0.025, 0.021, True),
        ("organic_search", "opportunity", 0.30, 0.27, 0.33, 0.354, False),
        ("referral", "qualified", 0.30, 0.27, 0.33, 0.34, False),
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "source",
            "stage",
            "observed",
            "observed_low",
            "observed_high",
            "simulated",
            "inside",
        ],
    )
    table["off"] = table["simulated"] / table["observed"] - 1
    assert verdict(table) == (
        "the calibrated model reproduces 1 of 3 observed rates within their 95% intervals; "
        "organic_search's lead->opportunity is off by 18%"
    )
    assert verdict(table.assign(inside=True)).endswith(
        "reproduces 3 of 3 observed rates within their 95% intervals"
    )


def test_history_before_a_cutoff_knows_nothing_after_it(export):
    cutoff = pd.Timestamp(TRUTH.run.start_date) + pd.Timedelta(days=120)
    train = history_before(export, cutoff)
    assert len(train) == (export["created_at"] < cutoff).sum()
    dates = [c for c in train.columns if c.endswith("_at")]
    assert (train[dates].max() < cutoff).all()
    won_later = export["won_at"] >= cutoff
    assert won_later.any()
    ids = set(export.loc[won_later & (export["created_at"] < cutoff), "lead_id"])
    assert (train.loc[train["lead_id"].isin(ids), "status"] == "open").all()
    assert pd.Timestamp(train.attrs["as_of"]) == cutoff


@pytest.fixture(scope="module")
def back(export):
    # the whole pipeline: simfunnel.calibrate with the fit on the first 75%, then forecast
    return backtest(
        export,
        0.25,
        replications=10,
        workers=2,
        fit_options={"replications": 2, "max_evaluations": 16},
    )


def test_backtest_intervals_cover_the_held_out_truth(back, export):
    table = back.table
    assert set(table["count"]) == {"leads", "opportunities", "wins"}
    assert set(table["source"]) == {*SOURCES, "all"}
    held_out = export[export["created_at"] >= back.cutoff]
    total = table.set_index(["source", "count"])
    assert total.loc[("all", "leads"), "actual"] == len(held_out)
    assert table[table["source"] == "all"]["inside"].all()
    per_source = table[table["source"] != "all"]
    assert per_source["inside"].sum() >= len(per_source) - 1
    assert abs(total.loc[("all", "leads"), "error"]) < 0.1
    assert back.verdict.startswith("forecasting the last 25% of the history from the rest: leads ")
    span = back.end - export["created_at"].min()
    assert (back.end - back.cutoff) / span == pytest.approx(0.25, abs=0.01)


def test_bad_arguments_are_refused_in_one_line(export, observed):
    with pytest.raises(SimfunnelError, match=r"holdout: must be between 0 and 1, got 1\.5"):
        backtest(export, 1.5, calibrate=lambda f: TRUTH)
    with pytest.raises(SimfunnelError, match=r"observed: missing column\(s\) high, low"):
        fit_by_simulation(TRUTH, observed.drop(columns=["low", "high"]))
    elsewhere = observed.assign(source="webinar")
    with pytest.raises(SimfunnelError, match="observed: no stage rate of any of the scenario"):
        fit_check(TRUTH, elsewhere)
    assert default_parameters(TRUTH, observed[observed["stage"] == "contacted"])[0].name == (
        "contact_probability"
    )
    with pytest.raises(SimfunnelError, match="replications: need at least 2, got 1"):
        fit_check(TRUTH, observed, replications=1)


# ------------------------------------------------ round trip of the direct estimates

# a busier year, so that every source has enough won deals for its deal size
BUSY = load_scenario(
    sample_path(EXAMPLE_SCENARIO),
    {
        "sources.paid_search.leads_per_week": 100,
        "sources.organic_search.leads_per_week": 80,
        "sources.referral.leads_per_week": 60,
        "sources.paid_search.win_probability": 0.3,
        "sources.organic_search.win_probability": 0.3,
        "team.reps": 12,
    },
)


@pytest.fixture(scope="module")
def year():
    run = simfunnel.simulate(BUSY, seed=3)  # cohort accounting: every lead followed up
    cal = simfunnel.calibrate(to_crm(run), simulate=False)  # direct estimates only
    return run, cal, cal.estimates.set_index(["field", "source"])


def test_round_trip_recovers_volumes_and_deal_sizes(year):
    _, _, est = year
    for source in BUSY.sources:
        lpw = est.loc[("leads_per_week", source.name), "estimate"]
        assert lpw == pytest.approx(source.leads_per_week, rel=0.05), source.name
        deal = est.loc[("deal_size.mean_usd", source.name)]
        assert deal["n"] >= 150
        assert deal["estimate"] == pytest.approx(source.deal_size.mean_usd, rel=0.10)
        opp = est.loc[("opportunity_probability", source.name)]
        assert opp["low"] <= source.opportunity_probability <= opp["high"], source.name


def test_round_trip_stage_rates_cover_the_followed_up_truth(year):
    run, cal, _ = year
    leads = run.leads[run.leads["arrival_hours"] < run.records.horizon_hours]
    observed = cal.observed.set_index(["source", "stage"])
    assert len(observed) == 12
    for code, stage in enumerate(["contacted", "qualified", "opportunity", "won"], start=1):
        truth = (leads["cohort_stage"] >= code).groupby(leads["source"]).mean()
        for source, rate in truth.items():
            row = observed.loc[(source, stage)]
            assert row["low"] <= rate <= row["high"], (source, stage, rate, row["rate"])


def test_round_trip_recovers_the_speed_to_lead_decay(year):
    _, cal, est = year
    decay = BUSY.process.decay
    tau = est.loc[("process.decay.tau_minutes", "all")]
    assert tau["low"] <= decay.tau_minutes <= tau["high"]
    floor = est.loc[("process.decay.floor", "all")]
    assert floor["low"] <= decay.floor <= floor["high"]
    assert cal.scenario.process.decay.applies_to == "contact"


def test_calibrate_reads_a_crm_export_without_a_mapping(cli, tmp_path):
    export, scenario = tmp_path / "leads.csv", tmp_path / "mine.yaml"
    done = cli(
        "run",
        str(sample_path(EXAMPLE_SCENARIO)),
        "--set",
        "run.horizon_days=182",
        "--set",
        "run.accounting=window",
        "--export-crm",
        str(export),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    # the header alone says what each column is; the fit is tested above, not here
    done = cli("calibrate", str(export), "--out", str(scenario), "--no-simulate")
    assert done.returncode == 0, done.stderr
    assert f"scenario: {scenario} (3 sources" in done.stdout
    text = scenario.read_text()
    assert "leads_per_week: " in text and "# estimate " in text
    mine = load_scenario(scenario)  # what simfunnel validate checks
    assert sorted(mine.source_names) == sorted(SOURCES)
    # the scenario runs forward from the end of the history; the fit replays the history
    last = max(pd.to_datetime(pd.read_csv(export)[c]).max() for c in ("created_at", "won_at"))
    assert str(mine.run.start_date) == f"{last:%Y-%m-%d}"


def test_fit_check_is_the_same_on_any_backend(observed):
    serial = fit_check(TRUTH, observed, replications=3, backend="serial")
    pooled = fit_check(TRUTH, observed, replications=3, backend="processes", workers=2)
    pd.testing.assert_frame_equal(serial.table, pooled.table)
    assert serial.verdict == pooled.verdict


def test_backtest_window_ends_at_the_last_lead_or_the_export_date(export):
    # a year's leads with their deals: deals close after the last lead; the held-out
    # window must end with the lead history (or the stated export date), not the last deal
    last_lead = pd.Timestamp(TRUTH.run.start_date) + pd.Timedelta(days=150)
    leads = export[export["created_at"] < last_lead].copy()
    leads.attrs = {}
    assert leads["won_at"].max() > leads["created_at"].max()
    quick = {"calibrate": lambda f: TRUTH, "replications": 2, "workers": 1}
    back = backtest(leads, 0.25, **quick)
    assert back.end == leads["created_at"].max()
    leads.attrs["as_of"] = (last_lead + pd.Timedelta(days=10)).isoformat()
    assert backtest(leads, 0.25, **quick).end == last_lead + pd.Timedelta(days=10)


def test_calibrate_as_of_is_the_export_date(export):
    leads = export.copy()
    leads.attrs = {}
    later = export[[c for c in export.columns if c.endswith("_at")]].max().max()
    day = (later + pd.Timedelta(days=3)).date().isoformat()
    cal = simfunnel.calibrate(leads, simulate=False, as_of=day)
    # a plain date is the end of that day
    assert pd.Timestamp(cal.frame.attrs["as_of"]) == pd.Timestamp(day) + pd.Timedelta(days=1)
    with pytest.raises(SimfunnelError, match=r"as_of 2020-01-01: before the first lead"):
        simfunnel.calibrate(leads, simulate=False, as_of="2020-01-01")
    with pytest.raises(SimfunnelError, match=r"as_of: not a date, got 'soon'"):
        simfunnel.calibrate(leads, simulate=False, as_of="soon")


def test_calibration_report_names_the_sources_pooled_into_other(export):
    from simfunnel.reporting.calibration import calibration_headline, what_was_read

    frame = export.copy()
    few = frame.index[frame["source"] == "referral"][:20]
    frame.loc[few, "source"] = "trade_show"
    cal = simfunnel.calibrate(frame, simulate=False)
    assert cal.pooled == ["trade_show"]
    read = what_was_read(cal, "leads.csv")
    assert read["pooled into 'other'"] == "trade_show (fewer than 30 leads each)"
    assert any("pooled into 'other'" in line for line in cal.summary_lines())
    check = cal.fit_check(replications=2, workers=1)
    facts = calibration_headline(read, check, None, None, pooled=cal.pooled)
    assert facts["pooled"] == ["trade_show"]
    assert facts["provenance"]["pooled into 'other'"].startswith("trade_show")
    assert (
        what_was_read(simfunnel.calibrate(export, simulate=False), "x")["pooled into 'other'"]
        == "none"
    )


@pytest.fixture(scope="module")
def flagged(export):
    # only the contacted rates observed: no rate responds to referral's ready share, and
    # the contact chance is searched below the 0.45 behind the export, so it hits 0.3
    from simfunnel.calibration.fit import FitParameter

    cal = simfunnel.calibrate(export, simulate=False)
    cal.observed = cal.observed[cal.observed["stage"] == "contacted"]
    params = [
        FitParameter("contact_probability", None, 0.02, 0.3),
        FitParameter("quality.ready", "referral", 0.005, 0.995),
    ]
    return cal.refine(parameters=params, replications=2, max_evaluations=10, workers=2)


def test_fit_flags_a_parameter_it_cannot_move_and_one_at_its_bound(flagged):
    from simfunnel.calibration.fit import NOT_IDENTIFIED

    fit = flagged.fit.set_index("parameter")
    ready = fit.loc["quality.ready"]
    assert not ready["identified"] and ready["estimate"] == ready["start"]
    assert ready["low"] != ready["low"] and ready["method"] == NOT_IDENTIFIED  # no interval
    contact = fit.loc["contact_probability"]
    assert contact["identified"] and contact["at_bound"] and contact["estimate"] == 0.3
    assert "at its bound 0.3" in contact["note"]
    rows = flagged.estimates.set_index(["field", "source"])
    assert not rows.loc[("quality.ready", "referral"), "from_data"]
    assert rows.loc[("quality.ready", "referral"), "method"].startswith("not identified")
    assert "at its bound 0.3" in rows.loc[("contact_probability", "all"), "method"]
    lines = flagged.fit_lines()
    assert len(lines) == 2
    assert lines[0].startswith("contact_probability: 0.3 is at the bound")
    assert lines[1].startswith("referral quality.ready: not identified by the data")
    assert "sources.referral.quality" not in flagged.fitted_paths


def test_calibration_report_says_which_parameters_are_not_fitted(flagged):
    from simfunnel.reporting.calibration import parameter_takeaway

    text = parameter_takeaway(flagged.fit)
    assert text.startswith("The chance a first call reaches the lead sits at the bound of its")
    assert text.endswith(
        "not identified by the data, left at the domain default: referral's share of "
        "sales-ready leads."
    )
    # the one ready share was not fitted: no claim about it
    assert "the share of sales-ready leads is" not in text and "come from" not in text
    # a contact chance stuck at its bound is named as stuck, never as a finding
    assert "a first call answered at once reaches" not in text


def test_the_back_test_verdict_names_a_bias_that_leans_one_way():
    from simfunnel.calibration.fit.backtest import _backtest_summary, bias_phrase

    def table(errors):
        rows = [
            {"source": f"s{i}", "count": "wins", "actual": 100, "forecast": 100 * (1 + e)}
            for i, e in enumerate(errors)
        ]
        rows.append({"source": "all", "count": "wins", "actual": 100 * len(errors)})
        out = pd.DataFrame(rows)
        out["error"] = out["forecast"] / out["actual"] - 1.0
        out.loc[out["source"] == "all", "error"] = sum(errors) / len(errors)
        out["inside"] = True
        return out

    leaning = table([0.19, 0.25, 0.39])
    assert bias_phrase(leaning, "wins") == "wins over-forecast in 3 of 3 sources, by 19% to 39%"
    assert "biased: wins over-forecast" in _backtest_summary(leaning, 0.25)
    assert bias_phrase(table([-0.3, -0.2, -0.15, -0.4, 0.05]), "wins").startswith(
        "wins under-forecast in 4 of 5"
    )
    mixed = table([0.3, -0.3, 0.05])
    assert bias_phrase(mixed, "wins") is None
    assert "biased" not in _backtest_summary(mixed, 0.25)

"""Simulated leads as a CRM export: columns, stage-date order, files, the shipped sample."""

import filecmp
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

import simfunnel
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.read.columns import CRM_COLUMNS
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.calibration.samples.make_example import main as make_example
from simfunnel.model import FINAL_STATES

SCENARIO = sample_path(EXAMPLE_SCENARIO)
# a short run: many leads are still undecided at the horizon
SHORT = {"run.horizon_days": 90, "run.warmup_days": 7, "run.accounting": "window"}


@pytest.fixture(scope="module")
def run():
    return simfunnel.simulate(SCENARIO, seed=11, overrides=SHORT)


@pytest.fixture(scope="module")
def crm(run):
    return to_crm(run)


def test_columns_are_the_native_header(crm):
    assert tuple(crm.columns) == CRM_COLUMNS
    assert crm["lead_id"].is_unique
    assert set(crm["status"]) == {"won", "lost", "open"}
    assert set(crm["source"]) == {"paid_search", "organic_search", "referral"}
    for column in [c for c in CRM_COLUMNS if c.endswith("_at")]:
        assert pd.api.types.is_datetime64_any_dtype(crm[column]), column


def test_one_row_per_lead_created_before_the_horizon(run, crm):
    arrival = run.records.leads["arrival_hours"]
    assert len(crm) == int((arrival < run.records.horizon_hours).sum())
    won = run.records.leads["final_state"] == FINAL_STATES.index("won")
    assert (crm["status"] == "won").sum() == int(won.sum()) > 0
    start = pd.Timestamp(run.scenario.run.start_date)
    end = start + pd.Timedelta(hours=run.records.horizon_hours)
    assert crm["created_at"].min() >= start
    dates = crm[[c for c in CRM_COLUMNS if c.endswith("_at")]]
    assert (dates.max() <= end).all()  # nothing after the export date


def test_stage_dates_are_in_funnel_order(crm):
    order = ["created_at", "first_response_at", "contacted_at", "qualified_at", "opportunity_at"]
    for earlier, later in pairwise(order):
        both = crm[earlier].notna() & crm[later].notna()
        assert both.any(), (earlier, later)
        assert (crm.loc[both, earlier] <= crm.loc[both, later]).all(), (earlier, later)
    # a later stage implies the earlier ones
    for stage, needs in [
        ("contacted_at", "first_response_at"),
        ("qualified_at", "contacted_at"),
        ("opportunity_at", "qualified_at"),
        ("won_at", "opportunity_at"),
        ("lost_at", "opportunity_at"),
    ]:
        assert crm.loc[crm[stage].notna(), needs].notna().all(), (stage, needs)
    for close in ("won_at", "lost_at"):
        has = crm[close].notna()
        assert (crm.loc[has, close] >= crm.loc[has, "opportunity_at"]).all()


def test_status_amount_and_owner_agree(crm):
    won = crm["status"] == "won"
    assert crm["won_at"].notna().eq(won).all()
    assert (crm.loc[won, "amount"] > 0).all() and crm.loc[~won, "amount"].isna().all()
    assert (crm.loc[crm["lost_at"].notna(), "status"] == "lost").all()
    # an opportunity still open at the horizon is an open lead with no close date
    pending = crm["opportunity_at"].notna() & crm["won_at"].isna() & crm["lost_at"].isna()
    assert pending.any() and (crm.loc[pending, "status"] == "open").all()
    worked = crm["attempts"] > 0
    assert crm.loc[worked, "owner"].str.fullmatch(r"rep_\d\d").all()
    assert crm.loc[~worked, "owner"].isna().all()
    assert crm["score"].between(0, 1).all()


def test_cli_export_as_csv_and_parquet(cli, tmp_path, crm):
    base = ["run", str(SCENARIO), "--seed", "11", *[f"--set={k}={v}" for k, v in SHORT.items()]]
    done = cli(*base, "--json", "--export-crm", str(tmp_path / "leads.csv"))
    assert done.returncode == 0, done.stderr
    assert f"CRM export: {tmp_path / 'leads.csv'} ({len(crm):,} leads)" in done.stderr
    text = (tmp_path / "leads.csv").read_text().splitlines()
    assert text[0] == ",".join(CRM_COLUMNS)
    assert text[1].split(",")[2] == crm["created_at"].iloc[0].strftime("%Y-%m-%dT%H:%M:%S")
    back = pd.read_csv(tmp_path / "leads.csv", parse_dates=["created_at", "won_at"])
    pd.testing.assert_series_equal(back["won_at"].astype("datetime64[s]"), crm["won_at"])
    assert back["amount"].sum() == pytest.approx(crm["amount"].sum())
    done = cli(*base, "--export-crm", str(tmp_path / "leads.parquet"))
    assert done.returncode == 0, done.stderr
    back = pd.read_parquet(tmp_path / "leads.parquet")
    dates = [c for c in CRM_COLUMNS if c.endswith("_at")]
    pd.testing.assert_frame_equal(back.astype({c: "datetime64[s]" for c in dates}), crm)


def test_cli_refuses_an_unknown_export_type_before_running(cli, tmp_path):
    done = cli("run", str(SCENARIO), "--export-crm", str(tmp_path / "leads.txt"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"simfunnel: error: --export-crm {tmp_path / 'leads.txt'}: unknown file type '.txt'; "
        "use one of .csv, .xlsx, .parquet"
    ]
    assert done.stdout == "" and not (tmp_path / "leads.txt").exists()


def test_shipped_example_is_packaged_and_current(tmp_path):
    shipped = sample_path()
    assert shipped.is_file()
    frame = pd.read_csv(shipped)
    assert tuple(frame.columns) == CRM_COLUMNS
    assert 2_000 <= len(frame) <= 10_000 and frame["source"].nunique() == 3
    created = pd.to_datetime(frame["created_at"])
    assert (created.max() - created.min()).days >= 360
    fresh = make_example(tmp_path)
    assert filecmp.cmp(fresh, shipped, shallow=False), (
        "the shipped example differs from what the model makes now: regenerate it with "
        "python -m simfunnel.calibration.samples.make_example"
    )
    assert np.isfinite(frame["score"]).all()

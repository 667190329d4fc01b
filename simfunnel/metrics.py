"""KPIs and tidy tables: pure functions of a run's records and its scenario.

Every KPI counts the cohort of leads that arrived after the warm-up, and the costs
of the same window (warm-up end to horizon). Deals still open at the horizon are
not counted as customers.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pandas as pd

from simfunnel.model import FINAL_STATES, READINESS, STAGES, Records
from simfunnel.parameters import Scenario

#: Every KPI, with its unit and meaning: the one place they are documented.
KPI_DOCS: dict[str, str] = {
    "leads": "leads that arrived in the window (count)",
    "contacted": "leads reached by a rep at least once (count)",
    "qualified": "leads qualified as sales-ready (count)",
    "opportunities": "qualified leads that became opportunities (count)",
    "customers": "leads won by the horizon (count)",
    "revenue": "deal value of the customers (USD)",
    "marketing_spend": "cost per lead times leads, plus fixed source costs (USD)",
    "sales_cost": "paid rep hours times the loaded hourly cost (USD)",
    "nurture_cost": "cost of the leads that entered nurture (USD)",
    "hiring_cost": "cost of the replacement hires (USD)",
    "total_cost": "marketing + sales + nurture + hiring (USD)",
    "cpl": "marketing_spend / leads (USD per lead)",
    "cac": "total_cost / customers (USD per customer; NaN without customers)",
    "conversion_rate": "customers / leads (share)",
    "contact_rate": "contacted / leads (share)",
    "return_on_spend": "revenue / total_cost (ratio)",
    "median_response_hours": "median delay from arrival to first attempt (hours)",
    "p90_response_hours": "90th percentile of that delay (hours)",
    "stale_share": "leads whose patience ran out before a first attempt (share of leads)",
    "unworked_share": "leads still waiting, never attempted, at the horizon (share)",
    "nurtured_share": "leads that entered nurture (share)",
    "rep_utilization": "busy hours / paid hours over the team (share)",
    "burnout_index": "mean fatigue of employed reps over the window's days (0 to 1)",
    "reps_quit": "reps who quit in the window (count)",
    "hires": "replacement reps who started in the window (count)",
    "backlog_end": "leads waiting in the queue or between attempts at the horizon (count)",
}

KPI_NAMES = tuple(KPI_DOCS)


def leads_frame(records: Records) -> pd.DataFrame:
    """One row per lead, with readable categories."""
    cols = dict(records.leads)
    frame = pd.DataFrame(cols)
    frame["source"] = pd.Categorical.from_codes(
        cols["source"].astype(int), categories=list(records.source_names)
    )
    frame["furthest_stage"] = pd.Categorical.from_codes(
        cols["furthest_stage"].astype(int), categories=list(STAGES), ordered=True
    )
    frame["final_state"] = pd.Categorical.from_codes(
        cols["final_state"].astype(int), categories=list(FINAL_STATES)
    )
    frame["readiness"] = pd.Categorical.from_codes(
        cols["readiness"].astype(int), categories=list(READINESS)
    )
    frame.index.name = "lead"
    return frame


def rep_days_frame(records: Records) -> pd.DataFrame:
    """One row per rep per day employed."""
    frame = pd.DataFrame(records.rep_days)
    paid = frame["hours_paid"].to_numpy()
    busy = frame["hours_busy"].to_numpy()
    frame["utilization"] = np.divide(busy, paid, out=np.zeros_like(busy), where=paid > 0)
    return frame


def rep_weeks_frame(records: Records) -> pd.DataFrame:
    """One row per rep per week: hours, utilisation, fatigue at week end, quit or active."""
    days = rep_days_frame(records)
    if days.empty:
        return pd.DataFrame(
            columns=[
                "week",
                "rep",
                "hours_paid",
                "hours_busy",
                "utilization",
                "fatigue",
                "active",
                "quit",
            ]
        )
    days["week"] = days["day"] // 7
    weeks = (
        days.groupby(["week", "rep"], sort=True)
        .agg(
            hours_paid=("hours_paid", "sum"),
            hours_busy=("hours_busy", "sum"),
            fatigue=("fatigue", "last"),
            quit=("quit", "any"),
        )
        .reset_index()
    )
    paid = weeks["hours_paid"].to_numpy()
    busy = weeks["hours_busy"].to_numpy()
    weeks["utilization"] = np.divide(busy, paid, out=np.zeros_like(busy), where=paid > 0)
    weeks["active"] = ~weeks["quit"]
    return weeks[
        ["week", "rep", "hours_paid", "hours_busy", "utilization", "fatigue", "active", "quit"]
    ]


def _window(records: Records, scenario: Scenario) -> tuple[np.ndarray, np.ndarray, float]:
    warmup_h = scenario.run.warmup_days * 24.0
    lead_mask = records.leads["arrival_hours"] >= warmup_h
    day_mask = records.rep_days["day"] * 24.0 >= warmup_h
    weeks = (records.horizon_hours - warmup_h) / 168.0
    return lead_mask, day_mask, weeks


def funnel_by_source(records: Records, scenario: Scenario) -> pd.DataFrame:
    """Leads, contacted, qualified, opportunities and won by source, with the rates between."""
    lead_mask, _, _ = _window(records, scenario)
    src = records.leads["source"][lead_mask]
    stage = records.leads["furthest_stage"][lead_mask]
    rows = []
    for code, name in enumerate(records.source_names):
        st = stage[src == code]
        counts = [int((st >= k).sum()) for k in range(len(STAGES))]
        rows.append(
            {
                "source": name,
                **dict(
                    zip(
                        ("leads", "contacted", "qualified", "opportunities", "won"),
                        counts,
                        strict=True,
                    )
                ),
            }
        )
    frame = pd.DataFrame(rows).set_index("source")
    steps = ("leads", "contacted", "qualified", "opportunities", "won")
    for a, b in pairwise(steps):
        frame[f"{a}_to_{b}"] = _ratio(frame[b], frame[a])
    frame["lead_to_won"] = _ratio(frame["won"], frame["leads"])
    return frame


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def costs_by_source(records: Records, scenario: Scenario) -> pd.DataFrame:
    """Costs, customers, CPL and CAC by source.

    Marketing and nurture costs belong to a source directly; sales labour and hiring
    are attributed by the share of rep time spent on the source's leads.
    """
    lead_mask, day_mask, weeks = _window(records, scenario)
    leads = records.leads
    src = leads["source"][lead_mask]
    busy = records.busy_hours_by_source
    n_src = len(records.source_names)
    if busy.sum() > 0:
        share = busy / busy.sum()
    else:
        counts = np.bincount(src, minlength=n_src).astype(float)
        share = counts / counts.sum() if counts.sum() > 0 else np.full(n_src, 1.0 / n_src)
    sales_total = float(records.rep_days["hours_paid"][day_mask].sum()) * (
        scenario.team.loaded_cost_per_hour_usd
    )
    warmup_h = scenario.run.warmup_days * 24.0
    hires = int((records.hire_hours >= warmup_h).sum())
    hiring_total = hires * scenario.team.hiring_cost_usd
    rows = []
    for code, source in enumerate(scenario.sources):
        mine = src == code
        n_leads = int(mine.sum())
        marketing = n_leads * source.effective_cost_per_lead_usd + (
            source.fixed_cost_per_week_usd * weeks
        )
        nurtured = int(leads["nurtured"][lead_mask][mine].sum())
        nurture = nurtured * scenario.process.nurture.cost_per_lead_usd
        won = leads["final_state"][lead_mask][mine] == FINAL_STATES.index("won")
        customers = int(won.sum())
        revenue = float(leads["revenue_usd"][lead_mask][mine].sum())
        sales = sales_total * float(share[code])
        hiring = hiring_total * float(share[code])
        total = marketing + sales + nurture + hiring
        rows.append(
            {
                "source": source.name,
                "leads": n_leads,
                "customers": customers,
                "revenue": revenue,
                "marketing_spend": marketing,
                "sales_cost": sales,
                "nurture_cost": nurture,
                "hiring_cost": hiring,
                "total_cost": total,
                "cpl": ratio(marketing, n_leads),
                "cac": ratio(total, customers),
                "rep_time_share": float(share[code]),
            }
        )
    return pd.DataFrame(rows).set_index("source")


def kpis(records: Records, scenario: Scenario) -> dict[str, float]:
    """The headline KPIs of one run, as floats, named as in :data:`KPI_DOCS`."""
    lead_mask, day_mask, _ = _window(records, scenario)
    leads = records.leads
    stage = leads["furthest_stage"][lead_mask]
    final = leads["final_state"][lead_mask]
    n = int(lead_mask.sum())
    costs = costs_by_source(records, scenario)
    customers = int((final == FINAL_STATES.index("won")).sum())
    marketing = float(costs["marketing_spend"].sum())
    sales = float(costs["sales_cost"].sum())
    nurture = float(costs["nurture_cost"].sum())
    hiring = float(costs["hiring_cost"].sum())
    total = marketing + sales + nurture + hiring
    revenue = float(leads["revenue_usd"][lead_mask].sum())
    delays = leads["first_response_hours"][lead_mask]
    delays = delays[np.isfinite(delays)]
    paid = float(records.rep_days["hours_paid"][day_mask].sum())
    busy = float(records.rep_days["hours_busy"][day_mask].sum())
    fatigue = records.rep_days["fatigue"][day_mask]
    warmup_h = scenario.run.warmup_days * 24.0
    out = {
        "leads": float(n),
        "contacted": float((stage >= 1).sum()),
        "qualified": float((stage >= 2).sum()),
        "opportunities": float((stage >= 3).sum()),
        "customers": float(customers),
        "revenue": revenue,
        "marketing_spend": marketing,
        "sales_cost": sales,
        "nurture_cost": nurture,
        "hiring_cost": hiring,
        "total_cost": total,
        "cpl": ratio(marketing, n),
        "cac": ratio(total, customers),
        "conversion_rate": ratio(customers, n),
        "contact_rate": ratio(float((stage >= 1).sum()), n),
        "return_on_spend": ratio(revenue, total),
        "median_response_hours": float(np.median(delays)) if len(delays) else math.nan,
        "p90_response_hours": float(np.quantile(delays, 0.9)) if len(delays) else math.nan,
        "stale_share": _share(final == FINAL_STATES.index("stale"), n),
        "unworked_share": _share(final == FINAL_STATES.index("unworked"), n),
        "nurtured_share": _share(leads["nurtured"][lead_mask], n),
        "rep_utilization": ratio(busy, paid),
        "burnout_index": float(fatigue.mean()) if len(fatigue) else math.nan,
        "reps_quit": float(records.rep_days["quit"][day_mask].sum()),
        "hires": float((records.hire_hours >= warmup_h).sum()),
        "backlog_end": float(records.backlog_end),
    }
    assert tuple(out) == KPI_NAMES
    return out


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when there is nothing to divide by."""
    return numerator / denominator if denominator > 0 else math.nan


def _share(mask: np.ndarray, n: int) -> float:
    return ratio(float(np.count_nonzero(mask)), n)

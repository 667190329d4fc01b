"""KPIs and tidy tables: pure functions of a run's records and its scenario.

Two ways to count, chosen by ``run.accounting``:

- **cohort** (the default): the leads that arrived between the warm-up and the
  horizon, each followed until it is won, lost, stale or out of nurture (the run goes
  on past the horizon with arrivals stopped, for at most ``run.drain_days``). A deal
  that closes after the horizon counts, and so does a nurtured lead that comes back.
- **window**: what happened to those leads by the horizon; deals still open and
  leads still in nurture at the horizon count as neither won nor lost.

Costs are those of the window in both (marketing for the window's leads; rep, nurture
and hiring costs from the warm-up to the horizon). In a steady state the work a
cohort needs after the horizon matches the work done in the window on earlier leads,
so cohort CAC is the window's cost over the customers its leads bring.
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
    "customers": "leads won (count)",
    "revenue": "first-deal value of the customers (USD)",
    "lifetime_revenue": "customers' expected revenue over run.value_horizon_years (USD)",
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
    "ltv": "mean customer lifetime value: monthly gross margin / monthly churn (USD)",
    "ltv_to_cac": "ltv / cac (ratio; healthy at 3 or more)",
    "cac_payback_months": "cac / a customer's monthly gross margin (months; healthy under 12)",
    "profit": "gross margin on lifetime_revenue minus total_cost (USD)",
    "median_response_hours": "median delay from arrival to first attempt (hours)",
    "p90_response_hours": "90th percentile of that delay (hours; both leave out leads routed "
    "to nurture)",
    "stale_share": "leads whose patience ran out before a first attempt (share of leads)",
    "unworked_share": "leads still waiting, never attempted, at the end (share)",
    "unresolved_share": "leads still in nurture, in progress or unworked at the end (share)",
    "nurtured_share": "leads that entered nurture (share)",
    "rep_utilization": "busy hours / selling hours over the team (share, at most 1)",
    "burnout_index": "mean fatigue of employed reps over the window's days (0 to 1)",
    "reps_quit": "reps who quit in the window (count)",
    "hires": "replacement reps who started in the window (count)",
    "backlog_end": "leads waiting in the queue or between attempts at the horizon (count)",
}

KPI_NAMES = tuple(KPI_DOCS)

#: KPIs where more is better; for every other KPI less is better (costs, times, burnout).
HIGHER_IS_BETTER = frozenset(
    {
        "leads",
        "contacted",
        "qualified",
        "opportunities",
        "customers",
        "revenue",
        "lifetime_revenue",
        "conversion_rate",
        "contact_rate",
        "return_on_spend",
        "ltv",
        "ltv_to_cac",
        "profit",
    }
)


#: KPIs that can be negative; every other KPI is at least 0.
SIGNED_KPIS = frozenset({"profit"})
#: KPIs that are at most 1 besides the shares: rates, utilisation and the burnout index.
AT_MOST_ONE = frozenset({"conversion_rate", "contact_rate", "rep_utilization", "burnout_index"})


def kpi_bounds(kpi: str) -> tuple[float, float]:
    """The lowest and highest values a KPI can take.

    ``(0, 1)`` for shares, rates and the burnout index, ``(0, inf)`` for counts, costs
    and times, and no bound for profit.
    """
    low = -math.inf if kpi in SIGNED_KPIS else 0.0
    high = 1.0 if kpi in AT_MOST_ONE or kpi.endswith("_share") else math.inf
    return low, high


def higher_is_better(kpi: str) -> bool:
    """True when a larger value of ``kpi`` is the better one."""
    return kpi in HIGHER_IS_BETTER


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
    """One row per rep per day employed, up to the horizon; utilisation of selling hours."""
    frame = pd.DataFrame(records.rep_days)
    frame = frame[frame["day"] * 24.0 < records.horizon_hours].reset_index(drop=True)
    selling = frame["hours_selling"].to_numpy()
    busy = frame["hours_busy"].to_numpy()
    frame["utilization"] = np.divide(busy, selling, out=np.zeros_like(busy), where=selling > 0)
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
            hours_selling=("hours_selling", "sum"),
            hours_busy=("hours_busy", "sum"),
            fatigue=("fatigue", "last"),
            quit=("quit", "any"),
        )
        .reset_index()
    )
    selling = weeks["hours_selling"].to_numpy()
    busy = weeks["hours_busy"].to_numpy()
    weeks["utilization"] = np.divide(busy, selling, out=np.zeros_like(busy), where=selling > 0)
    weeks["active"] = ~weeks["quit"]
    return weeks[
        ["week", "rep", "hours_paid", "hours_busy", "utilization", "fatigue", "active", "quit"]
    ]


def _window(records: Records, scenario: Scenario) -> tuple[np.ndarray, np.ndarray, float]:
    warmup_h = scenario.run.warmup_days * 24.0
    lead_mask = records.leads["arrival_hours"] >= warmup_h
    day_start = records.rep_days["day"] * 24.0
    day_mask = (day_start >= warmup_h) & (day_start < records.horizon_hours)
    weeks = (records.horizon_hours - warmup_h) / 168.0
    return lead_mask, day_mask, weeks


Accounting = str  # "cohort" or "window"


def _outcomes(
    records: Records, scenario: Scenario, accounting: Accounting | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Furthest stage, final state and whether won, per lead, under ``accounting``."""
    how = accounting or scenario.run.accounting
    if how not in ("cohort", "window"):
        raise ValueError(f"accounting must be 'cohort' or 'window', got {how!r}")
    leads = records.leads
    if how == "cohort":
        stage, state = leads["cohort_stage"], leads["cohort_state"]
    else:
        stage, state = leads["furthest_stage"], leads["final_state"]
    return stage, state, state == FINAL_STATES.index("won")


def customer_value(records: Records, scenario: Scenario, won: np.ndarray) -> dict[str, np.ndarray]:
    """Per won lead: monthly revenue, gross margin, churn, LTV and value-horizon revenue.

    A customer pays its first deal over its first year (monthly revenue = deal / 12)
    and keeps paying while it stays; it leaves each month with its source's
    ``monthly_churn``. LTV = monthly revenue x gross margin / monthly churn
    (docs/assumptions.md#customer-value); revenue over H years = monthly revenue x sum
    over 12 H months of the share still there.
    """
    src = records.leads["source"][won]
    churn = np.array([s.monthly_churn for s in scenario.sources])[src]
    margin = np.array([s.gross_margin for s in scenario.sources])[src]
    mrr = records.leads["revenue_usd"][won] / 12.0
    months = 12.0 * scenario.run.value_horizon_years
    kept = -np.expm1(months * np.log1p(-np.minimum(churn, 1.0 - 1e-12))) / churn
    return {
        "mrr": mrr,
        "margin": margin,
        "ltv": mrr * margin / churn,
        "horizon_revenue": mrr * kept,
    }


def funnel_by_source(
    records: Records, scenario: Scenario, accounting: Accounting | None = None
) -> pd.DataFrame:
    """Leads, contacted, qualified, opportunities and won by source, with the rates between."""
    lead_mask, _, _ = _window(records, scenario)
    src = records.leads["source"][lead_mask]
    stage = _outcomes(records, scenario, accounting)[0][lead_mask]
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


def costs_by_source(
    records: Records, scenario: Scenario, accounting: Accounting | None = None
) -> pd.DataFrame:
    """Costs, customers, CPL, CAC and customer value by source.

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
    won_all = _outcomes(records, scenario, accounting)[2] & lead_mask
    value = customer_value(records, scenario, won_all)
    won_src = leads["source"][won_all]
    rows = []
    for code, source in enumerate(scenario.sources):
        mine = src == code
        n_leads = int(mine.sum())
        marketing = n_leads * source.effective_cost_per_lead_usd + (
            source.fixed_cost_per_week_usd * weeks
        )
        nurtured = int(leads["nurtured"][lead_mask][mine].sum())
        nurture = nurtured * scenario.process.nurture.cost_per_lead_usd
        theirs = won_src == code
        customers = int(theirs.sum())
        revenue = float(leads["revenue_usd"][won_all][theirs].sum())
        ltv = float(value["ltv"][theirs].mean()) if customers else math.nan
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
                "ltv": ltv,
                "ltv_to_cac": ratio(ltv, ratio(total, customers)),
                "rep_time_share": float(share[code]),
            }
        )
    return pd.DataFrame(rows).set_index("source")


def kpis(
    records: Records, scenario: Scenario, accounting: Accounting | None = None
) -> dict[str, float]:
    """The headline KPIs of one run, as floats, named as in :data:`KPI_DOCS`.

    ``accounting`` is ``"cohort"`` or ``"window"``; default: the scenario's.
    """
    lead_mask, day_mask, _ = _window(records, scenario)
    leads = records.leads
    stage_all, state_all, won_all = _outcomes(records, scenario, accounting)
    stage, final = stage_all[lead_mask], state_all[lead_mask]
    n = int(lead_mask.sum())
    costs = costs_by_source(records, scenario, accounting)
    won = won_all & lead_mask
    customers = int(won.sum())
    marketing = float(costs["marketing_spend"].sum())
    sales = float(costs["sales_cost"].sum())
    nurture = float(costs["nurture_cost"].sum())
    hiring = float(costs["hiring_cost"].sum())
    total = marketing + sales + nurture + hiring
    revenue = float(leads["revenue_usd"][won].sum())
    value = customer_value(records, scenario, won)
    lifetime_revenue = float(value["horizon_revenue"].sum())
    ltv = float(value["ltv"].mean()) if customers else math.nan
    cac = ratio(total, customers)
    monthly_margin = float((value["mrr"] * value["margin"]).mean()) if customers else math.nan
    answered = lead_mask & ~leads["routed_to_nurture"]
    delays = leads["first_response_hours"][answered]
    delays = delays[np.isfinite(delays)]
    selling = float(records.rep_days["hours_selling"][day_mask].sum())
    busy = float(records.rep_days["hours_busy"][day_mask].sum())
    fatigue = records.rep_days["fatigue"][day_mask]
    warmup_h = scenario.run.warmup_days * 24.0
    hired = (records.hire_hours >= warmup_h) & (records.hire_hours < records.horizon_hours)
    unresolved = np.isin(
        final,
        [FINAL_STATES.index(s) for s in ("nurturing", "in_progress", "unworked")],
    )
    out = {
        "leads": float(n),
        "contacted": float((stage >= 1).sum()),
        "qualified": float((stage >= 2).sum()),
        "opportunities": float((stage >= 3).sum()),
        "customers": float(customers),
        "revenue": revenue,
        "lifetime_revenue": lifetime_revenue,
        "marketing_spend": marketing,
        "sales_cost": sales,
        "nurture_cost": nurture,
        "hiring_cost": hiring,
        "total_cost": total,
        "cpl": ratio(marketing, n),
        "cac": cac,
        "conversion_rate": ratio(customers, n),
        "contact_rate": ratio(float((stage >= 1).sum()), n),
        "return_on_spend": ratio(revenue, total),
        "ltv": ltv,
        "ltv_to_cac": ratio(ltv, cac) if math.isfinite(cac) else math.nan,
        "cac_payback_months": ratio(cac, monthly_margin) if customers else math.nan,
        "profit": float((value["horizon_revenue"] * value["margin"]).sum()) - total,
        "median_response_hours": float(np.median(delays)) if len(delays) else math.nan,
        "p90_response_hours": float(np.quantile(delays, 0.9)) if len(delays) else math.nan,
        "stale_share": _share(final == FINAL_STATES.index("stale"), n),
        "unworked_share": _share(final == FINAL_STATES.index("unworked"), n),
        "unresolved_share": _share(unresolved, n),
        "nurtured_share": _share(leads["nurtured"][lead_mask], n),
        "rep_utilization": ratio(busy, selling),
        "burnout_index": float(fatigue.mean()) if len(fatigue) else math.nan,
        "reps_quit": float(records.rep_days["quit"][day_mask].sum()),
        "hires": float(hired.sum()),
        "backlog_end": float(records.backlog_end),
    }
    assert tuple(out) == KPI_NAMES
    return out


def contact_attempts(
    records: Records, scenario: Scenario, accounting: Accounting | None = None
) -> pd.DataFrame:
    """How converting leads were reached: by the attempt of first contact.

    One row per attempt number: won leads first reached on it, their share, and the
    cumulative share (docs/assumptions.md#attempts-and-capacity: ~48% on the 1st, 93% by the 6th).
    """
    lead_mask, _, _ = _window(records, scenario)
    won = _outcomes(records, scenario, accounting)[2] & lead_mask
    first = records.leads["contact_attempt"][won].astype(int)
    counts = np.bincount(first, minlength=2)[1:]
    frame = pd.DataFrame(
        {"attempt": np.arange(1, len(counts) + 1), "won_leads": counts.astype(int)}
    ).set_index("attempt")
    total = max(int(counts.sum()), 1)
    frame["share"] = frame["won_leads"] / total
    frame["cumulative_share"] = frame["share"].cumsum()
    return frame


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when there is nothing to divide by."""
    return numerator / denominator if denominator > 0 else math.nan


def _share(mask: np.ndarray, n: int) -> float:
    return ratio(float(np.count_nonzero(mask)), n)

"""The scenario: a validated, documented schema, its file loading and overrides.

Every quantity carries its unit in its name or description. Each default's figure and
source is in ``docs/assumptions.md``; the description beside each names its section. Unknown keys
are rejected, so that a typo never falls back silently to a default.

Time inside the model is measured in hours from midnight of ``run.start_date``.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simfunnel.errors import ScenarioError
from simfunnel.textio import InvalidDateError, TextFileError, parse_yaml, read_text, yaml_problem

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------- run


class RunSettings(_Strict):
    """How long to simulate and with which seed."""

    horizon_days: float = Field(365.0, gt=0, le=3660, description="simulated days")
    warmup_days: float = Field(
        28.0, ge=0, description="days at the start excluded from every KPI (the queue fills up)"
    )
    seed: int = Field(20261122, ge=0, description="seed of the root numpy SeedSequence")
    start_date: date = Field(
        date(2026, 1, 5), description="calendar date of hour 0 (sets weekdays and bursts)"
    )
    accounting: Literal["cohort", "window"] = Field(
        "cohort",
        description="cohort: the leads that arrived in the window, followed after the horizon "
        "(arrivals stopped) until each is won, lost or leaves nurture; window: what happened "
        "between the warm-up and the horizon only",
    )
    drain_days: float = Field(
        365.0,
        ge=0,
        le=3660,
        description="with cohort accounting: the longest the run goes on after the horizon "
        "to resolve the cohort; leads still unresolved then count as not won",
    )
    value_horizon_years: float = Field(
        3.0, gt=0, le=50, description="customer years counted in lifetime_revenue and profit"
    )

    @model_validator(mode="after")
    def _warmup_inside_horizon(self) -> RunSettings:
        if self.warmup_days >= self.horizon_days:
            raise ValueError(
                f"warmup_days must be < horizon_days ({self.horizon_days:g}), "
                f"got {self.warmup_days:g}"
            )
        return self


# ----------------------------------------------------------------------- sources


class QualityMix(_Strict):
    """Shares of a source's leads by readiness at capture; they must add up to 1.

    Default: 27% ready, 49% not yet ready, 24% unqualified (Gartner / MarketingSherpa,
    docs/assumptions.md#readiness-and-nurture).
    """

    ready: Share = Field(0.27, description="share of leads sales-ready at capture")
    not_ready: Share = Field(0.49, description="share of leads not yet ready (nurture candidates)")
    unqualified: Share = Field(0.24, description="share of leads that will never buy")

    @model_validator(mode="after")
    def _adds_up(self) -> QualityMix:
        total = self.ready + self.not_ready + self.unqualified
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"ready + not_ready + unqualified must be 1, got {total:g}")
        return self


class FitDistribution(_Strict):
    """Beta distribution of a lead's fit in [0, 1].

    Fit multiplies the qualification probability by ``fit / 0.5`` (capped at
    probability 1), so a source whose mean fit is 0.5 qualifies at the base rate.
    """

    alpha: float = Field(
        2.0, gt=0, le=1000, description="Beta shape alpha; mean fit alpha / (alpha + beta)"
    )
    beta: float = Field(2.0, gt=0, le=1000, description="Beta shape beta")


class DealSize(_Strict):
    """Lognormal deal value of a won lead, given by its mean and log-spread."""

    mean_usd: float = Field(12_000.0, gt=0, le=1e9, description="mean deal value, USD")
    sigma: float = Field(0.6, ge=0, le=5, description="standard deviation of log(deal value)")


class Burst(_Strict):
    """A dated campaign, from start to end: a multiplier, extra leads, or both.

    The source's volume is multiplied by ``multiplier``, and ``extra_leads_per_week``
    more leads a week arrive on top.

    A multiplier scales the source's own volume (and its trend); extra leads are the
    campaign's own, so that a source seen only in campaigns (a trade show, a list
    bought once) keeps its leads however small its volume between them. Give either
    or both.
    """

    start: date = Field(description="first day of the burst")
    end: date = Field(description="last day of the burst, inclusive")
    multiplier: float = Field(
        1.0, ge=0, le=100, description="the source's volume times this (0: a pause)"
    )
    extra_leads_per_week: float = Field(
        0.0,
        ge=0,
        le=1e6,
        description="leads a week the campaign brings on top of the source's volume "
        "(with the source's day and hour profiles)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Burst:
        if self.end < self.start:
            raise ValueError(f"end must not be before start ({self.start}), got {self.end}")
        if "multiplier" not in self.model_fields_set and (
            "extra_leads_per_week" not in self.model_fields_set
        ):
            raise ValueError("give multiplier or extra_leads_per_week (or both)")
        return self


class Source(_Strict):
    """A lead source: its volume, cost, quality and seasonality.

    Volume is given either as ``leads_per_week`` at ``cost_per_lead_usd``, or as a
    ``budget_per_week_usd`` that buys leads at CPL = CPL0 * (B / B0) ** eta, where
    CPL0 is ``cost_per_lead_usd`` at the reference budget B0 (docs/assumptions.md#cost-per-lead,
    "diminishing returns of spend").
    """

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="letters, digits, _ and -; how reports and overrides name the source",
    )
    description: str = Field("", description="one line for people")
    leads_per_week: float | None = Field(
        None, ge=0, le=1e6, description="expected leads a week (or give budget_per_week_usd)"
    )
    budget_per_week_usd: float | None = Field(
        None,
        ge=0,
        le=1e9,
        description="USD a week that buy leads at the CPL (or give leads_per_week)",
    )
    cost_per_lead_usd: float = Field(gt=0, le=1e6, description="CPL0, USD per lead")
    reference_budget_per_week_usd: float | None = Field(
        None,
        gt=0,
        le=1e9,
        description="B0, USD per week; default: the budget written in the scenario file, "
        "fixed there, so that an override or a sweep of the budget moves the CPL",
    )
    cpl_elasticity: float = Field(
        0.3, ge=0, le=2, description="eta; docs/assumptions.md#cost-per-lead gives 0.2-0.5"
    )
    fixed_cost_per_week_usd: float = Field(
        0.0,
        ge=0,
        le=1e9,
        description="USD a week that do not scale with leads (a tool, a retainer)",
    )
    day_of_week_profile: tuple[float, ...] | None = Field(
        None, description="7 relative weights, Monday first; normalised to mean 1"
    )
    hour_of_day_profile: tuple[float, ...] | None = Field(
        None, description="24 relative weights, midnight first; normalised to mean 1"
    )
    trend_per_year: float = Field(
        0.0,
        gt=-1,
        le=100,
        description="growth of the volume a year: on trend_reference the source brings "
        "leads_per_week, a year later (1 + trend_per_year) times as many, and as many "
        "less a year before (an exponential trend; 2 is 3x a year, -0.5 halves it, 0 "
        "is flat); bursts multiply the trended volume",
    )
    trend_reference: date | None = Field(
        None,
        description="the day whose volume is leads_per_week, the trend running from it "
        "forward and back; default: run.start_date",
    )
    bursts: tuple[Burst, ...] = ()
    quality: QualityMix = QualityMix()
    fit: FitDistribution = FitDistribution()
    deal_size: DealSize = DealSize()
    entry_stage: Literal["lead", "qualified", "opportunity"] = Field(
        "lead",
        description="the stage this source's rows enter the funnel at: 'lead' (the team "
        "calls them), 'qualified' (already qualified: the opportunity chance is drawn at "
        "arrival) or 'opportunity' (already an open deal, closing with the win "
        "probability); entries past 'lead' skip the team's calls",
    )
    opportunity_probability: Probability | None = Field(
        None, description="qualified -> opportunity for this source; default: the process's"
    )
    win_probability: Probability | None = Field(
        None, description="opportunity -> won for this source; default: the process's"
    )
    days_to_close: float | None = Field(
        None,
        ge=0,
        le=3650,
        description="mean days from qualification to close for this source; default: the "
        "process's (docs/assumptions.md#conversion-by-source: referral and inbound close faster)",
    )
    monthly_churn: float = Field(
        0.02,
        gt=0,
        le=1,
        description="share of this source's customers lost each month "
        "(docs/assumptions.md#customer-value: SMB 3-7%, mid-market 1-2%)",
    )
    gross_margin: Share = Field(
        0.75,
        description="gross margin, as a share of revenue "
        "(docs/assumptions.md#customer-value: 70-80% in SaaS)",
    )

    @model_validator(mode="before")
    @classmethod
    def _fix_reference_budget(cls, data: Any) -> Any:
        return fix_reference_budget(data)

    @model_validator(mode="after")
    def _volume_and_profiles(self) -> Source:
        if (self.leads_per_week is None) == (self.budget_per_week_usd is None):
            raise ValueError("give exactly one of leads_per_week and budget_per_week_usd")
        for field, n in (("day_of_week_profile", 7), ("hour_of_day_profile", 24)):
            prof = getattr(self, field)
            if prof is None:
                continue
            if len(prof) != n:
                raise ValueError(f"{field} must have {n} weights, got {len(prof)}")
            if min(prof) < 0 or sum(prof) <= 0:
                raise ValueError(f"{field} weights must be >= 0 with a positive sum")
        return self

    @property
    def effective_cost_per_lead_usd(self) -> float:
        """CPL actually paid, after diminishing returns of budget."""
        if self.budget_per_week_usd is None or self.budget_per_week_usd == 0:
            return self.cost_per_lead_usd
        b0 = self.reference_budget_per_week_usd or self.budget_per_week_usd
        return self.cost_per_lead_usd * (self.budget_per_week_usd / b0) ** self.cpl_elasticity

    @property
    def effective_leads_per_week(self) -> float:
        """Expected leads a week, from the volume or the budget."""
        if self.leads_per_week is not None:
            return self.leads_per_week
        budget = self.budget_per_week_usd
        assert budget is not None
        if budget == 0:
            return 0.0
        # B / (CPL0 (B/B0)^eta), in logs so that a tiny budget cannot underflow the CPL
        b0 = self.reference_budget_per_week_usd or budget
        eta = self.cpl_elasticity
        return math.exp(
            (1 - eta) * math.log(budget) + eta * math.log(b0) - math.log(self.cost_per_lead_usd)
        )


# -------------------------------------------------------------------------- team


class Team(_Strict):
    """The sales team: size, hours, cost and how it works a lead.

    Capacity is counted once. A rep has ``selling_hours_per_day`` for leads (by default
    the shift times ``selling_share``); every dial and conversation is spent from those
    hours at its face value. A rep takes the next lead while the task fits in what is
    left of the day's selling hours and of the shift, and otherwise stops selling until
    the next shift (the rest of the day goes to meetings, admin and the like). Work
    never runs past the end of a shift, so utilisation is at most 1 by construction.
    """

    reps: int = Field(8, ge=1, le=10_000, description="reps working leads (at the start)")
    working_days: tuple[Weekday, ...] = Field(
        ("mon", "tue", "wed", "thu", "fri"), min_length=1, description="days the team works"
    )
    shift_start_hour: float = Field(9.0, ge=0, lt=24, description="hour of day a shift starts")
    shift_hours: float = Field(
        8.0,
        gt=0,
        le=24,
        description="paid hours a working day; 24 with all 7 days is round the clock",
    )
    selling_share: Share = Field(
        0.45,
        gt=0,
        description="share of the shift a rep has for working leads (dials and "
        "conversations); docs/assumptions.md#attempts-and-capacity: ~60 dials at 3-4 minutes is "
        "3-4 hours of an 8-hour day",
    )
    selling_hours_per_day: float | None = Field(
        None,
        gt=0,
        le=24,
        description="hours a rep has for leads on a working day; default: shift_hours x "
        "selling_share; at most shift_hours",
    )
    loaded_cost_per_hour_usd: float = Field(
        60.0,
        ge=0,
        le=1e5,
        description="USD a paid hour of a rep, fully loaded (salary, commission, benefits, tools)",
    )
    minutes_per_attempt: float = Field(
        3.0,
        gt=0,
        le=10_000,
        description="a dial; docs/assumptions.md#attempts-and-capacity: 3-4 minutes",
    )
    minutes_per_conversation: float = Field(
        10.0,
        ge=0,
        le=10_000,
        description="added when contact is made (0 switches conversation time off); "
        "docs/assumptions.md#attempts-and-capacity: 10-15 minutes",
    )
    work_minutes: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="mean minutes of every attempt whatever its outcome; when set it "
        "replaces the dial and conversation minutes (a textbook queue's work time)",
    )
    work_time: Literal["fixed", "exponential"] = Field(
        "fixed", description="distribution of each task's duration around its mean"
    )
    max_attempts: int = Field(
        6,
        ge=1,
        le=100,
        description="attempts a lead gets in a cycle (1 switches repeated attempts off); "
        "docs/assumptions.md#attempts-and-capacity: 93% of converting leads reached by the 6th",
    )
    attempt_spacing_hours: float = Field(
        24.0, ge=0, le=10_000, description="hours between attempts of a cycle"
    )
    hiring_lag_days: float = Field(
        60.0, ge=0, le=3650, description="docs/assumptions.md#hiring-and-ramp: ~2 months"
    )
    ramp_days: float = Field(
        97.0, ge=0, le=3650, description="docs/assumptions.md#hiring-and-ramp: SDR ~3.2 months"
    )
    ramp_start_productivity: float = Field(
        0.25, gt=0, le=1, description="speed of a new hire relative to a ramped rep on day one"
    )
    hiring_cost_usd: float = Field(
        35_000.0, ge=0, le=1e8, description="docs/assumptions.md#hiring-and-ramp: ~$35k direct"
    )

    @model_validator(mode="after")
    def _days_and_hours(self) -> Team:
        if len(set(self.working_days)) != len(self.working_days):
            raise ValueError(f"working_days must not repeat a day, got {list(self.working_days)}")
        if self.selling_hours_per_day is not None and self.selling_hours_per_day > self.shift_hours:
            raise ValueError(
                f"selling_hours_per_day must be <= shift_hours ({self.shift_hours:g}), "
                f"got {self.selling_hours_per_day:g}"
            )
        return self

    @property
    def round_the_clock(self) -> bool:
        """True when reps are always on shift."""
        return self.shift_hours >= 24 and len(self.working_days) == 7

    @property
    def selling_hours(self) -> float:
        """Hours a rep has for leads in one shift."""
        if self.selling_hours_per_day is not None:
            return self.selling_hours_per_day
        return self.shift_hours * self.selling_share


# ----------------------------------------------------------------------- process


class Decay(_Strict):
    """Speed-to-lead decay q(d)/q(0) = phi + (1 - phi) * exp(-d / tau).

    d is the delay of the *first* response of a cycle (from arrival, or from the return
    from nurture, to the first attempt), as the studies of
    docs/assumptions.md#speed-to-lead measured it. The factor q(d) is fixed at that
    first attempt and multiplies every attempt of the cycle: a lead answered fast is
    caught while the buyer is engaged, and stays easier to reach; one answered late
    stays hard to reach, however often it is dialled. Defaults: the moderate fit of
    docs/assumptions.md#speed-to-lead (tau ~ 180 minutes, phi ~ 0.2), which was fitted
    to the contact rate by lead age; so by default it moves contact.
    ``applies_to: both`` moves qualification too (use it with the steep stress case,
    tau ~ 30 minutes and phi ~ 0.007, fitted to the study's qualification ratios).
    """

    enabled: bool = Field(True, description="false: the response delay does not matter")
    tau_minutes: float = Field(180.0, gt=0, le=1e6, description="tau, the decay's time constant")
    floor: Probability = Field(0.2, description="phi, the share of the effect that never decays")
    applies_to: Literal["contact", "qualification", "both"] = Field(
        "contact", description="which probabilities q(d) multiplies"
    )


class Patience(_Strict):
    """How long a lead waits for its first attempt before it goes stale.

    Patience is counted in the team's on-shift hours (business hours): a lead that
    arrives on Friday evening has not waited while nobody was at work. With ample
    capacity almost no lead goes stale; a team that falls behind loses leads. Round the
    clock, business hours are clock hours (the Erlang A queue).
    """

    enabled: bool = Field(True, description="false: a lead waits for its first attempt forever")
    distribution: Literal["exponential", "fixed"] = Field(
        "exponential", description="of each lead's patience around the mean"
    )
    mean_hours: float = Field(
        24.0,
        gt=0,
        le=1e6,
        description="mean patience in on-shift hours; 24 is three working days of 8 hours "
        "(HBR 2011, docs/assumptions.md#speed-to-lead: a lead's value is gone within days)",
    )


class Nurture(_Strict):
    """The nurture track for leads that are not yet ready, or that nobody reached.

    A lead enters it once: reached but not yet ready, or (with ``unreached``) not reached
    in its cycle's attempts. It comes back sales-ready after an exponential time with
    ``ready_hazard_per_month``, unless it leaks out first (``leak_hazard_per_month``);
    a lead that came back and is again not reached is lost.

    Defaults: ~72% become ready within 6-11 months, a hazard of ~0.15 a month
    (docs/assumptions.md#readiness-and-nurture).
    """

    enabled: bool = Field(True, description="false: leads not yet ready are lost")
    unreached: bool = Field(
        False,
        description="leads the team could not reach in max_attempts go to nurture too (the "
        "marketing-automation track keeps every lead that sales did not take), once",
    )
    ready_hazard_per_month: float = Field(
        0.15, ge=0, le=100, description="rate a month at which a nurtured lead becomes ready"
    )
    leak_hazard_per_month: float = Field(
        0.05, ge=0, le=100, description="rate a month at which a nurtured lead drifts away"
    )
    cost_per_lead_usd: float = Field(
        15.0, ge=0, le=1e6, description="one-off, per lead entering nurture"
    )


class Routing(_Strict):
    """Which waiting lead a free rep takes next."""

    policy: Literal["fifo", "newest_first", "score"] = Field(
        "fifo", description="oldest waiting lead first, newest first, or best score first"
    )
    score_auc: float = Field(
        0.8,
        gt=0.5,
        lt=1.0,
        description="AUC of the lead score (docs/assumptions.md#lead-scoring: 0.75-0.85)",
    )
    nurture_below_score: float | None = Field(
        None, ge=0, le=1, description="with policy score: leads scoring below go to nurture"
    )


class StageRates(_Strict):
    """Qualification probability given contact, by readiness (before fit and decay)."""

    ready: Probability = Field(
        1.0,
        description="probability that a rep who reaches a sales-ready lead accepts it as "
        "qualified (before fit); set with the per-source rates so that lead->opportunity "
        "matches docs/assumptions.md#conversion-by-source",
    )
    not_ready: Probability = Field(
        0.0, description="probability; not-ready leads go to nurture instead"
    )
    unqualified: Probability = Field(0.0, description="probability for an unqualified lead")


class Process(_Strict):
    """Conversion probabilities at each stage, decay, patience, nurture and routing."""

    contact_probability: Probability = Field(
        0.45,
        description="first attempt of a cycle, at zero delay; "
        "docs/assumptions.md#speed-to-lead: contact 35-55% in real time",
    )
    retry_contact_probability: Probability = Field(
        0.22,
        description="each later attempt of a cycle, at zero first-response delay; with "
        "contact_probability it gives docs/assumptions.md#attempts-and-capacity: ~10% a "
        "dial, 4-6 attempts reaching ~55%, about half of converting leads reached on the "
        "first attempt",
    )
    qualification: StageRates = StageRates()
    opportunity_probability: Probability = Field(
        0.6,
        description="qualified -> opportunity; docs/assumptions.md#conversion-by-source: 30-75%",
    )
    win_probability: Probability = Field(
        0.3, description="opportunity -> won; docs/assumptions.md#conversion-by-source: 15-35%"
    )
    days_to_close: float = Field(
        45.0, ge=0, le=3650, description="mean days from qualification to close (exponential)"
    )
    decay: Decay = Decay()
    patience: Patience = Patience()
    nurture: Nurture = Nurture()
    routing: Routing = Routing()

    @model_validator(mode="after")
    def _routing_needs_nurture(self) -> Process:
        if self.routing.nurture_below_score is not None:
            if self.routing.policy != "score":
                raise ValueError("routing.nurture_below_score needs routing.policy 'score'")
            if not self.nurture.enabled:
                raise ValueError("routing.nurture_below_score needs nurture.enabled true")
        return self


# ----------------------------------------------------------------------- burnout


class Burnout(_Strict):
    """Fatigue, quitting, hiring and ramp (docs/assumptions.md#burnout-and-turnover).

    Each rep has a fatigue level F in [0, 1]. At the end of each day it rises with
    utilisation (busy hours over selling hours) above ``utilization_threshold`` and with
    fruitless work (the share of attempts that reach nobody above
    ``futility_threshold``, counted only as far as utilisation is above
    ``futility_min_utilization``, so an idle team does not burn out), and recovers with time
    constant ``recovery_days``: dF = rise * excess - F / recovery_days a day, so a
    rep at or below the threshold recovers, and sustained overload settles at a level
    set by how far above the threshold the rep works. F slows the rep
    down and lowers conversion; the daily hazard of quitting is
    h = h0 * exp(k * F) with h0 set for ``annual_turnover``.
    """

    enabled: bool = Field(True, description="false: reps never tire and never quit")
    utilization_threshold: Share = Field(
        0.85, description="u*, docs/assumptions.md#burnout-and-turnover occupancy"
    )
    rise_per_day: float = Field(0.04, ge=0, le=1, description="fatigue gained a day at full load")
    futility_threshold: Share = Field(
        0.8, description="share of attempts that reach nobody above which fruitless work tires"
    )
    futility_rise_per_day: float = Field(
        0.02, ge=0, le=1, description="fatigue gained a day at full futility"
    )
    futility_min_utilization: Share = Field(
        0.5,
        description="fruitless work wears a rep down only when there is enough of it: the "
        "futility term is scaled by how far utilisation is above this share",
    )
    recovery_days: float = Field(21.0, gt=0, le=3650, description="a few weeks")
    slowdown_at_full_fatigue: float = Field(
        0.5, ge=0, le=10, description="task time x (1 + this * F)"
    )
    conversion_loss_at_full_fatigue: Share = Field(
        0.3, description="probabilities x (1 - this * F)"
    )
    annual_turnover: float = Field(
        0.30,
        ge=0,
        lt=1,
        description="at F = 0; docs/assumptions.md#burnout-and-turnover: SDRs 30-34%",
    )
    quit_fatigue_k: float = Field(
        math.log(2),
        ge=0,
        le=20,
        description="k in h0 * exp(k * F); docs/assumptions.md#burnout-and-turnover: ~ln 2",
    )


# -------------------------------------------------------------------- provenance

#: Where a value came from: ``file`` (the user wrote it), ``data`` (calibrate estimated
#: it), ``fit`` (calibrate fitted it by simulation), ``default`` (the schema filled it in,
#: or calibrate wrote it without data).
Origin = Literal["file", "data", "fit", "default"]
ORIGINS: tuple[str, ...] = get_args(Origin)


class FieldProvenance(_Strict):
    """Where one field's value came from: an entry of a scenario's ``provenance:`` block."""

    origin: Origin = Field(description="file, data, fit or default")
    interval: tuple[float, float] | None = Field(
        None, description="95% interval of an estimate or a fit (low, high)"
    )
    source: str | None = Field(
        None,
        description="what the value rests on: the rows and method of an estimate, or the "
        "section of docs/assumptions.md of a default",
    )


# ---------------------------------------------------------------------- scenario


class Scenario(_Strict):
    """A complete funnel scenario."""

    name: str = Field(
        "scenario", min_length=1, max_length=64, description="how reports name the scenario"
    )
    description: str = Field("", description="one line for people")
    run: RunSettings = RunSettings()
    sources: tuple[Source, ...] = Field(min_length=1)
    team: Team = Team()
    process: Process = Process()
    burnout: Burnout = Burnout()
    provenance: dict[str, FieldProvenance] = Field(
        default_factory=dict,
        description="where each value came from, by dotted field path (sources by name): "
        "what simfunnel calibrate writes; a field it does not list counts as the file's "
        "when the file sets it and as a default otherwise (simfunnel explain)",
    )

    @model_validator(mode="after")
    def _unique_source_names(self) -> Scenario:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _provenance_names_fields(self) -> Scenario:
        if not self.provenance:
            return self
        known = set(leaf_paths(self.model_dump(mode="json", exclude={"provenance"})))
        for path in self.provenance:
            if path not in known and not any(k.startswith(f"{path}.") for k in known):
                hint = did_you_mean(path, known)
                raise ValueError(
                    f"provenance: {path!r} is not a field of the scenario"
                    + (f" ({hint})" if hint else "")
                )
        return self

    @property
    def source_names(self) -> list[str]:
        """Names of the sources, in file order."""
        return [s.name for s in self.sources]

    def day_offset(self, day: date) -> float:
        """Hours from the start of the run to midnight of ``day``."""
        return (day - self.run.start_date) / timedelta(hours=1)

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """Return a new, validated scenario with dotted-path overrides applied."""
        raw = self.model_dump(mode="json", exclude_unset=False)
        return scenario_from_dict(apply_overrides(raw, overrides))


def leaf_paths(data: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of a raw scenario by dotted path; sources (and named items) by name.

    A list of unnamed items (``bursts``, a profile) is one leaf.
    ``leaf_paths({"team": {"reps": 8}})`` is ``{"team.reps": 8}``.
    """
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out |= leaf_paths(value, f"{prefix}{key}.")
    elif (
        isinstance(data, list | tuple)
        and data
        and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in data)
    ):
        for item in data:
            out |= leaf_paths(item, f"{prefix}{item['name']}.")
    elif prefix:
        out[prefix.rstrip(".")] = data
    return out


# ------------------------------------------------------------ errors and loading


def validation_problems(exc: ValidationError, root: str = "scenario") -> list[str]:
    """One readable line per problem in a pydantic error, most specific location only.

    A failing item also fails its container ("too short" once it is dropped), so a
    location is reported only when no deeper one is.
    """
    errors = exc.errors()
    locs = [tuple(e["loc"]) for e in errors]
    specific = [
        e
        for e, loc in zip(errors, locs, strict=True)
        if not any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs)
    ]
    # A value that fits no member of a union fails once per member (int, float...):
    # one line per field, naming every member it could have been.
    lines: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for err in specific:
        line = _describe(err, root)
        path = line.split(": ", 1)[0]
        tags = [p for p in err.get("loc", ()) if isinstance(p, str) and p in _UNION_MEMBERS]
        members.setdefault(path, []).extend(tags)
        if path in lines and members[path]:
            kinds = " or ".join(_UNION_WORDS.get(t, t) for t in dict.fromkeys(members[path]))
            line = f"{path}: must be {kinds}, got {_shown(err.get('input'))}"
        lines[path] = line
    return list(lines.values())


_UNION_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true/false",
    "none": "null",
    "date": "a date",
}


def _shown(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


# How pydantic names the members of a union in an error's location.
_UNION_MEMBERS = frozenset({"int", "float", "str", "bool", "none", "date"})


def _describe(err: Any, root: str = "scenario") -> str:
    """One readable line for one pydantic error."""
    loc: list[str] = []
    for part in err.get("loc", ()):
        if isinstance(part, int):
            loc.append(f"[{part}]")
        elif part.startswith(("function-", "tagged-union")) or part in _UNION_MEMBERS:
            continue
        else:
            loc.append(("." if loc else "") + part)
    path = "".join(loc) or root
    kind = err.get("type", "")
    ctx = err.get("ctx", {}) or {}
    value = err.get("input")
    shown = _shown(value)
    limits = {
        "greater_than": "> {gt}",
        "greater_than_equal": ">= {ge}",
        "less_than": "< {lt}",
        "less_than_equal": "<= {le}",
    }
    if kind in limits:
        bound = {k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()}
        return f"{path}: must be {limits[kind].format(**bound)}, got {shown}"
    if kind == "extra_forbidden":
        hint = did_you_mean(str(err["loc"][-1]), _fields_at(err.get("loc", ())))
        return f"{path}: unknown field ({hint or 'check the spelling'}), got {shown}"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "value_error":
        message = str(ctx.get("error", err.get("msg", "")))
        return f"{path}: {message}"
    if kind == "literal_error":
        return f"{path}: must be one of {ctx.get('expected', '')}, got {shown}"
    message = str(err.get("msg", "invalid")).replace("Input should be", "must be")
    return f"{path}: {message[0].lower() + message[1:]}, got {shown}"


def did_you_mean(word: str, choices: Any) -> str:
    """``"did you mean 'x'?"`` for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _fields_at(loc: Any) -> list[str]:
    """The field names allowed where a pydantic error's location ends."""
    model: type[BaseModel] | None = Scenario
    for part in tuple(loc)[:-1]:
        if isinstance(part, int) or part in _UNION_MEMBERS or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Validate a plain dict into a :class:`Scenario`.

    Raises
    ------
    ScenarioError
        With one line per invalid field.
    """
    if not isinstance(data, dict):
        raise ScenarioError([f"scenario: must be a mapping of fields, got {type(data).__name__}"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc)) from None


def _bundled_dir() -> Any:
    return resources.files("simfunnel") / "scenarios"


def bundled_scenarios() -> dict[str, str]:
    """Names of the bundled scenarios with their one-line descriptions."""
    out: dict[str, str] = {}
    for entry in sorted(_bundled_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
            out[entry.name.removesuffix(".yaml")] = str(raw.get("description", "")).strip()
    return out


def read_scenario_dict(name_or_path: str | Path) -> dict[str, Any]:
    """Read a scenario as a plain dict, from a bundled name or a YAML/JSON file."""
    text: str
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        if not path.is_file():
            raise ScenarioError([f"scenario: no such file {str(path)!r}"])
        try:
            text = read_text(path)
        except TextFileError as exc:
            raise ScenarioError([f"scenario: {str(path)!r}: {exc}"]) from None
    else:
        entry = _bundled_dir() / f"{name_or_path}.yaml"
        if not entry.is_file():
            bundled = bundled_scenarios()
            where = f"{str(name_or_path)!r} is neither a file nor a bundled scenario"
            hint = did_you_mean(str(name_or_path), bundled)
            hint = f"; {hint}" if hint else ""
            raise ScenarioError([f"scenario: {where} ({', '.join(bundled)}){hint}"])
        text = entry.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else parse_yaml(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        first = yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else str(exc)
        raise ScenarioError([f"scenario: cannot parse {str(name_or_path)!r}: {first}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"scenario: {str(name_or_path)!r} does not hold a mapping of fields"])
    return data


def load_scenario(
    name_or_path: str | Path | dict[str, Any] | Scenario,
    overrides: dict[str, Any] | None = None,
) -> Scenario:
    """Load a scenario by bundled name, file path (YAML or JSON), dict, or Scenario.

    Parameters
    ----------
    name_or_path
        ``"volume_heavy"``, ``"my_scenario.yaml"``, a dict of fields, or a Scenario.
    overrides
        Dotted paths to values, e.g. ``{"team.reps": 12,
        "sources.paid_social.leads_per_week": 400}``; validated like the file.

    Raises
    ------
    ScenarioError
        With one line per invalid field.
    """
    file = None
    if isinstance(name_or_path, Scenario):
        raw = name_or_path.model_dump(mode="json")
    elif isinstance(name_or_path, dict):
        raw = dict(name_or_path)
    else:
        raw = read_scenario_dict(name_or_path)
        if Path(name_or_path).is_file():
            file = Path(name_or_path).name
    if overrides:
        # B0 is the budget the file wrote, whatever an override then does to the budget.
        sources = raw.get("sources")
        if isinstance(sources, list):
            raw = {**raw, "sources": [fix_reference_budget(src) for src in sources]}
        raw = apply_overrides(raw, overrides)
    try:
        return scenario_from_dict(raw)
    except ScenarioError as exc:
        if file is None:
            raise
        # A user's file is named, so that of two files compared the wrong one is clear.
        raise ScenarioError([f"{file}: {p}" for p in exc.problems]) from None


def fix_reference_budget(source: Any) -> Any:
    """A raw source with its reference budget B0 set to its budget when the file gives none.

    Anything that is not a source mapping with a budget is returned unchanged (the
    schema reports it).
    """
    if (
        isinstance(source, dict)
        and source.get("reference_budget_per_week_usd") is None
        and isinstance(source.get("budget_per_week_usd"), int | float)
        and not isinstance(source.get("budget_per_week_usd"), bool)
        and source["budget_per_week_usd"] > 0
    ):
        return {**source, "reference_budget_per_week_usd": source["budget_per_week_usd"]}
    return source


# --------------------------------------------------------------------- overrides


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``dotted.path=value`` (the value read as YAML: numbers, lists, true...)."""
    if "=" not in text:
        raise ScenarioError([f"--set {text!r}: expected dotted.path=value"])
    key, _, value = text.partition("=")
    key = key.strip()
    if not key:
        raise ScenarioError([f"--set {text!r}: the path before '=' is empty"])
    try:
        parsed = parse_yaml(value) if value.strip() else ""
    except InvalidDateError as exc:
        raise ScenarioError([f"--set {text!r}: {yaml_problem(exc)}"]) from None
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply dotted-path overrides to a raw scenario dict, returning a new dict.

    A list of named items (``sources``) is addressed by name or by index:
    ``sources.paid_social.leads_per_week`` or ``sources.0.leads_per_week``. The final
    key need not exist yet (it may be an optional field); intermediate keys must.
    """
    out = json.loads(json.dumps(raw, default=str))
    problems: list[str] = []
    for dotted, value in overrides.items():
        try:
            _set_path(out, dotted.split("."), value)
        except KeyError as exc:
            problems.append(f"{dotted}: {exc.args[0]}")
    if problems:
        raise ScenarioError(problems)
    return out


def _set_path(node: Any, parts: list[str], value: Any) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        index = _list_index(node, head)
        if not rest:
            node[index] = value
        else:
            _set_path(node[index], rest, value)
        return
    if not isinstance(node, dict):
        raise KeyError(f"cannot descend into a {type(node).__name__} at {head!r}")
    if not rest:
        node[head] = value
        return
    if head not in node:
        if _field_is_model(node, head):
            node[head] = {}
        else:
            hint = did_you_mean(head, [*node, *_SECTIONS])
            raise KeyError(f"unknown path at {head!r}" + (f" ({hint})" if hint else ""))
    _set_path(node[head], rest, value)


def _field_is_model(node: dict[str, Any], key: str) -> bool:
    # Sections such as "process" may be absent from a file and still valid targets.
    return key in _SECTIONS


_SECTIONS = frozenset(
    {
        "run",
        "team",
        "process",
        "burnout",
        "decay",
        "patience",
        "nurture",
        "routing",
        "qualification",
        "quality",
        "fit",
        "deal_size",
    }
)


def _list_index(node: list[Any], head: str) -> int:
    for i, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == head:
            return i
    if head.lstrip("-").isdigit() and -len(node) <= int(head) < len(node):
        return int(head)
    names = [str(item.get("name")) for item in node if isinstance(item, dict)]
    hint = did_you_mean(head, names)
    hint = f"; {hint}" if hint else ""
    raise KeyError(f"no item named {head!r} (have: {', '.join(names)}){hint}")


def weekday_index(day: str) -> int:
    """Monday is 0."""
    return WEEKDAYS.index(day)

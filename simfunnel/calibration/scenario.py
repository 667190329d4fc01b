"""A scenario from the estimates: validated by the schema, written as commented YAML.

:func:`build_scenario` starts from the schema's defaults (the figures of
``docs/assumptions.md``, cited by section as in the bundled scenarios) and sets every field the data
estimated. :func:`scenario_yaml` writes it with a comment on each calibrated field
(estimate, interval, rows behind it, method) and a header that lists the fields that
stay domain defaults.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pandas as pd

from simfunnel.calibration.estimate.censoring import as_of, not_identified
from simfunnel.calibration.estimate.volume import Volume
from simfunnel.parameters import Scenario, scenario_from_dict

#: Cost per lead when the data has none: docs/assumptions.md#cost-per-lead, survey average ~$198.
DEFAULT_CPL_USD = 198.0

#: Fields that no CRM export informs, left at the schema's defaults. Sources are cited
#: as the bundled scenarios cite them: a section of ``docs/assumptions.md``.
ALWAYS_DEFAULT: tuple[str, ...] = (
    "sources.*.cost_per_lead_usd: the default $198 for all sources, a survey average "
    "(docs/assumptions.md#cost-per-lead); CRM exports hold no cost: give your spend",
    "sources.*.quality, sources.*.fit (readiness is not recorded; fitted by simulation)",
    "process.qualification (fitted by simulation)",
    "process.patience, process.nurture (docs/assumptions.md#speed-to-lead, #readiness-and-nurture)",
    "team shift, selling share, minutes per attempt (docs/assumptions.md#attempts-and-capacity)",
    "burnout (docs/assumptions.md#burnout-and-turnover)",
)

#: What replaces "fitted by simulation" when the fit is skipped (``--no-simulate``).
_NOT_FITTED = "not fitted: the fit by simulation was skipped"


def _round(value: float) -> float:
    """Four significant figures: enough for a scenario, readable in a diff."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.4g}")


def _comment(row: pd.Series) -> str:
    est, low, high = (_fmt(row[k]) for k in ("estimate", "low", "high"))
    return f"estimate {est} (95% {low} to {high}), {int(row['n'])} rows; {row['method']}"


def _fmt(value: float) -> str:
    if not math.isfinite(float(value)):
        return "inf" if value > 0 else "-inf"
    return f"{float(value):.4g}"


#: Days a written scenario runs forward from the end of its history, at most.
FORWARD_DAYS = 364.0


def history_window(frame: pd.DataFrame) -> dict[str, Any]:
    """Overrides that replay the history: from the Monday of its first lead's week, its span.

    What the fit, the fit check and the back-test simulate; the written scenario itself
    runs forward from the end of the history (:func:`forward_run`).
    """
    created = pd.to_datetime(frame["created_at"])
    first = created.min().normalize()
    start: date = (first - pd.Timedelta(days=int(first.day_of_week))).date()
    end = max(created.max(), as_of(frame))
    span_days = float((end - pd.Timestamp(start)) / pd.Timedelta(days=1))
    horizon = float(min(max(math.ceil(span_days), 56), 3660))
    return {
        "run.start_date": start.isoformat(),
        "run.horizon_days": horizon,
        "run.warmup_days": float(min(28.0, horizon / 4)),
    }


def forward_run(frame: pd.DataFrame) -> dict[str, Any]:
    """The written scenario's run: from the history's last day, a year (or its span) forward."""
    history = history_window(frame)
    end = max(pd.to_datetime(frame["created_at"]).max(), as_of(frame))
    horizon = float(min(history["run.horizon_days"], FORWARD_DAYS))
    return {
        "start_date": end.normalize().date(),
        "horizon_days": horizon,
        "warmup_days": float(min(28.0, horizon / 4)),
    }


def build_scenario(
    table: pd.DataFrame,
    extras: dict[str, Any],
    frame: pd.DataFrame,
    name: str = "calibrated",
    simulate: bool = True,
) -> tuple[Scenario, dict[str, str], list[str]]:
    """The scenario the estimates describe, with one comment per calibrated field.

    Parameters
    ----------
    table, extras
        From :func:`simfunnel.calibration.estimate.estimates`.
    frame
        The canonical lead frame (its dates set the run's start and horizon).
    simulate
        Whether the fit by simulation follows (False: the defaults list says the fields
        it would have set are not fitted).

    Returns
    -------
    (scenario, comments, defaults)
        ``comments`` maps a dotted field path (``sources.web.leads_per_week``) to its
        comment; ``defaults`` lists the fields that stay domain defaults, and why.

    Raises
    ------
    simfunnel.errors.ScenarioError
        If the estimates do not make a valid scenario (a bug, not bad data: estimates
        are clipped to the schema's ranges).
    """
    comments: dict[str, str] = {}
    defaults: list[str] = [
        d if simulate else d.replace("fitted by simulation", _NOT_FITTED) for d in ALWAYS_DEFAULT
    ]
    by = {(r.field, r.source): r for r in table.itertuples(index=False)}

    def take(field: str, source: str, path: str, lo: float, hi: float) -> float | None:
        row = by.get((field, source))
        if row is None or not math.isfinite(row.estimate):
            return None
        comments[path] = _comment(pd.Series(row._asdict()))
        return _round(min(max(float(row.estimate), lo), hi))

    history = history_window(frame)
    created = pd.to_datetime(frame["created_at"])
    first, last = created.min(), created.max()
    run = forward_run(frame)
    comments["run.start_date"] = (
        "the end of the history: the scenario runs forward from it; the fit check and the "
        f"back-test replay the history ({first:%Y-%m-%d} to {last:%Y-%m-%d}) from "
        f"{history['run.start_date']}"
    )
    comments["run.horizon_days"] = (
        f"a year forward, or the history's span if shorter ({history['run.horizon_days']:g} days)"
    )
    sources: list[dict[str, Any]] = []
    for source in sorted(extras):
        src: dict[str, Any] = {"name": source}
        path = f"sources.{source}"
        lpw = take("leads_per_week", source, f"{path}.leads_per_week", 0.0, 1e6)
        src["leads_per_week"] = lpw if lpw is not None else 0.0
        src["cost_per_lead_usd"] = DEFAULT_CPL_USD
        extra = extras[source]
        src["day_of_week_profile"] = extra["day_of_week_profile"]
        n = int(by[("leads_per_week", source)].n) if ("leads_per_week", source) in by else 0
        comments[f"{path}.day_of_week_profile"] = f"leads by weekday, {n} rows"
        if extra.get("hour_of_day_profile") is not None:
            src["hour_of_day_profile"] = extra["hour_of_day_profile"]
            comments[f"{path}.hour_of_day_profile"] = f"leads by hour of day, {n} rows"
        volume = extra.get("volume")
        if volume is not None:
            _volume(src, volume, by, comments)
        deal: dict[str, Any] = {}
        mean = take("deal_size.mean_usd", source, f"{path}.deal_size.mean_usd", 1.0, 1e9)
        sigma = take("deal_size.sigma", source, f"{path}.deal_size.sigma", 0.0, 5.0)
        if mean is not None:
            deal["mean_usd"] = mean
        if sigma is not None:
            deal["sigma"] = sigma
        if deal:
            src["deal_size"] = deal
        for field, lo, hi in (
            ("opportunity_probability", 0.0, 1.0),
            ("win_probability", 0.0, 1.0),
            ("days_to_close", 0.0, 3650.0),
            ("monthly_churn", 1e-6, 1.0),
        ):
            value = take(field, source, f"{path}.{field}", lo, hi)
            if value is not None:
                src[field] = value
        _entry_stage(src, by, comments)
        sources.append(src)
    data: dict[str, Any] = {
        "name": name[:64],
        "description": "Calibrated from a CRM export by simfunnel calibrate.",
        "run": run,
        "sources": sources,
    }
    reps = take("team.reps", "all", "team.reps", 1, 10_000)
    if reps is not None:
        data["team"] = {"reps": max(1, round(reps))}
    else:
        defaults.append("team.reps (no owner column)")
    process: dict[str, Any] = {}
    tau = take("process.decay.tau_minutes", "all", "process.decay.tau_minutes", 1e-3, 1e6)
    floor = take("process.decay.floor", "all", "process.decay.floor", 0.0, 1.0)
    if tau is not None and floor is not None:
        method = str(by[("process.decay.tau_minutes", "all")].method)
        applies = "contact" if " on contacted " in method else "qualification"
        process["decay"] = {"tau_minutes": tau, "floor": floor, "applies_to": applies}
    else:
        defaults.append("process.decay (needs first-response times and outcomes)")
    auc = take("process.routing.score_auc", "all", "process.routing.score_auc", 0.51, 0.99)
    if auc is not None:
        process["routing"] = {"score_auc": auc}
    else:
        defaults.append("process.routing.score_auc (no score column)")
    if process:
        data["process"] = process
    reasons = not_identified(frame)
    for field, what in (
        ("opportunity_probability", "qualified and opportunity stages"),
        ("win_probability", "opportunity and won stages"),
        ("days_to_close", "stage and close dates"),
        ("deal_size.mean_usd", "amounts of won deals"),
        ("monthly_churn", "churn dates"),
    ):
        missing = [s["name"] for s in sources if f"sources.{s['name']}.{field}" not in comments]
        if missing:
            why = reasons.get(field, f"needs {what}")
            defaults.append(f"sources.{{{', '.join(missing)}}}.{field} ({why})")
    return scenario_from_dict(data), comments, defaults


def _volume(
    src: dict[str, Any], volume: Volume, by: dict[tuple[str, str], Any], comments: dict[str, str]
) -> None:
    """The source's trend and campaigns, measured against the baseline it writes.

    With a trend, ``leads_per_week`` is the level at the end of the history and the
    trend runs from there (``trend_reference``), back over the history and forward past
    it. Campaigns are dated bursts; one too large for a multiplier of the baseline
    brings its own leads a week.
    """
    path = f"sources.{src['name']}"
    trend = by.get(("trend_per_year", src["name"]))
    if volume.trend is not None and trend is not None:
        src["trend_per_year"] = _round(min(max(float(trend.estimate), -0.99), 100.0))
        src["trend_reference"] = volume.reference
        comments[f"{path}.trend_per_year"] = _comment(pd.Series(trend._asdict()))
        comments[f"{path}.trend_reference"] = (
            f"the end of the history: leads_per_week is the level then (whole-period mean "
            f"{volume.mean_per_week:.4g}/wk), and the trend runs back over the history "
            "and on past it"
        )
    bursts = []
    for c in volume.campaigns:
        burst = c.burst()
        for key in ("multiplier", "extra_leads_per_week"):
            if key in burst:
                burst[key] = _round(
                    min(max(burst[key], 0.01), 100.0 if key == "multiplier" else 1e6)
                )
        bursts.append(burst)
    if volume.started is not None and volume.history_start is not None:
        # the source started after the history did: no leads before its first
        bursts.insert(
            0,
            {
                "start": volume.history_start - timedelta(days=7),
                "end": volume.started - timedelta(days=1),
                "multiplier": 0.0,
            },
        )
    if bursts:
        src["bursts"] = bursts
        notes = []
        if volume.started is not None:
            notes.append(f"the first, a pause: the source's first lead came on {volume.started}")
        if volume.campaigns:
            base = "trend" if volume.trend is not None else "flat"
            notes.append(
                f"campaigns: weeks far above the {base} baseline (Poisson p < 1e-4), dated: "
                "not replayed"
            )
        own = sum(c.own_leads for c in volume.campaigns)
        if own:
            notes.append(
                f"{own} too large for a multiplier of the baseline "
                f"({volume.level:.3g}/wk) bring their own leads"
            )
        note = "; ".join(notes)
        comments[f"{path}.bursts"] = note


#: Share of a source's rows at a stage from which its rows enter the funnel there.
ENTRY_SHARE = 0.95


def _entry_stage(
    src: dict[str, Any], by: dict[tuple[str, str], Any], comments: dict[str, str]
) -> None:
    """Rows that (nearly) all reached a stage enter there: the stages before do not apply.

    A pipeline export whose every row is an opportunity enters at ``opportunity``, its
    win chance the share of rows won; one whose every row is qualified, at ``qualified``.
    """
    name = src["name"]
    for stage, chance, later in (
        ("opportunity", "win_probability", "won"),
        ("qualified", "opportunity_probability", "opportunity"),
    ):
        row = by.get((f"rate.{stage}", name))
        if row is None or not row.estimate >= ENTRY_SHARE:
            continue
        src["entry_stage"] = stage
        comments[f"sources.{name}.entry_stage"] = (
            f"{row.estimate:.1%} of the {row.n} rows reached {stage}: they enter there, and "
            "the stages before it do not apply to them"
        )
        step = by.get((f"rate.{later}", name))
        if chance not in src and step is not None and math.isfinite(step.estimate):
            src[chance] = _round(min(max(float(step.estimate) / row.estimate, 0.0), 1.0))
            comments[f"sources.{name}.{chance}"] = (
                f"the share of rows that reach {later}, {step.estimate:.4g} "
                f"(95% {step.low:.4g} to {step.high:.4g}), among those at {stage}"
            )
        return


# the YAML side of a calibrated scenario (the old writer's names), importable from here too
from simfunnel.calibration.scenario_file import scenario_yaml, written_fields  # noqa: E402, F401

"""Where the history ends (``as_of``) and whether it is long enough for volume and timing.

:func:`export_date` reads ``--as-of``: any date from the first lead to today (a plain
date is the end of that day). :func:`cut_at` makes the lead frame what an export made
on that date would have held: leads created later are left out, every later date is
blanked (not yet happened, so censored there), and a lead won or lost later is open.
That is what lets a back-test, or a user, cut the history anywhere.

:func:`short_history` handles a history shorter than :data:`MIN_HISTORY_DAYS`: weekly
volume, its trend, bursts and weekday profile, and the time to close cannot be told from
it, so those stay domain defaults (the volume is the count over one week) and one line
says so; conversion by source is still estimated.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd

from simfunnel.errors import CalibrationError

#: Days of lead creation below which volume and timing are not estimated.
MIN_HISTORY_DAYS = 14
#: Estimates a short history leaves at their domain defaults.
SHORT_HISTORY_FIELDS: tuple[str, ...] = (
    "trend_per_year",
    "burst_multiplier",
    "days_to_close",
    "monthly_churn",
    "leads_per_rep_per_week",
)

_DAY = pd.Timedelta(days=1)


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as naive datetimes (UTC for zoned input), what cannot be read missing."""
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def today() -> pd.Timestamp:
    """The end of today (local time): the latest export date there can be."""
    return pd.Timestamp(datetime.now().date()) + _DAY


def parse_export_date(value: str | pd.Timestamp) -> pd.Timestamp:
    """``value`` as a date and time (a plain date: the end of that day), not after today.

    Raises
    ------
    CalibrationError
        ``as_of ...: not a date`` or ``as_of ...: after today``.
    """
    text = str(value).strip()
    try:
        when = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        when = pd.NaT
    if pd.isna(when):
        year = re.match(r"^\s*(\d{4,})-\d{1,2}-\d{1,2}", text)
        if year is not None and int(year.group(1)) > today().year:
            raise CalibrationError(f"as_of {text}: after today ({today() - _DAY:%Y-%m-%d})")
        raise CalibrationError(f"as_of: not a date, got {text!r} (expected YYYY-MM-DD)")
    if when.tzinfo is not None:
        when = when.tz_convert(None)
    if when >= today():  # before any arithmetic: 2999-01-01 is beyond nanoseconds' range
        raise CalibrationError(f"as_of {text}: after today ({today() - _DAY:%Y-%m-%d})")
    when = pd.Timestamp(when).as_unit("ns")
    if when == when.normalize():
        when += _DAY
    return when


def export_date(value: str | pd.Timestamp, frame: pd.DataFrame | None = None) -> pd.Timestamp:
    """``value`` as the export's date: from the first lead created in ``frame`` to today.

    Raises
    ------
    CalibrationError
        Not a date, after today, or before the first lead (with the data's range).
    """
    try:
        when = parse_export_date(value)
    except CalibrationError as exc:
        if frame is None or "not a date" in str(exc):
            raise
        raise CalibrationError(f"{exc}; {data_range(frame)}") from None
    if frame is not None:
        first = _dates(frame, "created_at").min()
        if when <= first:
            raise CalibrationError(
                f"as_of {str(value).strip()}: before the first lead ({first:%Y-%m-%d %H:%M}); "
                f"{data_range(frame)}"
            )
    return when


def data_range(frame: pd.DataFrame) -> str:
    """``the data runs from <first lead> to <latest date>`` for a message."""
    created = _dates(frame, "created_at")
    dated = [c for c in frame.columns if str(c).endswith("_at")]
    latest = max(_dates(frame, c).max() for c in dated if _dates(frame, c).notna().any())
    return (
        f"the data runs from {created.min():%Y-%m-%d} (first lead) to {latest:%Y-%m-%d}; "
        "give a date in between, or today"
    )


#: Weeks without a lead before ``--as-of`` after which a line says so.
QUIET_WEEKS = 8


def cut_at(frame: pd.DataFrame, when: pd.Timestamp) -> tuple[pd.DataFrame, list[str]]:
    """The frame as an export made at ``when`` would hold it, and one line if that changed it.

    Leads created at or after ``when`` are left out; any later date is blanked (not yet
    happened: the lead is censored at ``when``); a lead won or lost later is ``open``,
    without its amount. A status with no date to tell when it happened stays as it is.
    """
    attrs = dict(frame.attrs)
    created = _dates(frame, "created_at")
    out = frame.loc[created < when].copy()
    later_leads = len(frame) - len(out)
    blanked = 0
    reopened = 0
    if "status" in out.columns:
        status = out["status"].astype("string").str.lower()
        for column, value in (("won_at", "won"), ("lost_at", "lost")):
            if column in out.columns:
                later = (_dates(out, column) >= when) & status.eq(value).fillna(False)
                reopened += int(later.sum())
                out.loc[later, "status"] = "open"
                if value == "won" and "amount" in out.columns:
                    out.loc[later, "amount"] = float("nan")
    for column in [c for c in out.columns if str(c).endswith("_at")]:
        values = _dates(out, column)
        late = values >= when
        blanked += int(late.sum())
        out[column] = values.where(~late)
    if "first_response_minutes" in out.columns and "first_response_at" in out.columns:
        out["first_response_minutes"] = out["first_response_minutes"].where(
            out["first_response_at"].notna()
        )
    out = out.reset_index(drop=True)
    out.attrs = {**attrs, "as_of": when.isoformat()}
    shown = when - _DAY if when == when.normalize() else when
    quiet = _DAY * 7 * QUIET_WEEKS
    last = _dates(out, "created_at").max() if len(out) else pd.NaT
    gap = []
    if pd.notna(last) and when - last > quiet:  # said: the recent level is that silence
        weeks = (when - last) / (_DAY * 7)
        gap = [
            f"no lead in the {weeks:.0f} weeks between the last one ({last:%Y-%m-%d}) and "
            f"--as-of {shown:%Y-%m-%d}: the recent volume is that of those empty weeks; if "
            "the export was made earlier, give that date"
        ]
    if not later_leads and not blanked:
        return out, gap
    cut = (
        f"the history ends at --as-of {shown:%Y-%m-%d}: {later_leads} leads created later "
        f"left out, {blanked} later dates read as not yet happened ({reopened} wins or "
        "losses open again)"
    )
    return out, [*gap, cut]


def short_history(
    frame: pd.DataFrame, table: pd.DataFrame, extras: dict[str, Any], observed: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame, list[str]]:
    """Volume and timing estimates of a history under :data:`MIN_HISTORY_DAYS` as defaults.

    Returns the estimates table, extras and observed rates (their volume counted the
    same way, for the fit check) to build the scenario from, and one line (none when
    the history is long enough).
    """
    created = _dates(frame, "created_at")
    days = float((created.max() - created.min()) / _DAY)
    if days >= MIN_HISTORY_DAYS:
        return table, extras, observed, []
    seen = observed.copy()
    if {"leads", "leads_per_week"} <= set(seen.columns):
        seen["leads_per_week"] = seen["leads"] / max(days / 7.0, 1.0)
    span = "one day" if created.dt.normalize().nunique() <= 1 else f"{days:.1f} days"
    kept = table[~table["field"].isin(SHORT_HISTORY_FIELDS)].copy()
    volume = kept["field"].eq("leads_per_week") & (kept["estimate"] > 0)
    scale = (kept.loc[volume, "n"] / max(days / 7.0, 1.0)) / kept.loc[volume, "estimate"]
    for column in ("estimate", "low", "high"):  # the Poisson interval, over one week
        kept.loc[volume, column] = kept.loc[volume, column] * scale
    kept.loc[volume, "method"] = (
        f"count / weeks, Poisson, over at least a week (the history covers {span})"
    )
    flat = {
        name: {**extra, "day_of_week_profile": [1.0] * 7, "hour_of_day_profile": None, "bursts": []}
        for name, extra in extras.items()
    }
    line = (
        f"the history covers {span} of leads, under {MIN_HISTORY_DAYS} days: volume (leads per "
        "week counted over at least a week; no trend, bursts or weekday profile) and timing "
        "(days to close, churn) stay domain defaults; conversion is still estimated"
    )
    return kept, flat, seen, [line]

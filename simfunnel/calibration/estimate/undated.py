"""Exports without creation dates: conversion from the rows, volume from what the user says.

A table of leads with a source and an outcome but no dates still tells each source's
conversion and the score's AUC. It cannot tell volume: 900 leads are 17 a week over a
year or 900 over a week. The user supplies it, as the period the export covers
(``period="2019-01-01..2019-12-31"``, the leads spread evenly over it) or as each
source's volume (``leads_per_week={"web": 40}``). Without either, calibration stops
with :class:`UndatedExport`, which carries what the rows do tell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simfunnel.errors import CalibrationError

if TYPE_CHECKING:
    from simfunnel.calibration.read.problems import ReadReport

#: The period assumed behind ``leads_per_week`` when no period is given: whole weeks.
GIVEN_VOLUME_WEEKS = 52

EXAMPLE = "--period 2019-01-01..2019-12-31, or each source's --leads-per-week SOURCE=N"


class UndatedExport(CalibrationError):
    """An export without creation dates and no period or volume to go with it.

    ``estimates`` holds what the rows tell without dates: conversion by source and the
    score's AUC (the tidy estimates table).
    """

    def __init__(self, message: str, estimates: pd.DataFrame) -> None:
        super().__init__(message)
        self.estimates = estimates


def is_undated(frame: pd.DataFrame) -> bool:
    """Whether the frame has no creation date at all."""
    return "created_at" not in frame or bool(frame["created_at"].isna().all())


def parse_period(value: str | Sequence[Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``"2019-01-01..2019-12-31"`` (or a pair) as (first day, end of the last day).

    Raises
    ------
    CalibrationError
        Not two dates, or the second before the first.
    """
    parts: Sequence[Any] = value.split("..") if isinstance(value, str) else value
    try:
        if len(parts) != 2:
            raise ValueError
        first, last = (pd.Timestamp(str(p).strip()) for p in parts)
    except (ValueError, TypeError):
        raise CalibrationError(
            f"period: expected FIRST..LAST as dates, e.g. 2019-01-01..2019-12-31, got {value!r}"
        ) from None
    if pd.isna(first) or pd.isna(last) or last < first:
        raise CalibrationError(f"period {value}: the last day is before the first")
    return first.normalize(), last.normalize() + pd.Timedelta(days=1)


def parse_leads_per_week(value: Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    """``{"web": 40}`` or ``["web=40", ...]`` as a dict of non-negative numbers."""
    items: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = []
        for item in value:
            name, sep, number = str(item).partition("=")
            if not sep or not name.strip():
                raise CalibrationError(f"leads_per_week: expected SOURCE=N, got {item!r}")
            items.append((name.strip(), number))
    out: dict[str, float] = {}
    for name, number in items:
        try:
            rate = float(number)
        except (TypeError, ValueError):
            rate = math.nan
        if not math.isfinite(rate) or rate < 0:
            raise CalibrationError(
                f"leads_per_week {name}: expected a number of leads a week >= 0, got {number!r}"
            )
        out[str(name)] = rate
    return out


def refusal(sources: Sequence[str]) -> str:
    """The one line that says why volume needs a date and how to give it."""
    return (
        f"volume: the export has no creation dates, so leads per week cannot be estimated "
        f"for its {len(sources)} sources (a count of leads says nothing of how long they "
        f"took to arrive); give the period it covers or the volume: {EXAMPLE}"
    )


def with_even_dates(
    frame: pd.DataFrame,
    period: tuple[pd.Timestamp, pd.Timestamp] | None,
    leads_per_week: dict[str, float] | None,
    today: pd.Timestamp,
) -> tuple[pd.DataFrame, str]:
    """A copy of ``frame`` whose leads are spread evenly in time, and the line that says how.

    With ``period``, each source's leads are spread over it, so that its volume is its
    count over the period. With ``leads_per_week`` only, each source gets as many evenly
    spread leads over :data:`GIVEN_VOLUME_WEEKS` weeks up to ``today`` as its volume
    says; the conversion still comes from the rows themselves.
    """
    sources = sorted(set(frame["source"].astype(str)))
    given = leads_per_week or {}
    if given:
        unknown = sorted(set(given) - set(sources))
        if unknown:
            raise CalibrationError(
                f"leads_per_week: no such source {unknown[0]!r}; the export's sources are "
                + ", ".join(sources)
            )
        missing = [s for s in sources if s not in given]
        if missing and period is None:
            raise CalibrationError(
                f"leads_per_week: no volume for {', '.join(missing)}; give every source's, "
                "or the period the export covers (--period FIRST..LAST)"
            )
    if period is None:
        end = today.normalize()
        start = end - pd.Timedelta(weeks=GIVEN_VOLUME_WEEKS)
    else:
        start, end = period
    span = end - start
    pieces = []
    for name, part in frame.groupby("source", sort=True):
        count = len(part)
        if str(name) in given:
            weeks = span / pd.Timedelta(weeks=1)
            count = max(round(given[str(name)] * weeks), 0)
        offsets = (np.arange(count) + 0.5) / max(count, 1)
        rows = part.iloc[np.arange(count) % len(part)].copy() if count else part.iloc[:0].copy()
        seconds = np.round(offsets * (span / pd.Timedelta(seconds=1)))
        rows["created_at"] = start + pd.to_timedelta(seconds, unit="s")
        pieces.append(rows)
    out = pd.concat(pieces, ignore_index=True)
    out["created_at"] = pd.to_datetime(out["created_at"]).astype("datetime64[ns]")
    out.attrs = dict(frame.attrs)
    out.attrs["as_of"] = end.isoformat()
    out.attrs["date_only"] = []
    how = (
        f"the period given, {start:%Y-%m-%d} to {end - pd.Timedelta(days=1):%Y-%m-%d}"
        if period is not None
        else "the leads per week given"
    )
    line = (
        f"no creation dates: volume from {how}, leads spread evenly over it (no weekday, "
        "hour, trend or campaign pattern); conversion and the score from the rows"
    )
    return out, line


# ------------------------------------------------------- for the pipeline


def undated_volume(
    frame: pd.DataFrame,
    report: ReadReport,
    period: str | tuple[Any, Any] | None,
    leads_per_week: dict[str, float] | list[str] | None,
) -> pd.DataFrame:
    """The undated frame with even creation dates for its volume, or the refusal."""
    from simfunnel.calibration.estimate.conversion import conversion_estimates
    from simfunnel.calibration.estimate.intervals import ESTIMATE_COLUMNS
    from simfunnel.calibration.estimate.score import score_estimates

    if period is None and leads_per_week is None:
        rows = conversion_estimates(frame) + score_estimates(frame)
        table = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
        raise UndatedExport(refusal(sorted(set(frame["source"].astype(str)))), table)
    span = None if period is None else parse_period(period)
    given = None if leads_per_week is None else parse_leads_per_week(leads_per_week)
    timed, line = with_even_dates(frame, span, given, pd.Timestamp.now().normalize())
    report.notes.append(line)
    return timed


def even_volume(
    table: pd.DataFrame,
    extras: dict[str, Any],
    period: str | tuple[Any, Any] | None,
    leads_per_week: dict[str, float] | list[str] | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Volume rows that say where they came from, and flat profiles: no dates, no pattern."""
    from scipy import stats

    out = table.copy()
    volume = out["field"] == "leads_per_week"
    if period is not None:
        first, end = parse_period(period)
        weeks = (end - first) / pd.Timedelta(weeks=1)
        n = out.loc[volume, "n"].to_numpy(float)
        out.loc[volume, "estimate"] = n / weeks
        out.loc[volume, "low"] = np.where(n > 0, stats.chi2.ppf(0.025, 2 * n) / 2, 0.0) / weeks
        out.loc[volume, "high"] = stats.chi2.ppf(0.975, 2 * n + 2) / 2 / weeks
    out.loc[volume, "method"] = (
        f"count over the period given ({period}), Poisson; the export has no creation dates"
    )
    given = {} if leads_per_week is None else parse_leads_per_week(leads_per_week)
    for name, rate in given.items():
        row = volume & (out["source"] == name)
        out.loc[row, ["estimate", "low", "high"]] = rate
        out.loc[row, "method"] = "given (leads_per_week); the export has no creation dates"
    out = out[out["field"] != "trend_per_year"].reset_index(drop=True)
    flat = {
        name: {
            **{k: v for k, v in extra.items() if k != "volume"},  # no dates: no trend
            "day_of_week_profile": [1.0] * 7,
            "hour_of_day_profile": None,
            "bursts": [],
        }
        for name, extra in extras.items()
    }
    return out, flat


def with_volume(rates: pd.DataFrame, everything: pd.DataFrame) -> pd.DataFrame:
    """Observed rates of the recorded cohorts with the volume of every lead."""
    volume = everything.drop_duplicates("source").set_index("source")
    out = rates.copy()
    for column in ("leads", "leads_per_week"):
        out[column] = out["source"].map(volume[column]).fillna(out[column])
    out["leads"] = out["leads"].astype(int)
    return out

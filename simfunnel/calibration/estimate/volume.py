"""Volume per source: its level now, its trend, its campaigns, its weekday and hour profile.

From a source's weekly counts (:mod:`simfunnel.calibration.estimate.weekly`): the trend is kept
when its 95% interval excludes 0, and the baseline is then the fitted level at the end
of the history, not the whole-period mean (which, on a history that grew 3x in a year,
runs about 45% below the recent level). Without a trend the baseline is flat. A source
whose first lead came long after the history started is counted from then, with a
pause before it.

Each campaign is measured against the same baseline the scenario applies: as a
multiplier of it (the campaign's leads over the baseline's), or, when that exceeds the
schema's cap of 100 (a source seen only in campaigns), as the campaign's own leads a
week on top, on the days it ran. No campaign's leads are dropped. Campaigns are dated:
a scenario run past the history does not replay them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.calibration.estimate.intervals import _row
from simfunnel.calibration.estimate.weekly import (
    HOT_P,
    LEVEL,
    MIN_LEADS,
    MIN_WEEKS,
    Campaign,
    analyse,
    created_dates,
    history_end,
    poisson_high,
    poisson_low,
    started_late,
    weekly_counts,
)

_DAY = pd.Timedelta(days=1)

__all__ = [
    "Campaign",
    "Volume",
    "created_dates",
    "history_end",
    "source_volume",
    "volume_estimates",
]


@dataclass(frozen=True)
class Volume:
    """A source's volume: the baseline the scenario writes, its trend and campaigns."""

    source: str
    leads: int
    weeks: float
    mean_per_week: float  # the whole period's, campaigns included
    level: float  # the baseline, leads a week on ``reference``
    level_low: float
    level_high: float
    reference: date  # the end of the history: its last midnight
    trend: tuple[float, float, float] | None = None  # growth a year, its 95% interval
    dispersion: float = 1.0
    campaigns: list[Campaign] = field(default_factory=list)
    history_start: date | None = None  # the day of the history's first lead
    started: date | None = None  # the day of the source's first lead, if after the history's

    def line(self) -> str | None:
        """What the scenario carries, one line, when it is more than the mean; else None."""
        parts = []
        if self.started is not None:
            parts.append(
                f"first lead on {self.started}, after the history started "
                f"({self.history_start}): no leads before it (a pause), its volume from then"
            )
        if self.trend is not None:
            est, low, high = (1 + g for g in self.trend)
            parts.append(
                f"{_x(est)} a year trend (95% {_x(low)} to {_x(high)}); "
                f"baseline is the recent level {_n(self.level)}/wk on {self.reference}, "
                f"growing with the trend (whole-period mean {_n(self.mean_per_week)}/wk)"
            )
        own = [c for c in self.campaigns if c.own_leads]
        if own:
            leads = sum(c.leads for c in own)
            parts.append(
                f"{len(own)} campaign(s) bring {leads} of its {self.leads} leads over a "
                f"baseline of {_n(self.level)}/wk; written as dated campaigns with their "
                "own leads, not replayed after the history"
            )
        return f"{self.source}: " + "; ".join(parts) if parts else None


def _x(ratio: float) -> str:
    return f"{ratio:.2g}x" if ratio < 10 else f"{ratio:.0f}x"


def _n(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def source_volume(name: str, when: pd.Series, first: pd.Timestamp, end: pd.Timestamp) -> Volume:
    """The volume of one source whose leads were created ``when``, history ``first`` to ``end``."""
    n = len(when)
    whole = max(float((end - first) / _DAY) / 7.0, 1.0 / 7.0)
    anchor = end.floor("D")
    counts = weekly_counts(when, first, anchor)
    started = None
    if len(counts) >= MIN_WEEKS and counts.sum() >= MIN_LEADS:
        base, campaigns = analyse(counts, anchor, when)
        if started_late(counts, base):
            started = pd.Timestamp(when.min())
            counts = weekly_counts(when, started, anchor)
    weeks = whole if started is None else max(float((end - started) / _DAY) / 7.0, 1.0 / 7.0)
    mean = n / weeks
    flat = Volume(
        name,
        n,
        whole,
        n / whole,
        mean,
        poisson_low(n) / weeks,
        poisson_high(n) / weeks,
        anchor.date(),
        history_start=first.date(),
        started=None if started is None else started.date(),
    )
    if len(counts) < MIN_WEEKS or counts.sum() < MIN_LEADS:
        return flat
    if started is not None:
        base, campaigns = analyse(counts, anchor, when)
    if base.trend is None and not campaigns:
        dof = int(base.use.sum()) - 1
        if base.phi * dof <= stats.chi2.ppf(LEVEL, dof):
            return flat  # no significant overdispersion: the count's Poisson interval
        # the count's Poisson interval, widened by the weeks' overdispersion
        spread = math.sqrt(base.phi)
        low, high = (mean * (bound / mean) ** spread for bound in (flat.level_low, flat.level_high))
        return replace(flat, level_low=low, level_high=high, dispersion=base.phi)
    level, low, high = base.level
    trend = None if base.trend is None else tuple(math.expm1(v) for v in base.trend)
    return Volume(
        name,
        n,
        whole,
        n / whole,
        level,
        low,
        high,
        anchor.date(),
        trend,  # type: ignore[arg-type]
        base.phi,
        campaigns,
        history_start=first.date(),
        started=flat.started,
    )


def _profile(counts: np.ndarray) -> list[float]:
    """Relative weights with mean 1 (a little smoothing so no weight is exactly 0)."""
    smoothed = counts + 0.5
    return [round(float(v), 3) for v in smoothed / smoothed.mean()]


def volume_rows(volume: Volume) -> list[dict[str, Any]]:
    """The estimate rows of a source's volume: baseline, trend and campaigns."""
    v, name = volume, volume.source
    if v.trend is not None:
        method = (
            f"the level on {v.reference} of a log-linear Poisson trend of weekly counts "
            f"(whole-period mean {_n(v.mean_per_week)}/wk)"
        )
    elif v.campaigns:
        method = (
            "mean of the weeks without a campaign, quasi-Poisson "
            f"(whole-period mean {_n(v.mean_per_week)}/wk)"
        )
    elif v.dispersion > 1:
        method = f"count / weeks, quasi-Poisson (overdispersion {v.dispersion:.2g})"
    else:
        method = "count / weeks, Poisson"
    if v.campaigns:
        method += f"; without the {len(v.campaigns)} campaign(s)' weeks"
    rows = [_row("leads_per_week", name, v.level, v.level_low, v.level_high, v.leads, method)]
    if v.trend is not None:
        est, low, high = v.trend
        disp = f", overdispersion {v.dispersion:.2g}" if v.dispersion > 1 else ""
        rows.append(
            _row(
                "trend_per_year",
                name,
                est,
                low,
                high,
                v.leads,
                f"Poisson log-linear fit of weekly counts ({_x(1 + est)} a year{disp})",
            )
        )
    for c in v.campaigns:
        if c.own_leads:
            rows.append(
                _row(
                    "burst_extra_leads",
                    name,
                    c.leads - c.baseline,
                    max(poisson_low(c.leads) - c.baseline, 0.0),
                    poisson_high(c.leads) - c.baseline,
                    c.leads,
                    f"{c.start} to {c.end}: the campaign's leads over the baseline's "
                    f"{c.baseline:.3g}, Poisson p < {HOT_P:g}",
                )
            )
        else:
            rows.append(
                _row(
                    "burst_multiplier",
                    name,
                    c.multiplier,
                    c.low,
                    c.high,
                    c.leads,
                    f"{c.start} to {c.end} over the baseline, Poisson p < {HOT_P:g}",
                )
            )
    return rows


def volume_estimates(frame: pd.DataFrame) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Leads per week per source with its interval, trend per year, campaigns, profiles.

    Returns
    -------
    (rows, extras)
        Estimate rows and, per source, ``day_of_week_profile`` (7 weights, Monday
        first), ``hour_of_day_profile`` (24, or None for date-only data), ``bursts``
        (start, end, multiplier, low, high, leads per campaign) and ``volume`` (the
        :class:`Volume` the scenario is written from).
    """
    rows: list[dict[str, Any]] = []
    extras: dict[str, Any] = {}
    created = created_dates(frame)
    date_only = "created_at" in frame.attrs.get("date_only", [])
    first, end = created.min(), history_end(frame, created)
    for source, index in frame.groupby("source", sort=True).groups.items():
        name = str(source)
        when = created.loc[index]
        volume = source_volume(name, when, first, end)
        rows += volume_rows(volume)
        dow = np.bincount(when.dt.day_of_week.to_numpy(), minlength=7).astype(float)
        hod = np.bincount(when.dt.hour.to_numpy(), minlength=24).astype(float)
        extras[name] = {
            "day_of_week_profile": _profile(dow),
            "hour_of_day_profile": None if date_only else _profile(hod),
            "bursts": [
                (c.start, c.end, round(c.multiplier, 3), c.low, c.high, c.leads)
                for c in volume.campaigns
            ],
            "volume": volume,
        }
    return rows, extras

"""When the export began recording outcomes, and conversion by monthly cohort.

A CRM often holds leads from before it recorded their outcomes: leads arrive from June,
the first win is dated December, and the June to November cohorts "won" 0-4% against
14-20% for the later ones. Averaging the two understates every conversion rate. Such a
start is recognised when

- the first outcome (won, or lost, or the deepest stage the export shows; a stray
  early record, under :data:`STRAY_SHARE` of them and weeks before the rest, aside)
  is dated at least :data:`MIN_GAP_DAYS` after the first lead; and
- the leads created before it reached that stage significantly less often than those
  created after it (one-sided Fisher exact test at :data:`ALPHA`) and at most half as
  often.

The leads created before the start still count for volume; the conversion, timing and
value estimates use the leads created from the start on. An export without outcome dates
(a converted flag) is checked on its monthly cohorts instead: a leading run of months in
which no lead reached the stage while leads arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.calibration.estimate.censoring import _dates, stage_flags
from simfunnel.calibration.estimate.intervals import wilson

#: The least gap between the first lead and the first outcome that can be a start of
#: recording rather than the time outcomes take.
MIN_GAP_DAYS = 60
#: Significance of "cohorts before the start converted less".
ALPHA = 0.001
#: The least number of leads on each side of the start.
MIN_LEADS = 30
#: Share of outcome dates that may precede the start as stray early records, and the
#: gap that sets them apart from the rest.
STRAY_SHARE = 0.01
STRAY_GAP_DAYS = 14


@dataclass(frozen=True)
class RecordingStart:
    """Outcomes are recorded from ``start`` on; the cohorts before it look unconverted."""

    start: pd.Timestamp
    first_lead: pd.Timestamp
    stage: str
    leads_before: int
    rate_before: float
    rate_after: float
    dated: bool
    stray: int = 0

    def line(self) -> str:
        """The finding, in one line with the dates."""
        if not self.dated:
            evidence = "no lead created before it has one"
        elif self.stray:
            evidence = f"only {self.stray} stray outcome dates before it"
        else:
            evidence = "no outcome is dated before it"
        return (
            f"outcomes are recorded from {self.start:%Y-%m-%d} on ({evidence}, while "
            f"{self.leads_before:,} leads arrived from {self.first_lead:%Y-%m-%d}; those "
            f"cohorts reached {self.stage} {self.rate_before:.1%} against "
            f"{self.rate_after:.1%} after): conversion, timing and value are estimated from "
            "the leads created since, volume from all of them"
        )


def _deepest(frame: pd.DataFrame) -> tuple[str, pd.Series, pd.Series | None] | None:
    flags = stage_flags(frame)
    if not flags:
        return None
    stage = list(flags)[-1]
    reached, when = flags[stage]
    return stage, reached, when


def outcome_recording_start(frame: pd.DataFrame) -> RecordingStart | None:
    """The start of outcome recording, when the export shows one (see the module)."""
    deepest = _deepest(frame)
    if deepest is None or "created_at" not in frame:
        return None
    stage, reached, when = deepest
    created = _dates(frame, "created_at")
    outcome_dates = [when] if when is not None else []
    if "lost_at" in frame.columns:
        outcome_dates.append(_dates(frame, "lost_at"))
    first_lead = created.min()
    if pd.isna(first_lead):
        return None
    dated = bool(outcome_dates) and any(bool(d.notna().any()) for d in outcome_dates)
    stamps = pd.Series(dtype="datetime64[ns]")
    if dated:
        stamps = pd.concat([d.dropna() for d in outcome_dates])
        start = _first_recorded(stamps)
    else:
        start = _first_converting_month(created, reached)
        if start is None:
            return None
    if (start - first_lead) / pd.Timedelta(days=1) < MIN_GAP_DAYS:
        return None
    before = (created < start).to_numpy()
    n_before, n_after = int(before.sum()), int((~before).sum())
    if n_before < MIN_LEADS or n_after < MIN_LEADS:
        return None
    hit = reached.to_numpy(dtype=bool)
    k_before, k_after = int(hit[before].sum()), int(hit[~before].sum())
    rate_before, rate_after = k_before / n_before, k_after / n_after
    if rate_after <= 0 or rate_before > rate_after / 2:
        return None
    table = [[k_before, n_before - k_before], [k_after, n_after - k_after]]
    if float(stats.fisher_exact(table, alternative="less").pvalue) >= ALPHA:
        return None
    return RecordingStart(
        start=pd.Timestamp(start),
        first_lead=pd.Timestamp(first_lead),
        stage=stage,
        leads_before=n_before,
        rate_before=rate_before,
        rate_after=rate_after,
        dated=dated,
        stray=int((stamps < start).sum()) if dated else 0,
    )


def _first_recorded(stamps: pd.Series) -> pd.Timestamp:
    """The first outcome date, a stray early record aside.

    Strays are the under :data:`STRAY_SHARE` of the dates that precede the rest by a
    gap of more than :data:`STRAY_GAP_DAYS`; the start is the first date after the
    last such gap among them.
    """
    ordered = np.sort(stamps.to_numpy(dtype="datetime64[ns]"))
    limit = int(STRAY_SHARE * len(ordered))
    gaps = np.diff(ordered[: limit + 1]) > np.timedelta64(STRAY_GAP_DAYS, "D")
    big = np.flatnonzero(gaps)
    return pd.Timestamp(ordered[big[-1] + 1 if len(big) else 0])


def _first_converting_month(created: pd.Series, reached: pd.Series) -> pd.Timestamp | None:
    """The first month whose cohort has a lead that reached the stage (no dates to go by)."""
    month = created.dt.to_period("M")
    hits = reached.groupby(month).sum()
    converting = hits[hits > 0]
    if converting.empty:
        return None
    return pd.Timestamp(converting.index[0].start_time)


def since(frame: pd.DataFrame, start: pd.Timestamp | None) -> pd.DataFrame:
    """The leads created from ``start`` on (all of them when it is None)."""
    if start is None:
        return frame
    out = frame.loc[_dates(frame, "created_at") >= start].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def cohort_conversion(frame: pd.DataFrame) -> pd.DataFrame:
    """Per monthly cohort of created leads: leads, how many reached the deepest stage, the share.

    Columns ``month, stage, leads, reached, rate, low, high`` (Wilson 95% interval).
    The share is not corrected for censoring: the last cohorts have had less time to
    convert, which the report says beside the figure.
    """
    columns = ["month", "stage", "leads", "reached", "rate", "low", "high"]
    deepest = _deepest(frame)
    if deepest is None or "created_at" not in frame:
        return pd.DataFrame(columns=columns)
    stage, reached, _ = deepest
    created = _dates(frame, "created_at")
    month = created.dt.to_period("M").rename("month")
    grouped = reached.astype(int).groupby(month)
    counts = pd.DataFrame({"leads": grouped.size(), "reached": grouped.sum()})
    bounds = np.array(
        [wilson(k, n) for k, n in zip(counts["reached"], counts["leads"], strict=True)]
    )
    out = counts.reset_index()
    out["month"] = out["month"].dt.start_time
    out.insert(1, "stage", stage)
    out["rate"] = out["reached"] / out["leads"]
    out["low"], out["high"] = bounds[:, 0], bounds[:, 1]
    return out[columns]

"""Censoring: the end of the data, stage flags, and the share that ever reaches a stage.

Every estimate takes the frame :mod:`simfunnel.calibration.read` produces (the names of
:mod:`simfunnel.calibration.read.columns`). Nothing here reads files or prints.

Stage rates are right-censored: a lead created last week that has not closed yet is not
a lost lead. A stage with a date column is estimated as a cure-rate (Kaplan-Meier
plateau): the time from creation to the stage is the event time; a lead that has not
reached the stage is censored at the end of the data (``as_of``) if it is still open,
and followed to the end if it is already won or lost (it never will). The share that
ever reaches the stage is one minus the Kaplan-Meier survival after the last event, with
a Wilson interval at the Greenwood effective sample size; without censoring this is the
plain binomial share and its Wilson interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.calibration.estimate.intervals import wilson
from simfunnel.calibration.read.columns import OBSERVED_RATE_COLUMNS, STAGES
from simfunnel.calibration.read.history import _dates

_DAY = pd.Timedelta(days=1)


def as_of(frame: pd.DataFrame) -> pd.Timestamp:
    """The end of the data: ``frame.attrs["as_of"]``, else the latest date in the frame."""
    given = frame.attrs.get("as_of")
    if given is not None:
        return pd.Timestamp(given)
    latest = [frame[c].max() for c in frame.columns if c.endswith("_at") and frame[c].notna().any()]
    return pd.Timestamp(max(latest)) if latest else pd.NaT  # NaT: an export without dates


def stage_flags(frame: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series | None]]:
    """For each stage the data shows: (reached, date reached or None).

    A lead that reached a later stage reached the earlier ones too (a contact who became
    a customer without a recorded qualification date was qualified); its date for the
    earlier stage is the earliest date it has at that stage or later.
    """
    won_status = None
    if "status" in frame.columns:
        won_status = frame["status"].astype("string").str.lower().eq("won").fillna(False)
    out: dict[str, tuple[pd.Series, pd.Series | None]] = {}
    later_flag = pd.Series(False, index=frame.index)
    later_date = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    for stage in reversed(STAGES):
        date_col = f"{stage}_at"
        present = False
        flag = pd.Series(False, index=frame.index)
        date = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        has_date = False
        if date_col in frame.columns:
            date = _dates(frame, date_col)
            flag = flag | date.notna()
            present = has_date = True
        if stage in frame.columns:
            flag = flag | frame[stage].fillna(False).astype(bool)
            present = True
        if stage == "won" and won_status is not None:
            flag = flag | won_status
            present = True
        later_flag = later_flag | flag
        if has_date:
            # the earlier of the two, a missing one aside (fmin skips NaT), vectorised
            earliest = np.fmin(later_date.to_numpy(), date.to_numpy())
            later_date = pd.Series(earliest, index=frame.index, dtype="datetime64[ns]")
        if present:
            out[stage] = (later_flag.copy(), later_date.copy() if has_date else None)
    return {s: out[s] for s in STAGES if s in out}


#: Share from which qualification and opportunity are one event in the data, not two
#: stages: of the qualified leads, those with an opportunity, and of these, those whose
#: two dates fall on the same day (Salesforce opens the opportunity when it converts the
#: lead, so the share of qualified leads that become opportunities is one by design).
SAME_EVENT_SHARE = 0.95


def same_day_stages(frame: pd.DataFrame) -> tuple[int, int] | None:
    """(same day, qualified) when qualified and opportunity are one event in the data, else None.

    One event: (nearly) every lead with a qualified date has an opportunity date, and
    (nearly) every one of those the same day. A model export, where only some qualified
    leads become opportunities (on the day they qualify), is two stages.
    """
    if "qualified_at" not in frame or "opportunity_at" not in frame:
        return None
    qualified = _dates(frame, "qualified_at")
    opened = _dates(frame, "opportunity_at")
    n = int(qualified.notna().sum())
    both = qualified.notna() & opened.notna()
    if n < 5 or int(both.sum()) < SAME_EVENT_SHARE * n:
        return None
    k = int((qualified[both].dt.normalize() == opened[both].dt.normalize()).sum())
    return (k, n) if k >= SAME_EVENT_SHARE * n else None


def not_identified(frame: pd.DataFrame) -> dict[str, str]:
    """The step chances the data cannot estimate, each with the reason.

    ``win_probability`` (opportunity -> won) and ``opportunity_probability`` (qualified
    -> opportunity) need an opportunity stage: an opportunity date or flag, or a deals
    table that lists open or lost deals too (one of won deals alone does not say which
    other leads became opportunities). ``opportunity_probability`` also needs the two
    stages to be distinct events.
    """
    flags = stage_flags(frame)
    out: dict[str, str] = {}
    if "opportunity" not in flags:
        why = (
            "needs an opportunity stage: an opportunity date or flag, or deals that are "
            "not all won; lead->won alone cannot tell the two step chances apart"
        )
        return {"opportunity_probability": why, "win_probability": why}
    if "won" not in flags:
        out["win_probability"] = "needs a won stage"
    if "qualified" not in flags:
        out["opportunity_probability"] = "needs a qualified stage"
    same = same_day_stages(frame)
    if same is not None:
        out["opportunity_probability"] = (
            f"not identifiable: {same[0]} of the {same[1]} qualified leads became "
            "opportunities the day they qualified (the CRM opens the opportunity at "
            "conversion), so the data shows one event, counted as the opportunity"
        )
    return out


def resolved(frame: pd.DataFrame) -> pd.Series:
    """Leads whose fate is known (won or lost): they will reach no further stage."""
    done = pd.Series(False, index=frame.index)
    for column in ("won_at", "lost_at"):
        if column in frame.columns:
            done = done | _dates(frame, column).notna()
    for column in ("won", "lost"):
        if column in frame.columns:
            done = done | frame[column].fillna(False).astype(bool)
    if "status" in frame.columns:
        status = frame["status"].astype("string").str.lower()
        done = done | status.isin(["won", "lost"]).fillna(False)
    return done


def ever_reached(
    created: pd.Series,
    reached: pd.Series,
    reached_at: pd.Series | None,
    done: pd.Series,
    end: pd.Timestamp,
) -> tuple[float, float, float]:
    """Share of leads that ever reach a stage, with its interval, censoring-corrected.

    Parameters
    ----------
    created, reached, reached_at, done
        Creation date, whether the stage was reached, when (None: no dates, so the
        plain binomial share), and whether the lead's fate is already known.
    end
        The end of the data; open leads are censored there.

    Returns
    -------
    (rate, low, high)
    """
    n = len(created)
    k = int(reached.sum())
    if n == 0:
        return (math.nan, 0.0, 1.0)
    if reached_at is None or k == 0 or bool(done.all()):
        low, high = wilson(k, n)
        return (k / n, low, high)
    days = ((reached_at - created) / _DAY).to_numpy(dtype=float)
    follow = ((end - created) / _DAY).to_numpy(dtype=float)
    flag = reached.to_numpy(dtype=bool)
    days = np.where(flag, np.nan_to_num(days, nan=0.0), np.nan)
    days = np.clip(days, 0.0, None)
    # Every lead that has not reached the stage is censored at the end of the data, a
    # closed one too: its "never" is the improper event time of the Fine-Gray
    # subdistribution, and keeping closed leads past their own follow-up would favour
    # the ones that closed fast (and lost), biasing the rate down.
    cens = np.clip(follow, 0.0, None)
    sample = stats.CensoredData(uncensored=days[flag], right=cens[~flag])
    surv = stats.ecdf(sample).sf
    last = float(np.max(days[flag]))
    s_end = float(surv.evaluate(last))
    rate = 1.0 - s_end
    # Greenwood variance of S at the last event, as an effective binomial sample size
    q = surv.quantiles
    at_risk = _at_risk(days[flag], cens[~flag], q)
    events = np.sort(days[flag])
    deaths = (
        np.searchsorted(events, q, side="right") - np.searchsorted(events, q, side="left")
    ).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(at_risk > deaths, deaths / (at_risk * (at_risk - deaths)), 0.0)
    var = s_end**2 * float(terms[q <= last].sum())
    n_eff = rate * (1 - rate) / var if var > 0 and 0 < rate < 1 else float(n)
    n_eff = min(n_eff, float(n))
    low, high = wilson(rate * n_eff, n_eff)
    return (rate, low, high)


def _at_risk(events: np.ndarray, censored: np.ndarray, times: np.ndarray) -> np.ndarray:
    everything = np.sort(np.concatenate([events, censored]))
    return (len(everything) - np.searchsorted(everything, times, side="left")).astype(float)


def weeks_observed(frame: pd.DataFrame) -> float:
    """Weeks of lead creation the frame covers: first lead to ``as_of`` (default: last lead)."""
    created = _dates(frame, "created_at")
    end = frame.attrs.get("as_of")
    last = pd.Timestamp(end) if end is not None else created.max()
    span = (last - created.min()) / _DAY
    return max(float(span) / 7.0, 1.0 / 7.0)


def observed_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per source and stage: how many leads, how many reached it, and the share that ever does.

    Parameters
    ----------
    frame
        A canonical lead frame: ``lead_id``, ``source``, ``created_at`` and whichever
        stage columns exist (``contacted_at`` or ``contacted``, ``qualified_at`` or
        ``qualified``, ``opportunity_at``, ``won_at`` or ``status``), plus ``lost_at`` /
        ``status`` to tell closed leads from open ones. ``frame.attrs["as_of"]`` sets the
        end of the data (default: its latest date).

    Returns
    -------
    pandas.DataFrame
        Columns ``source, stage, leads, reached, rate, low, high, leads_per_week``; one
        row per source and stage present in the data (stage in contacted, qualified,
        opportunity, won, in that order; a qualified stage whose date is the opportunity's
    for nearly every lead, see :func:`same_day_stages`, is left out: the data shows one
    event, counted as the opportunity). ``rate`` is the censoring-corrected share of the
        source's leads that ever reach the stage, ``low``/``high`` its 95% interval,
        ``leads_per_week`` the source's volume over the span of the data.
    """
    end = as_of(frame)
    flags = stage_flags(frame)
    if same_day_stages(frame) is not None:
        flags.pop("qualified", None)  # one event in the data, counted as the opportunity
    done = resolved(frame)
    created = _dates(frame, "created_at")
    weeks = weeks_observed(frame)
    rows: list[dict[str, Any]] = []
    for source, index in frame.groupby("source", sort=True).groups.items():
        n = len(index)
        for stage, (reached, reached_at) in flags.items():
            rate, low, high = ever_reached(
                created.loc[index],
                reached.loc[index],
                None if reached_at is None else reached_at.loc[index],
                done.loc[index],
                end,
            )
            rows.append(
                {
                    "source": str(source),
                    "stage": stage,
                    "leads": n,
                    "reached": int(reached.loc[index].sum()),
                    "rate": rate,
                    "low": low,
                    "high": high,
                    "leads_per_week": n / weeks,
                }
            )
    columns = [*OBSERVED_RATE_COLUMNS, "leads_per_week"]
    return pd.DataFrame(rows, columns=columns)

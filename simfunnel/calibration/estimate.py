"""Direct estimates from a canonical lead frame: volumes, stage rates, delays, deal sizes.

Every function takes the frame :mod:`simfunnel.calibration.read` produces (the names of
:mod:`simfunnel.calibration.read.columns`) and returns a tidy DataFrame. Nothing here reads
files or prints.

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
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from simfunnel.calibration.cure import fit_cure
from simfunnel.calibration.read.columns import OBSERVED_RATE_COLUMNS, STAGES
from simfunnel.calibration.volume import volume_estimates

#: Confidence level of every interval.
LEVEL = 0.95
_Z = float(stats.norm.ppf(0.5 + LEVEL / 2))

_DAY = pd.Timedelta(days=1)


def as_of(frame: pd.DataFrame) -> pd.Timestamp:
    """The end of the data: ``frame.attrs["as_of"]``, else the latest date in the frame."""
    given = frame.attrs.get("as_of")
    if given is not None:
        return pd.Timestamp(given)
    latest = [frame[c].max() for c in frame.columns if c.endswith("_at") and frame[c].notna().any()]
    return pd.Timestamp(max(latest)) if latest else pd.NaT  # NaT: an export without dates


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[ns]")


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
            later_date = pd.concat([later_date, date], axis=1).min(axis=1)
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


def wilson(successes: float, n: float) -> tuple[float, float]:
    """Wilson score interval of a binomial share (``successes`` may be fractional)."""
    if n <= 0:
        return (0.0, 1.0)
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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


# ------------------------------------------------------------------ estimates table

#: Columns of the tidy estimates table.
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "field",
    "source",
    "estimate",
    "low",
    "high",
    "n",
    "method",
    "from_data",
)


def _row(
    field: str,
    source: str,
    estimate: float,
    low: float,
    high: float,
    n: int,
    method: str,
    from_data: bool = True,
) -> dict[str, Any]:
    return {
        "field": field,
        "source": source,
        "estimate": float(estimate),
        "low": float(low),
        "high": float(high),
        "n": int(n),
        "method": method,
        "from_data": from_data,
    }


def slug(name: str) -> str:
    """A source name as a scenario source name: ``Organic Search`` -> ``organic_search``.

    Accents are transliterated (``Salon Événements`` -> ``salon_evenements``): the name
    is decomposed (NFKD) and its combining marks dropped.
    """
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", str(name)) if not unicodedata.combining(c)
    )
    text = re.sub(r"[^A-Za-z0-9_\-]+", "_", plain.strip().lower()).strip("_")
    return (text or "unknown")[:64]


def pool_sources(frame: pd.DataFrame, min_leads: int = 30) -> tuple[pd.DataFrame, list[str]]:
    """Source names as scenario names, sources with fewer than ``min_leads`` pooled as ``other``.

    Returns
    -------
    (frame, pooled)
        A copy of the frame and the (original) names pooled into ``other``.
    """
    out = frame.copy()
    names = pd.unique(out["source"])
    out["source"] = out["source"].map(dict(zip(names, map(slug, names), strict=True)))
    counts = out["source"].value_counts()
    small = sorted(str(s) for s in counts[counts < min_leads].index)
    if small and len(small) < len(counts):
        out.loc[out["source"].isin(small), "source"] = "other"
        small = [s for s in small if s != "other"]  # a source called other stays itself
    else:
        small = []
    out.attrs = dict(frame.attrs)
    return out, small


def conversion_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Stage shares of leads (censoring-corrected) and the step probabilities between stages.

    ``rate.<stage>`` is the share of a source's leads that ever reach the stage;
    ``opportunity_probability`` (qualified -> opportunity) and ``win_probability``
    (opportunity -> won) are the same treatment among the leads that reached the stage
    before, timed from it.
    """
    rows: list[dict[str, Any]] = []
    table = observed_rates(frame)
    for r in table.itertuples():
        rows.append(
            _row(
                f"rate.{r.stage}",
                str(r.source),
                r.rate,
                r.low,
                r.high,
                int(r.leads),
                "share of leads reaching the stage, Kaplan-Meier plateau, Wilson interval",
            )
        )
    flags = stage_flags(frame)
    done = resolved(frame)
    end = as_of(frame)
    steps = (
        ("qualified", "opportunity", "opportunity_probability"),
        ("opportunity", "won", "win_probability"),
    )
    unknown = not_identified(frame)
    for before, after, field in steps:
        if before not in flags or after not in flags or field in unknown:
            continue
        reached_before, at_before = flags[before]
        reached_after, at_after = flags[after]
        for source, index in frame.groupby("source", sort=True).groups.items():
            among = reached_before.loc[index]
            idx = among[among].index
            if len(idx) < 5:
                continue
            start = (
                at_before.loc[idx]
                if at_before is not None
                else _dates(frame, "created_at").loc[idx]
            )
            start = start.fillna(_dates(frame, "created_at").loc[idx])
            rate, low, high = ever_reached(
                start,
                reached_after.loc[idx],
                None if at_after is None else at_after.loc[idx],
                done.loc[idx],
                end,
            )
            rows.append(
                _row(
                    field,
                    str(source),
                    rate,
                    low,
                    high,
                    len(idx),
                    f"{after} among leads that reached {before}, Kaplan-Meier plateau, Wilson",
                )
            )
    return rows


#: Candidate distributions of time to close.
_CLOSE_FITS: dict[str, Any] = {
    "exponential": stats.expon,
    "gamma": stats.gamma,
    "lognormal": stats.lognorm,
    "weibull": stats.weibull_min,
}


def close_time_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Days from qualification (or opportunity) to close, by source.

    Open opportunities are right-censored at the end of the data. Exponential, gamma,
    lognormal and Weibull are fitted by censored maximum likelihood (scipy) and the one
    with the lowest AIC is kept; its mean is the estimate (the model draws an
    exponential with that mean), with a bootstrap-free interval from the exponential's
    exact chi-square interval.
    """
    start_col = next((c for c in ("qualified_at", "opportunity_at") if c in frame), None)
    if start_col is None and "won_at" in frame:
        return _created_to_won(frame)
    if start_col is None or not any(c in frame for c in ("won_at", "lost_at")):
        return []
    start = _dates(frame, start_col)
    if "opportunity_at" in frame:
        start = start.fillna(_dates(frame, "opportunity_at"))
    close = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    for column in ("won_at", "lost_at"):
        if column in frame:
            close = close.fillna(_dates(frame, column))
    end = as_of(frame)
    # a lead closed without a close date (lost before its opportunity opened) tells nothing
    # about the time to close
    undated = resolved(frame) & close.isna()
    rows: list[dict[str, Any]] = []
    for source, index in frame.groupby("source", sort=True).groups.items():
        s = start.loc[index]
        c = close.loc[index]
        has = s.notna() & ~undated.loc[index]
        if has.sum() < 8:
            continue
        closed = c.notna() & has
        days = ((c - s) / _DAY).where(closed).clip(lower=1e-3).dropna().to_numpy(float)
        open_days = (
            ((end - s) / _DAY).where(has & ~closed).dropna().clip(lower=1e-3).to_numpy(float)
        )
        if len(days) < 5:
            continue
        # the shape is fitted on a random subsample of a large history (the mean's
        # interval below still counts every deal)
        days_fit, open_fit = _subsample(days, open_days)
        sample = stats.CensoredData(uncensored=days_fit, right=open_fit)
        best_name, best_aic, best_mean = "exponential", math.inf, float(days.mean())
        aics: dict[str, float] = {}
        fitted: dict[str, tuple[float, ...]] = {}
        if len(np.unique(days)) < 3:  # no spread to choose a shape from
            candidates: dict[str, Any] = {"exponential": stats.expon}
        else:
            candidates = _CLOSE_FITS
        for label, dist in candidates.items():
            try:
                with np.errstate(all="ignore"):
                    params = dist.fit(sample, floc=0)
                    ll = float(
                        dist.logpdf(days_fit, *params).sum() + dist.logsf(open_fit, *params).sum()
                    )
            except (ValueError, RuntimeError, FloatingPointError):
                continue
            k = len(params) - 1  # loc fixed
            aic = 2 * k - 2 * ll
            if not math.isfinite(aic):
                continue
            aics[label] = aic
            fitted[label] = tuple(params)
            if aic < best_aic:
                best_name, best_aic, best_mean = label, aic, float(dist.mean(*params))
        cure = fit_cure(
            np.concatenate([days_fit, open_fit]),
            np.arange(len(days_fit) + len(open_fit)) < len(days_fit),
        )
        if cure is not None and cure.aic < best_aic - 2 and cure.cured_low > 0.01:
            # open deals older than nearly every close: a share that never closes
            rows.append(
                _row(
                    "days_to_close",
                    str(source),
                    cure.mean,
                    cure.low,
                    cure.high,
                    cure.events + cure.censored,
                    f"mean days from {start_col.removesuffix('_at')} to close among the deals "
                    f"that close: Weibull mixture cure model (lifelines), "
                    f"{cure.cured:.0%} (95% {cure.cured_low:.0%} to {cure.cured_high:.0%}) of "
                    f"the {cure.censored} still open never close; AIC {best_aic - cure.aic:.1f} "
                    f"below the best plain fit ({best_name}); the model draws an "
                    "exponential with this mean",
                )
            )
            continue
        total = float(days.sum() + open_days.sum())
        events = len(days)
        exp_mean = total / events
        # the exponential's exact interval, scaled to the chosen distribution's mean
        ratio = best_mean / exp_mean
        low = ratio * 2 * total / stats.chi2.ppf(0.5 + LEVEL / 2, 2 * events)
        high = ratio * 2 * total / stats.chi2.ppf((1 - LEVEL) / 2, 2 * events)
        gap = aics.get("exponential", math.nan) - best_aic
        chosen = _CLOSE_FITS[best_name]
        ks = (
            stats.kstest(days_fit, chosen.cdf, args=fitted[best_name]).statistic
            if best_name in fitted
            else math.nan
        )
        rows.append(
            _row(
                "days_to_close",
                str(source),
                best_mean,
                low,
                high,
                events + len(open_days),
                f"mean days from {start_col.removesuffix('_at')} to close (the model draws "
                f"an exponential with this mean); best fit by AIC: {best_name}"
                + ("" if best_name == "exponential" else f" (exponential's AIC +{gap:.1f})")
                + f", KS {ks:.3f} on the closed; {len(open_days)} still open, censored; "
                "interval: the exponential's exact chi-square interval, scaled to this mean",
            )
        )
    return rows


#: Most deals a time-to-close shape is fitted on; a larger history is subsampled at random
#: (closed and open alike, so the share still open is kept).
MAX_SHAPE_ROWS = 10_000


def _subsample(closed: np.ndarray, still_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`MAX_SHAPE_ROWS` of the two together, the same share of each."""
    total = len(closed) + len(still_open)
    if total <= MAX_SHAPE_ROWS:
        return closed, still_open
    rng = np.random.default_rng(0)
    share = MAX_SHAPE_ROWS / total

    def pick(values: np.ndarray) -> np.ndarray:
        k = max(1, round(len(values) * share)) if len(values) else 0
        return np.sort(rng.choice(values, size=k, replace=False)) if k else values

    return pick(closed), pick(still_open)


def _created_to_won(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Days from creation to won, by source, when the export dates no stage in between.

    Every lead not won is censored at the end of the data (a lost one too: it never
    wins), and a Weibull mixture cure model splits off the share that never wins, so a
    lead too recent to have closed is neither lost nor won, and the mean is that of the
    leads that win. It includes the days before the team first reached the lead, which
    the model counts before qualification: where leads are called within days and
    deals take weeks, the difference is small.
    """
    created = _dates(frame, "created_at")
    won = _dates(frame, "won_at")
    end = as_of(frame)
    rows: list[dict[str, Any]] = []
    for source, index in frame.groupby("source", sort=True).groups.items():
        c, w = created.loc[index], won.loc[index]
        events = w.notna().to_numpy()
        days = np.where(
            events, ((w - c) / _DAY).to_numpy(float), ((end - c) / _DAY).to_numpy(float)
        )
        days = np.nan_to_num(days, nan=0.0)
        won_days, open_days = _subsample(days[events], days[~events])
        fit = fit_cure(
            np.concatenate([won_days, open_days]),
            np.arange(len(won_days) + len(open_days)) < len(won_days),
        )
        if fit is None:
            continue
        rows.append(
            _row(
                "days_to_close",
                str(source),
                fit.mean,
                fit.low,
                fit.high,
                len(index),
                "mean days from creation to won among the leads that win (no stage dates in "
                "between): Weibull mixture cure model (lifelines), leads not won censored at "
                f"the end of the data, {1 - fit.cured:.1%} win eventually; interval from the "
                "fit's covariance; the model draws an exponential with this mean",
            )
        )
    return rows


def deal_size_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Lognormal deal size of won leads by source: mean (Cox interval) and sigma (chi-square)."""
    if "amount" not in frame:
        return []
    won = stage_flags(frame).get("won", (pd.Series(True, index=frame.index), None))[0]
    rows: list[dict[str, Any]] = []
    for source, index in frame.groupby("source", sort=True).groups.items():
        amounts = frame.loc[index, "amount"][won.loc[index]].astype(float)
        amounts = amounts[amounts > 0].to_numpy()
        n = len(amounts)
        if n < 3:
            continue
        shape, _, scale = stats.lognorm.fit(amounts, floc=0)
        mu, sigma = math.log(scale), float(shape)
        mean = math.exp(mu + sigma**2 / 2)
        se = math.sqrt(sigma**2 / n + sigma**4 / (2 * (n - 1)))
        centre = mu + sigma**2 / 2
        rows.append(
            _row(
                "deal_size.mean_usd",
                str(source),
                mean,
                math.exp(centre - _Z * se),
                math.exp(centre + _Z * se),
                n,
                "lognormal MLE (scipy), Cox interval",
            )
        )
        s2 = sigma**2 * n
        rows.append(
            _row(
                "deal_size.sigma",
                str(source),
                sigma,
                math.sqrt(s2 / stats.chi2.ppf(0.5 + LEVEL / 2, n - 1)),
                math.sqrt(s2 / stats.chi2.ppf((1 - LEVEL) / 2, n - 1)),
                n,
                "lognormal MLE (scipy), chi-square interval",
            )
        )
    return rows


def churn_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Monthly churn of won customers by source: exponential rate, exact Poisson interval."""
    if "churned_at" not in frame or "won_at" not in frame:
        return []
    won_at = _dates(frame, "won_at")
    churned = _dates(frame, "churned_at")
    end = as_of(frame)
    month = pd.Timedelta(days=365.25 / 12)
    rows: list[dict[str, Any]] = []
    for source, index in frame.groupby("source", sort=True).groups.items():
        w = won_at.loc[index].dropna()
        if len(w) < 5:
            continue
        c = churned.loc[w.index]
        exposure = float((((c.fillna(end)) - w) / month).clip(lower=0).sum())
        events = int(c.notna().sum())
        if exposure <= 0:
            continue
        rate = events / exposure
        lo = stats.chi2.ppf((1 - LEVEL) / 2, 2 * events) / 2 / exposure if events else 0.0
        hi = stats.chi2.ppf(0.5 + LEVEL / 2, 2 * events + 2) / 2 / exposure
        rows.append(
            _row(
                "monthly_churn",
                str(source),
                -math.expm1(-rate),
                -math.expm1(-lo),
                min(-math.expm1(-hi), 1.0),
                len(w),
                f"exponential, {events} churned over {exposure:.0f} customer-months",
            )
        )
    return rows


def response_minutes(frame: pd.DataFrame) -> pd.Series:
    """Minutes from creation to the first response (NaN where there was none)."""
    if "first_response_minutes" in frame:
        return frame["first_response_minutes"].astype(float)
    if "first_response_at" in frame:
        return (_dates(frame, "first_response_at") - _dates(frame, "created_at")) / pd.Timedelta(
            minutes=1
        )
    return pd.Series(np.nan, index=frame.index)


def response_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """First-response delay: median (order-statistic interval), mean and the share within 5 min."""
    minutes = response_minutes(frame).dropna()
    minutes = minutes[minutes >= 0].to_numpy(float)
    n = len(minutes)
    if n < 5:
        return []
    ordered = np.sort(minutes)
    lo_i = int(stats.binom.ppf((1 - LEVEL) / 2, n, 0.5))
    hi_i = min(int(stats.binom.ppf(0.5 + LEVEL / 2, n, 0.5)), n - 1)
    rows = [
        _row(
            "first_response_minutes.median",
            "all",
            float(np.median(minutes)),
            ordered[lo_i],
            ordered[hi_i],
            n,
            "median, order-statistic interval",
        ),
        _row(
            "first_response_minutes.mean",
            "all",
            float(minutes.mean()),
            float(minutes.mean() - _Z * minutes.std(ddof=1) / math.sqrt(n)),
            float(minutes.mean() + _Z * minutes.std(ddof=1) / math.sqrt(n)),
            n,
            "mean, normal",
        ),
    ]
    k = int((minutes <= 5).sum())
    lo, hi = wilson(k, n)
    rows.append(_row("first_response_within_5_minutes", "all", k / n, lo, hi, n, "share, Wilson"))
    # the shape of the delays: the best of four distributions by AIC, on positive delays
    positive = minutes[minutes > 0]
    fits: dict[str, tuple[float, float]] = {}
    params_of: dict[str, tuple[float, ...]] = {}
    if len(positive) >= 20 and len(np.unique(positive)) >= 5:
        for label, dist in _CLOSE_FITS.items():
            try:
                with np.errstate(all="ignore"):
                    params = dist.fit(positive, floc=0)
                    ll = float(dist.logpdf(positive, *params).sum())
            except (ValueError, RuntimeError, FloatingPointError):
                continue
            if math.isfinite(ll):
                fits[label] = (2 * (len(params) - 1) - 2 * ll, float(dist.median(*params)))
                params_of[label] = tuple(params)
    if fits:
        best = min(fits, key=lambda name: fits[name][0])
        ks = stats.kstest(positive, _CLOSE_FITS[best].cdf, args=params_of[best]).statistic
        others = ", ".join(f"{k} +{v[0] - fits[best][0]:.0f}" for k, v in fits.items() if k != best)
        rows.append(
            _row(
                "first_response_minutes.fitted_median",
                "all",
                fits[best][1],
                math.nan,
                math.nan,
                len(positive),
                f"{best} by lowest AIC ({others}); KS {ks:.3f}; "
                f"{n - len(positive)} answered at once left out",
            )
        )
    return rows


@dataclass(frozen=True)
class DecayFit:
    """Maximum-likelihood speed-to-lead decay with a profile-likelihood interval for tau."""

    tau_minutes: float
    tau_low: float
    tau_high: float
    floor: float
    floor_low: float
    floor_high: float
    first_probability: float
    retry_probability: float
    n: int
    outcome: str


def _decay_nll(
    theta: np.ndarray,
    d: np.ndarray,
    k: np.ndarray,
    y: np.ndarray,
    log_tau: float | None = None,
    w: np.ndarray | None = None,
) -> float:
    c1 = special.expit(theta[0])
    c2 = special.expit(theta[1])
    phi = special.expit(theta[2])
    tau = math.exp(theta[3] if log_tau is None else log_tau)
    q = phi + (1 - phi) * np.exp(-d / tau)
    p1 = np.clip(c1 * q, 1e-12, 1 - 1e-12)
    p2 = np.clip(c2 * q, 1e-12, 1 - 1e-12)
    # not reached in k attempts; or reached at attempt k, after k - 1 misses
    miss = np.log1p(-p1) + (k - 1) * np.log1p(-p2)
    first = k <= 1
    hit = np.where(
        first, np.log(p1), np.log1p(-p1) + np.maximum(k - 2, 0) * np.log1p(-p2) + np.log(p2)
    )
    ll = np.where(y, hit, miss)
    return float(-(ll * w).sum() if w is not None else -ll.sum())


def _grouped(
    d: np.ndarray, k: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leads grouped by attempts, outcome and a fine log bin of the delay (about 2% wide).

    The likelihood of a group is its size times that of its mean delay, so large
    exports fit in the time of small ones.
    """
    positive = d[d > 0]
    if len(positive) == 0:
        bins = np.zeros(len(d), dtype=int)
    else:
        edges = np.geomspace(max(float(positive.min()), 1e-3), float(positive.max()) * 1.001, 800)
        bins = np.where(d > 0, np.searchsorted(edges, d) + 1, 0)
    table = pd.DataFrame({"b": bins, "k": k, "y": y, "d": d})
    grouped = table.groupby(["b", "k", "y"], sort=False).agg(d=("d", "mean"), w=("d", "size"))
    keys = grouped.index.to_frame(index=False)
    return (
        grouped["d"].to_numpy(float),
        keys["k"].to_numpy(float),
        keys["y"].to_numpy(bool),
        grouped["w"].to_numpy(float),
    )


def fit_decay(frame: pd.DataFrame, outcome: str = "contacted") -> DecayFit | None:
    """Speed-to-lead decay q(d) = phi + (1 - phi) exp(-d / tau) by maximum likelihood.

    A lead first answered after d minutes is reached at its k-th attempt
    (``attempts``, as the model stops dialling a lead once it is reached) with
    probability (1 - c1 q)(1 - c2 q)^(k-2) c2 q, or c1 q at the first, and not reached in
    k attempts with probability (1 - c1 q)(1 - c2 q)^(k-1); c1 and c2 are the chances of
    the first and of each later attempt at no delay (the model's contact and retry
    probabilities). Without an attempts column every lead counts one attempt. tau's
    interval is the profile likelihood (chi-square, 1 degree of freedom); phi's comes
    from the observed information.

    Returns None when the data lacks response times or the outcome.
    """
    flags = stage_flags(frame)
    if outcome not in flags:
        return None
    d = response_minutes(frame)
    ok = d.notna() & (d >= 0)
    if "attempts" in frame:
        attempts = frame["attempts"].astype(float)
        ok &= attempts.fillna(0) >= 1
        k = attempts.where(ok).clip(lower=1).to_numpy(float)
    else:
        k = np.ones(len(frame))
    if int(ok.sum()) < 50:
        return None
    y = flags[outcome][0].to_numpy(bool)[ok.to_numpy()]
    dd = d[ok].to_numpy(float)
    kk = k[ok.to_numpy()]
    if y.all() or not y.any() or len(np.unique(dd)) < 5:
        return None  # no outcome variation, or delays too alike to tell a decay
    scale = max(float(np.median(dd)), 1.0)
    dd, kk, y, w = _grouped(dd, kk, y)
    starts = [math.log(scale * f) for f in (0.5, 2.0, 8.0)]
    best = None
    for log_tau in starts:
        res = optimize.minimize(
            _decay_nll,
            np.array([0.0, -1.0, -1.0, log_tau]),
            args=(dd, kk, y, None, w),
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-5, "fatol": 1e-6},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    # Nelder-Mead can stall on a ridge of (phi, tau): restart from where it stopped
    for _ in range(3):
        again = optimize.minimize(
            _decay_nll,
            best.x,
            args=(dd, kk, y, None, w),
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-7},
        )
        if again.fun >= best.fun - 1e-6:
            break
        best = again
    theta = best.x
    nll0 = float(best.fun)
    # profile likelihood of log tau: where it rises by chi2(1)/2 on each side
    cut = stats.chi2.ppf(LEVEL, 1) / 2
    x0 = theta[:3]

    def excess(g: float) -> float:
        r = optimize.minimize(
            lambda t: _decay_nll(np.append(t, 0.0), dd, kk, y, log_tau=g, w=w),
            x0,
            method="Nelder-Mead",
            options={"maxiter": 2000, "xatol": 1e-4, "fatol": 1e-5},
        )
        return float(r.fun) - nll0 - cut

    bounds = []
    for sign in (-1.0, 1.0):
        step, far, near = 0.25, float(theta[3]), float(theta[3])
        found = False
        limit = math.log(0.1) if sign < 0 else math.log(1e6)
        while not found and sign * (limit - far) > 0:
            near = far
            far = max(far - step, limit) if sign < 0 else min(far + step, limit)
            found = excess(far) > 0
            step *= 1.5
        if found and excess(near) < 0:
            bounds.append(optimize.brentq(excess, min(near, far), max(near, far), xtol=1e-3))
        elif found:  # the profile is rough here: take the step's far end, a wider interval
            bounds.append(far)
        else:
            bounds.append(-math.inf if sign < 0 else math.inf)
    tau_lo, tau_hi = math.exp(bounds[0]), math.exp(bounds[1])
    # phi: a numerical second derivative on the logit scale
    h = 1e-3
    e = np.array([0.0, 0.0, h, 0.0])
    second = (
        _decay_nll(theta + e, dd, kk, y, w=w) - 2 * nll0 + _decay_nll(theta - e, dd, kk, y, w=w)
    ) / h**2
    se = 1 / math.sqrt(second) if second > 0 else math.inf
    phi_lo = float(special.expit(theta[2] - _Z * se))
    phi_hi = float(special.expit(theta[2] + _Z * se))
    return DecayFit(
        tau_minutes=math.exp(theta[3]),
        tau_low=tau_lo,
        tau_high=tau_hi,
        floor=float(special.expit(theta[2])),
        floor_low=phi_lo,
        floor_high=phi_hi,
        first_probability=float(special.expit(theta[0])),
        retry_probability=float(special.expit(theta[1])),
        n=int(ok.sum()),
        outcome=outcome,
    )


def decay_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for tau and phi (``process.decay``) when response times and outcomes both exist."""
    outcome = "contacted" if "contacted" in stage_flags(frame) else "qualified"
    fit = fit_decay(frame, outcome)
    if fit is None:
        return []
    how = f"maximum likelihood on {outcome} given first-response delay and attempts"
    return [
        _row(
            "process.decay.tau_minutes",
            "all",
            fit.tau_minutes,
            fit.tau_low,
            fit.tau_high,
            fit.n,
            how + "; profile-likelihood interval",
        ),
        _row(
            "process.decay.floor",
            "all",
            fit.floor,
            fit.floor_low,
            fit.floor_high,
            fit.n,
            how + "; Wald interval on the logit",
        ),
    ]


def team_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Reps from owners: the median number of owners active in 4 weeks, and leads per rep."""
    if "owner" not in frame or frame["owner"].notna().sum() < 10:
        return []
    created = _dates(frame, "created_at")
    owned = frame["owner"].notna()
    # owners active in each 4-week period (a week is too short to see every rep when
    # volume is low)
    period = ((created[owned] - created.min()) / pd.Timedelta(weeks=4)).astype(int)
    per_week = frame.loc[owned, "owner"].groupby(period).nunique()
    total = int(frame.loc[owned, "owner"].nunique())
    reps = float(np.median(per_week.to_numpy()))
    rows = [
        _row(
            "team.reps",
            "all",
            round(reps),
            float(per_week.quantile(0.1)),
            float(per_week.quantile(0.9)),
            int(owned.sum()),
            f"median owners active in 4 weeks (10-90% of periods); {total} owners in all",
        ),
    ]
    leads_per_rep = owned.sum() / weeks_observed(frame) / max(reps, 1.0)
    rows.append(
        _row(
            "leads_per_rep_per_week",
            "all",
            leads_per_rep,
            leads_per_rep,
            leads_per_rep,
            int(owned.sum()),
            "owned leads / weeks / reps",
        )
    )
    if "attempts" in frame:
        att = frame["attempts"].astype(float).dropna()
        if len(att) > 1:
            half = _Z * att.std(ddof=1) / math.sqrt(len(att))
            rows.append(
                _row(
                    "attempts_per_lead",
                    "all",
                    att.mean(),
                    att.mean() - half,
                    att.mean() + half,
                    len(att),
                    "mean, normal",
                )
            )
    return rows


def score_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """AUC of the score against qualification (or winning), Hanley-McNeil interval."""
    if "score" not in frame:
        return []
    flags = stage_flags(frame)
    outcome = next((s for s in ("qualified", "won", "opportunity") if s in flags), None)
    if outcome is None:
        return []
    score = frame["score"].astype(float)
    ok = score.notna()
    if outcome == "qualified" and "contacted" in flags:
        ok &= flags["contacted"][0]  # qualification is only decided for leads reached
    y = flags[outcome][0][ok].to_numpy(bool)
    s = score[ok].to_numpy(float)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 5 or n0 < 5:
        return []
    among = " among contacted" if outcome == "qualified" and "contacted" in flags else ""
    u = stats.mannwhitneyu(s[y], s[~y], alternative="two-sided").statistic
    auc = float(u) / (n1 * n0)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    half = _Z * math.sqrt(max(var, 0.0))
    return [
        _row(
            "process.routing.score_auc",
            "all",
            auc,
            max(auc - half, 0.0),
            min(auc + half, 1.0),
            n1 + n0,
            f"Mann-Whitney AUC against {outcome}{among}, Hanley-McNeil interval",
        )
    ]


def estimates(
    frame: pd.DataFrame, outcomes: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every direct estimate the data allows, as a tidy table, and the per-source profiles.

    Parameters
    ----------
    frame
        Every lead: the volumes.
    outcomes
        The leads whose outcomes were recorded (default ``frame``): conversion, timing,
        value, team and score (see :mod:`simfunnel.calibration.recording`).

    Returns
    -------
    (table, extras)
        ``table`` has the columns of :data:`ESTIMATE_COLUMNS`; ``extras`` holds the
        weekday and hour profiles and bursts per source (see :func:`volume_estimates`).
    """
    rows, extras = volume_estimates(frame)
    for part in (
        conversion_estimates,
        close_time_estimates,
        deal_size_estimates,
        churn_estimates,
        response_estimates,
        decay_estimates,
        team_estimates,
        score_estimates,
    ):
        rows += part(frame if outcomes is None else outcomes)
    return pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS)), extras

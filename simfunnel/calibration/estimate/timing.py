"""Timing: days to close, created to won (a cure-rate fit), and the first-response delay."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.calibration.estimate.censoring import _dates, as_of, resolved
from simfunnel.calibration.estimate.cure import LEVEL, fit_cure
from simfunnel.calibration.estimate.intervals import _Z, _row, wilson
from simfunnel.calibration.estimate.volume import _DAY

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

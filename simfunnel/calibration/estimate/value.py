"""Value: deal size of won leads, and monthly churn."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from simfunnel.calibration.estimate.censoring import _dates, as_of, stage_flags
from simfunnel.calibration.estimate.cure import LEVEL
from simfunnel.calibration.estimate.intervals import _Z, _row


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

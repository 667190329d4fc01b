"""A source's weekly lead counts and what they show: its baseline and its campaigns.

Weekly counts are taken backward from the end of the history (its last midnight), so
that the last week is a whole one. The baseline is a log-linear Poisson regression of
the counts on time (the trend) or flat, its standard errors widened by the counts'
overdispersion (quasi-Poisson: the Pearson statistic over its degrees of freedom,
when above 1). Campaign weeks are runs of weeks far above the baseline (Poisson
p < 1e-4 and more than 3.7 standard deviations, overdispersed by the median squared
Pearson residual so that campaigns cannot hide themselves), found in passes that
refit the baseline without them; each is measured against that baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Confidence level of every interval (as in :mod:`simfunnel.calibration.estimate`).
LEVEL = 0.95
_Z = float(stats.norm.ppf(0.5 + LEVEL / 2))
#: A campaign week: Poisson p below this, and this many overdispersed sd above the baseline.
HOT_P = 1e-4
HOT_SD = float(stats.norm.isf(HOT_P))
#: Fewest whole weeks (and leads) for a trend or a campaign to be looked for.
MIN_WEEKS = 8
MIN_LEADS = 30
#: The schema's largest burst multiplier; above it a campaign brings its own leads.
MAX_MULTIPLIER = 100.0
DAYS_PER_YEAR = 365.25
_WEEK = pd.Timedelta(weeks=1)
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Campaign:
    """A run of weeks far above the baseline, measured against it."""

    start: date
    end: date
    leads: int
    baseline: float  # leads the baseline brings over the same weeks
    multiplier: float
    low: float
    high: float

    @property
    def days(self) -> int:
        """Days the campaign lasts, its first and last included."""
        return (self.end - self.start).days + 1

    @property
    def own_leads(self) -> bool:
        """Whether the scenario gets the campaign's own leads, not a multiplier.

        So when the multiplier would exceed :data:`MAX_MULTIPLIER` (or the baseline is 0).
        """
        return not self.multiplier <= MAX_MULTIPLIER

    def burst(self) -> dict[str, Any]:
        """The scenario's burst: the multiplier, or the extra leads a week on top."""
        if self.own_leads:
            extra = max(self.leads - self.baseline, 0.0) / (self.days / 7.0)
            return {"start": self.start, "end": self.end, "extra_leads_per_week": extra}
        return {"start": self.start, "end": self.end, "multiplier": self.multiplier}


# ---------------------------------------------------------------- weekly counts


def created_dates(frame: pd.DataFrame) -> pd.Series:
    """``created_at`` as naive UTC datetimes."""
    values = frame["created_at"]
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def history_end(frame: pd.DataFrame, created: pd.Series | None = None) -> pd.Timestamp:
    """The end of the history: ``frame.attrs["as_of"]``, else the last lead created."""
    given = frame.attrs.get("as_of")
    if given is not None:
        return pd.Timestamp(given)
    return pd.Timestamp((created_dates(frame) if created is None else created).max())


def weekly_counts(when: pd.Series, first: pd.Timestamp, anchor: pd.Timestamp) -> np.ndarray:
    """Leads in each whole week from ``first`` to ``anchor``, counted backward from it."""
    n = int((anchor - first) // _WEEK)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    back = ((anchor - when) // _WEEK).to_numpy()  # 0: the last week
    inside = (when < anchor).to_numpy() & (back < n)
    counts = np.bincount(back[inside].astype(np.int64), minlength=n)[:n]
    return counts[::-1].copy()


# ------------------------------------------------------------------ Poisson fits


def _loglinear(counts: np.ndarray, years: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Poisson regression log E[count] = a + b * years, by Newton's method.

    Returns ``(a, b, cov)``, ``cov`` the inverse Fisher information (not yet widened
    by overdispersion). Requires a positive total count.
    """
    c = counts.astype(float)
    x = np.column_stack([np.ones_like(years), years])
    beta = np.array([math.log(c.mean()), 0.0])
    for _ in range(100):
        mu = np.exp(np.clip(x @ beta, -700, 700))
        info = x.T @ (mu[:, None] * x)
        step = np.linalg.solve(info, x.T @ (c - mu))
        beta = beta + step
        if float(np.abs(step).max()) < 1e-10:
            break
    mu = np.exp(np.clip(x @ beta, -700, 700))
    cov = np.linalg.pinv(x.T @ (mu[:, None] * x))
    return float(beta[0]), float(beta[1]), cov


def _dispersion(counts: np.ndarray, mu: np.ndarray, params: int) -> float:
    """Pearson chi-square over its degrees of freedom, at least 1."""
    dof = len(counts) - params
    if dof <= 0:
        return 1.0
    positive = mu > 0
    pearson = float((((counts - mu) ** 2)[positive] / mu[positive]).sum())
    return max(1.0, pearson / dof)


#: The median of a chi-square with one degree of freedom.
_CHI2_MEDIAN = float(stats.chi2.ppf(0.5, 1))


def _hot(counts: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Weeks far above the baseline ``mu``: campaign weeks.

    The overdispersion they are measured with is the median squared Pearson residual
    over its median under the Poisson, so that the campaign weeks cannot hide
    themselves by inflating it.
    """
    positive = mu > 0
    pearson = ((counts - mu) ** 2)[positive] / mu[positive]
    phi = max(1.0, float(np.median(pearson)) / _CHI2_MEDIAN) if positive.any() else 1.0
    sd = np.sqrt(np.maximum(phi * mu, 1e-300))
    return (stats.poisson.sf(counts - 1, mu) < HOT_P) & ((counts - mu) / sd > HOT_SD)


@dataclass(frozen=True)
class Baseline:
    """A source's weekly baseline: expected counts, the weeks it is fitted on, its level."""

    mu: np.ndarray  # expected leads each week
    use: np.ndarray  # weeks the baseline is fitted on (not campaign weeks)
    phi: float
    level: tuple[float, float, float]  # a week's leads at the end, with its interval
    trend: tuple[float, float, float] | None  # log growth a year, with its interval


def _fit(counts: np.ndarray, years: np.ndarray, trend: bool) -> Baseline:
    """The baseline (log-linear with ``trend``, else flat), fitted without campaign weeks."""
    use = np.ones(len(counts), dtype=bool)
    for _ in range(4):
        base = _fit_on(counts, years, use, trend)
        hot = _hot(counts, base.mu)
        if (~hot).sum() < MIN_WEEKS:
            hot[:] = False
        if np.array_equal(~hot, use):
            return base
        use = ~hot
    return _fit_on(counts, years, use, trend)


def _fit_on(counts: np.ndarray, years: np.ndarray, use: np.ndarray, trend: bool) -> Baseline:
    c, t = counts[use], years[use]
    total = float(c.sum())
    if total == 0:
        zero = np.zeros(len(counts))
        return Baseline(zero, use, 1.0, (0.0, 0.0, poisson_high(0) / len(c)), None)
    if not trend:
        mu = np.full(len(counts), total / len(c))
        phi = _dispersion(c.astype(float), mu[use], 1)
        se = math.sqrt(phi / total)
        mean = total / len(c)
        level = (mean, mean * math.exp(-_Z * se), mean * math.exp(_Z * se))
        return Baseline(mu, use, phi, level, None)
    a, b, cov = _loglinear(c, t)
    mu = np.exp(a + b * years)
    phi = _dispersion(c.astype(float), mu[use], 2)
    se_a, se_b = (math.sqrt(max(cov[i, i], 0.0) * phi) for i in (0, 1))
    level = (math.exp(a), math.exp(a - _Z * se_a), math.exp(a + _Z * se_a))
    return Baseline(mu, use, phi, level, (b, b - _Z * se_b, b + _Z * se_b))


def poisson_high(count: int) -> float:
    """The upper end of the exact 95% interval of a Poisson mean, given ``count``."""
    return float(stats.chi2.ppf(0.5 + LEVEL / 2, 2 * count + 2) / 2)


def poisson_low(count: int) -> float:
    """The lower end of the exact 95% interval of a Poisson mean, given ``count``."""
    return float(stats.chi2.ppf((1 - LEVEL) / 2, 2 * count) / 2) if count else 0.0


def _campaigns(
    counts: np.ndarray, base: Baseline, anchor: pd.Timestamp, when: pd.Series
) -> list[Campaign]:
    """Runs of campaign weeks, each measured against the baseline over its weeks."""
    out: list[Campaign] = []
    n = len(counts)
    i = 0
    while i < n:
        if base.use[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not base.use[j + 1]:
            j += 1
        k = int(counts[i : j + 1].sum())
        expected = float(base.mu[i : j + 1].sum())
        first = anchor - (n - i) * _WEEK
        last = anchor - (n - j - 1) * _WEEK - _DAY
        if expected > 0:
            mult, low, high = k / expected, poisson_low(k) / expected, poisson_high(k) / expected
        else:
            mult = low = high = math.inf
        campaign = Campaign(first.date(), last.date(), k, expected, mult, low, high)
        if campaign.own_leads and k:
            campaign = _trimmed(campaign, when[(when >= first) & (when < last + _DAY)])
        out.append(campaign)
        i = j + 1
    return out


def _trimmed(campaign: Campaign, when: pd.Series) -> Campaign:
    """A campaign with its own leads, from the day of its first lead to that of its last.

    Its weeks are those the weekly counts found; its leads a week are spread over the
    days it actually ran.
    """
    start, end = when.min().date(), when.max().date()
    days = (end - start).days + 1
    baseline = campaign.baseline * days / campaign.days
    k = campaign.leads
    if baseline <= 0:
        return Campaign(start, end, k, 0.0, math.inf, math.inf, math.inf)
    low, high = poisson_low(k) / baseline, poisson_high(k) / baseline
    return Campaign(start, end, k, baseline, k / baseline, low, high)


def analyse(
    counts: np.ndarray, anchor: pd.Timestamp, when: pd.Series
) -> tuple[Baseline, list[Campaign]]:
    """The baseline (with its trend when significant) and the campaigns above it."""
    years = (np.arange(len(counts)) - len(counts) + 0.5) * 7.0 / DAYS_PER_YEAR
    base = _fit(counts, years, trend=True)
    if base.trend is None or base.trend[1] <= 0 <= base.trend[2]:
        base = _fit(counts, years, trend=False)
    return base, _campaigns(counts, base, anchor, when)


def started_late(counts: np.ndarray, base: Baseline) -> bool:
    """Whether the source started after the history did.

    So when its leading weeks without a lead are improbable under its baseline after
    them (Poisson p < :data:`HOT_P`).

    Campaign weeks do not count towards the baseline, so a source seen only in
    campaigns did not start with its first one.
    """
    nonzero = np.flatnonzero(counts)
    if not len(nonzero) or nonzero[0] == 0:
        return False
    gap = int(nonzero[0])
    after = base.use.copy()
    after[: gap + 1] = False  # the first week with a lead may be a part week
    rate = float(counts[after].mean()) if after.any() else 0.0
    return gap * rate > -math.log(HOT_P)

"""Volume per source: its level now, its trend, its campaigns, its weekday and hour profile.

Weekly counts are taken backward from the end of the history (its last midnight), so
that the last week is a whole one. A log-linear Poisson regression of the counts on
time gives the trend; its standard error is widened by the counts' overdispersion
(quasi-Poisson: the Pearson statistic over its degrees of freedom, when above 1). The
trend is kept when its 95% interval excludes 0; the baseline is then the fitted level
at the end of the history, not the whole-period mean (which, on a history that grew
3x in a year, runs about 45% below the recent level). Without a trend the baseline is
flat.

Campaign weeks are runs of weeks far above that baseline (Poisson p < 1e-4 and more
than 3.7 overdispersed standard deviations), found in passes that refit the baseline
without them. Each is measured against the same baseline the scenario applies: as a
multiplier of it (the leads of the campaign over the baseline's), or, when that
exceeds the schema's cap of 100 (a source seen only in campaigns), as the campaign's
own leads a week on top. No campaign's leads are dropped. Campaigns are dated: a
scenario run past the history does not replay them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
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

    @property
    def campaign_leads(self) -> float:
        """Leads the campaigns brought over the baseline's."""
        return float(sum(c.leads - c.baseline for c in self.campaigns))

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
class _Baseline:
    mu: np.ndarray  # expected leads each week
    use: np.ndarray  # weeks the baseline is fitted on (not campaign weeks)
    phi: float
    level: tuple[float, float, float]  # a week's leads at the end, with its interval
    trend: tuple[float, float, float] | None  # log growth a year, with its interval


def _fit(counts: np.ndarray, years: np.ndarray, trend: bool) -> _Baseline:
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


def _fit_on(counts: np.ndarray, years: np.ndarray, use: np.ndarray, trend: bool) -> _Baseline:
    c, t = counts[use], years[use]
    total = float(c.sum())
    if total == 0:
        zero = np.zeros(len(counts))
        return _Baseline(zero, use, 1.0, (0.0, 0.0, _poisson_high(0) / len(c)), None)
    if not trend:
        mu = np.full(len(counts), total / len(c))
        phi = _dispersion(c.astype(float), mu[use], 1)
        se = math.sqrt(phi / total)
        mean = total / len(c)
        level = (mean, mean * math.exp(-_Z * se), mean * math.exp(_Z * se))
        return _Baseline(mu, use, phi, level, None)
    a, b, cov = _loglinear(c, t)
    mu = np.exp(a + b * years)
    phi = _dispersion(c.astype(float), mu[use], 2)
    se_a, se_b = (math.sqrt(max(cov[i, i], 0.0) * phi) for i in (0, 1))
    level = (math.exp(a), math.exp(a - _Z * se_a), math.exp(a + _Z * se_a))
    return _Baseline(mu, use, phi, level, (b, b - _Z * se_b, b + _Z * se_b))


def _poisson_high(count: int) -> float:
    return float(stats.chi2.ppf(0.5 + LEVEL / 2, 2 * count + 2) / 2)


def _poisson_low(count: int) -> float:
    return float(stats.chi2.ppf((1 - LEVEL) / 2, 2 * count) / 2) if count else 0.0


def _campaigns(
    counts: np.ndarray, base: _Baseline, anchor: pd.Timestamp, when: pd.Series
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
            mult, low, high = k / expected, _poisson_low(k) / expected, _poisson_high(k) / expected
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
    low, high = _poisson_low(k) / baseline, _poisson_high(k) / baseline
    return Campaign(start, end, k, baseline, k / baseline, low, high)


# ------------------------------------------------------------------ per source


def _analyse(
    counts: np.ndarray, anchor: pd.Timestamp, when: pd.Series
) -> tuple[_Baseline, list[Campaign]]:
    """The baseline (with its trend when significant) and the campaigns above it."""
    years = (np.arange(len(counts)) - len(counts) + 0.5) * 7.0 / DAYS_PER_YEAR
    base = _fit(counts, years, trend=True)
    if base.trend is None or base.trend[1] <= 0 <= base.trend[2]:
        base = _fit(counts, years, trend=False)
    return base, _campaigns(counts, base, anchor, when)


def _started(counts: np.ndarray, base: _Baseline) -> bool:
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


def source_volume(name: str, when: pd.Series, first: pd.Timestamp, end: pd.Timestamp) -> Volume:
    """The volume of one source whose leads were created ``when``, history ``first`` to ``end``."""
    n = len(when)
    whole = max(float((end - first) / _DAY) / 7.0, 1.0 / 7.0)
    anchor = end.floor("D")
    counts = weekly_counts(when, first, anchor)
    started = None
    if len(counts) >= MIN_WEEKS and counts.sum() >= MIN_LEADS:
        base, campaigns = _analyse(counts, anchor, when)
        if _started(counts, base):
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
        _poisson_low(n) / weeks,
        _poisson_high(n) / weeks,
        anchor.date(),
        history_start=first.date(),
        started=None if started is None else started.date(),
    )
    if len(counts) < MIN_WEEKS or counts.sum() < MIN_LEADS:
        return flat
    if started is not None:
        base, campaigns = _analyse(counts, anchor, when)
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


def _row(
    field_name: str, source: str, estimate: float, low: float, high: float, n: int, method: str
) -> dict[str, Any]:
    return {
        "field": field_name,
        "source": source,
        "estimate": float(estimate),
        "low": float(low),
        "high": float(high),
        "n": int(n),
        "method": method,
        "from_data": True,
    }


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
                    max(_poisson_low(c.leads) - c.baseline, 0.0),
                    _poisson_high(c.leads) - c.baseline,
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

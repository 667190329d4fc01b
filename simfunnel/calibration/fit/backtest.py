"""The back-test: calibrate on the first part of the history, forecast the rest, compare.

The verdict states the coverage of the prediction intervals and the bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from simfunnel.calibration.export import to_crm
from simfunnel.calibration.fit.simulator import _pool, _seeds
from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import Backend, Done
from simfunnel.parameters import Scenario, load_scenario
from simfunnel.simulation import simulate

#: What the back-test counts in the held-out window, by the date that counts it.
BACKTEST_COUNTS: dict[str, str] = {
    "leads": "created_at",
    "opportunities": "opportunity_at",
    "wins": "won_at",
}


@dataclass(frozen=True)
class Backtest:
    """A forecast of the held-out end of the history against what happened.

    Attributes
    ----------
    table
        Per source (and ``all``) and count (leads, opportunities, wins in the held-out
        window): ``actual``, ``forecast`` (mean over the replications), ``low`` and
        ``high`` (95% prediction interval of one realisation), ``error`` (forecast
        over actual, minus one) and ``inside``.
    cutoff, end
        The held-out window.
    scenario
        The scenario calibrated on the history before ``cutoff``.
    verdict
        One sentence: the error of the totals, and how many actual counts fell inside
        their intervals.
    """

    table: pd.DataFrame
    cutoff: pd.Timestamp
    end: pd.Timestamp
    scenario: Scenario
    verdict: str


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return values.astype("datetime64[ns]")


def _end_of_data(frame: pd.DataFrame) -> pd.Timestamp:
    """The export date if known, else the last lead created.

    Not the latest date of any kind: an export of one year's leads with their deals
    has deals closing after the last lead, and a window running past it would count
    leads the export could not hold as missing.
    """
    given = frame.attrs.get("as_of")
    if given is not None:
        return pd.Timestamp(given)
    return pd.Timestamp(_dates(frame, "created_at").max())


def history_before(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The frame as it would have been exported at ``cutoff``.

    Leads created before it; any later date blanked; a lead won or lost later is
    ``open``. (A lead lost before it became an opportunity has no date to tell when:
    it stays lost.)
    """
    created = _dates(frame, "created_at")
    out = frame.loc[created < cutoff].copy()
    for column in [c for c in out.columns if c.endswith("_at")]:
        when = _dates(out, column)
        out[column] = when.where(when < cutoff)
    if "status" in out.columns:
        status = out["status"].astype("string").str.lower()
        for column, value in (("won_at", "won"), ("lost_at", "lost")):
            if column in frame.columns:
                later = _dates(frame.loc[out.index], column) >= cutoff
                out.loc[later & status.eq(value).fillna(False), "status"] = "open"
    out = out.reset_index(drop=True)
    out.attrs["as_of"] = cutoff.isoformat()
    return out


def _window_counts(
    frame: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp
) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for what, column in BACKTEST_COUNTS.items():
        if column not in frame.columns:
            continue
        when = _dates(frame, column)
        inside = (when >= cutoff) & (when <= end)
        for name, n in frame.loc[inside, "source"].value_counts().items():
            counts[(str(name), what)] = int(n)
    return counts


@dataclass(frozen=True)
class _ForecastTask:
    scenario: dict[str, Any]
    seed: int
    cutoff: pd.Timestamp
    end: pd.Timestamp


def _forecast_counts(task: _ForecastTask) -> dict[tuple[str, str], int]:
    crm = to_crm(simulate(load_scenario(task.scenario), seed=task.seed))
    return _window_counts(crm, task.cutoff, task.end)


def _calibrated_scenario(train: pd.DataFrame, **options: Any) -> Scenario:
    from simfunnel.calibration.pipeline import calibrate

    return calibrate(train, simulate=True, **options).scenario


def backtest(
    frame: pd.DataFrame,
    holdout: float = 0.25,
    *,
    calibrate: Callable[[pd.DataFrame], Scenario] | None = None,
    replications: int = 20,
    backend: str | Backend[Any] | None = None,
    workers: int | None = None,
    progress: bool = False,
    seed: int | None = None,
    fit_options: dict[str, Any] | None = None,
) -> Backtest:
    """Calibrate on the first part of the history, forecast the rest, compare.

    Parameters
    ----------
    frame
        A canonical lead frame (the native CRM header).
    holdout
        Share of the history's time span held out at its end (0.25: the last quarter).
    calibrate
        Frame -> calibrated scenario; default :func:`simfunnel.calibrate` with the
        simulation-based fit (on the same backend).
    replications
        Forecast runs; their spread gives the prediction intervals.
    backend, workers
        Where the forecast runs execute.
    progress
        Show progress bars.
    seed
        Root seed of the forecast runs; default the calibrated scenario's.
    fit_options
        Passed to :func:`fit_by_simulation` by the default ``calibrate`` (e.g.
        ``replications``, ``max_evaluations``).

    Returns
    -------
    Backtest
        Leads, opportunities and wins per source in the held-out window: actual against
        forecast with its interval, and the error.
    """
    if not 0.0 < holdout < 1.0:
        raise SimfunnelError(f"holdout: must be between 0 and 1, got {holdout}")
    created = _dates(frame, "created_at")
    if created.isna().all():
        raise SimfunnelError("backtest: the frame has no created_at dates")
    first, end = created.min(), _end_of_data(frame)
    cutoff = first + (end - first) * (1.0 - holdout)
    train = history_before(frame, cutoff)
    if train.empty:
        raise SimfunnelError(f"backtest: no lead was created before the cutoff {cutoff}")
    if calibrate is None:
        options = {"backend": backend, "workers": workers, "progress": progress}
        options.update(fit_options or {})
        scenario = _calibrated_scenario(train, **options)
    else:
        scenario = calibrate(train)
    day0 = first.normalize()
    forecast = load_scenario(
        scenario,
        {
            "run.start_date": day0.date().isoformat(),
            "run.horizon_days": (end - day0) / pd.Timedelta(days=1),
            "run.accounting": "window",
        },
    )
    raw = forecast.model_dump(mode="json")
    tasks = [_ForecastTask(raw, s, cutoff, end) for s in _seeds(forecast, replications, seed)]
    done: dict[int, dict[tuple[str, str], int]] = {}
    with (
        _pool(backend, workers) as pool,
        tqdm(total=len(tasks), disable=not progress, desc="back-test", unit="run") as bar,
    ):
        for task, outcome in pool.map(_forecast_counts, tasks):
            if not isinstance(outcome, Done):
                raise SimfunnelError(f"a back-test run failed: {outcome.error}")
            done[task.seed] = outcome.value
            bar.update(1)
    runs = [done[task.seed] for task in tasks]  # in seed order, on any backend
    actual = _window_counts(frame, cutoff, end)
    sources = sorted(set(frame["source"].astype(str)))
    whats = [w for w, c in BACKTEST_COUNTS.items() if c in frame.columns]
    rows = []
    for name in [*sources, "all"]:
        for what in whats:
            if name == "all":
                sims = np.array([sum(r.get((s, what), 0) for s in sources) for r in runs], float)
                real = sum(actual.get((s, what), 0) for s in sources)
            else:
                sims = np.array([r.get((name, what), 0) for r in runs], float)
                real = actual.get((name, what), 0)
            rows.append(_forecast_row(name, what, real, sims))
    table = pd.DataFrame(rows)
    return Backtest(table, cutoff, end, scenario, _backtest_summary(table, holdout))


def _forecast_row(source: str, what: str, actual: int, sims: np.ndarray) -> dict[str, Any]:
    mean = float(sims.mean())
    sd = float(sims.std(ddof=1)) if len(sims) > 1 else 0.0
    half = float(stats.t.ppf(0.975, max(len(sims) - 1, 1))) * sd * math.sqrt(1 + 1 / len(sims))
    low, high = max(0.0, mean - half), mean + half
    return {
        "source": source,
        "count": what,
        "actual": actual,
        "forecast": mean,
        "low": low,
        "high": high,
        "error": mean / actual - 1.0 if actual > 0 else math.nan,
        "inside": bool(low <= actual <= high),
    }


#: A per-source error smaller than this is no bias worth a word.
BIAS_THRESHOLD = 0.10


def bias_phrase(table: pd.DataFrame, what: str) -> str | None:
    """'wins over-forecast in 9 of 9 sources, by 19% to 39%', when the errors lean one way.

    Said when at least two sources have a finite error, all of the same sign, the
    smallest over :data:`BIAS_THRESHOLD`; or when at least three quarters of them lean one
    way by more than that.
    """
    part = table[(table["source"] != "all") & (table["count"] == what)]
    errors = part["error"].to_numpy(float)
    errors = errors[np.isfinite(errors)]
    if len(errors) < 2:
        return None
    for sign, word in ((1.0, "over"), (-1.0, "under")):
        leaning = errors[sign * errors > BIAS_THRESHOLD]
        if len(leaning) == len(errors) or (len(errors) >= 4 and len(leaning) >= 0.75 * len(errors)):
            low, high = np.sort(np.abs(leaning))[[0, -1]]
            return (
                f"{what} {word}-forecast in {len(leaning)} of {len(errors)} sources, "
                f"by {low:.0%} to {high:.0%}"
            )
    return None


def _backtest_summary(table: pd.DataFrame, holdout: float) -> str:
    totals = table[table["source"] == "all"].set_index("count")
    parts = [
        f"{what} {row['error']:+.0%}"
        for what, row in totals.iterrows()
        if math.isfinite(row["error"])
    ]
    biases = [b for what in totals.index if (b := bias_phrase(table, str(what))) is not None]
    per_source = table[table["source"] != "all"]
    text = (
        f"forecasting the last {holdout:.0%} of the history from the rest: "
        f"{', '.join(parts)} against what happened; {int(per_source['inside'].sum())} of "
        f"{len(per_source)} actual counts per source inside their 95% prediction intervals"
    )
    if biases:
        text += "; biased: " + "; ".join(biases)
    return text

"""Simulated leads as a CRM export: the other direction of calibration.

:func:`to_crm` writes one row per lead created before the horizon, in simfunnel's
native CRM header (:data:`CRM_COLUMNS`), as a CRM would export it at the horizon: a
stage date after the horizon is not known yet, and a lead not decided by then is
``open``. ``simfunnel calibrate`` reads this header without a mapping, which gives
the round trip the tests use: calibrating on an export from a known scenario must
recover that scenario.

Columns
-------
lead_id
    ``L000001``... in order of creation.
source
    The source's name.
created_at, first_response_at, contacted_at, qualified_at, opportunity_at, won_at, lost_at
    Datetimes to the second, from ``run.start_date`` plus the simulated hours
    (empty when the lead never reached the stage by the horizon). An opportunity opens
    when a lead qualifies (the model's qualified -> opportunity step is immediate), so
    ``opportunity_at`` equals ``qualified_at`` when both are set. ``lost_at`` is the
    close date of a lost opportunity; a lead lost before it became an opportunity
    (disqualified, never reached, gone stale, left nurture) has status ``lost`` and no
    date.
attempts
    Attempts to reach the lead: up to and including the one that reached it, or all
    of them (by the end of the run) if nobody did. Later calls to a reached lead (after
    nurture) are not counted, as a CRM's "attempts to contact" field counts them.
status
    ``won``, ``lost`` or ``open`` at the horizon.
amount
    The deal value in USD of a won lead; empty otherwise.
owner
    The first rep who worked the lead, ``rep_01``...; empty if nobody did.
score
    The lead score in [0, 1] (4 decimals).
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simfunnel.calibration.read.columns import CRM_COLUMNS
from simfunnel.errors import SimfunnelError
from simfunnel.model import FINAL_STATES, STAGES

if TYPE_CHECKING:
    from simfunnel.simulation import SimulationResult

#: Stage-date columns, in funnel order.
DATE_COLUMNS: tuple[str, ...] = (
    "created_at",
    "first_response_at",
    "contacted_at",
    "qualified_at",
    "opportunity_at",
    "won_at",
    "lost_at",
)
#: File types :func:`write_crm` writes, by suffix.
EXPORT_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx", ".parquet")
_ISO = "%Y-%m-%dT%H:%M:%S"


def to_crm(result: SimulationResult) -> pd.DataFrame:
    """The run's leads as a CRM export at the horizon, in :data:`CRM_COLUMNS`.

    Parameters
    ----------
    result
        A run from :func:`simfunnel.simulate`.

    Returns
    -------
    pandas.DataFrame
        One row per lead created before the horizon; dates as ``datetime64[s]``
        (NaT when empty), ``attempts`` an integer, ``amount`` and ``score`` floats;
        ``attrs["as_of"]`` is the export date (the horizon, ISO text).
    """
    rec = result.records
    leads = rec.leads
    horizon = rec.horizon_hours
    arrival = np.asarray(leads["arrival_hours"], dtype=float)
    keep = arrival < horizon
    n = int(keep.sum())

    def col(name: str) -> np.ndarray:
        return np.asarray(leads[name])[keep]

    stage = col("furthest_stage").astype(int)
    state = col("final_state").astype(int)
    won = state == FINAL_STATES.index("won")
    # stale: patience ran out before anyone called; a CRM closes these as lost
    lost = np.isin(state, [FINAL_STATES.index("lost"), FINAL_STATES.index("stale")])
    reached_opp = stage >= STAGES.index("opportunity")
    close = col("close_hours").astype(float)
    qualified = col("qualified_hours").astype(float)

    def known(hours: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Hours of an event that had happened by the horizon, NaN otherwise."""
        ok = np.isfinite(hours) & (hours <= horizon)
        if mask is not None:
            ok &= mask
        return np.where(ok, hours, np.nan)

    hours = {
        "created_at": arrival[keep],
        "first_response_at": known(arrival[keep] + col("first_response_hours").astype(float)),
        "contacted_at": known(col("contact_hours").astype(float)),
        "qualified_at": known(qualified, stage >= STAGES.index("qualified")),
        "opportunity_at": known(qualified, reached_opp),
        "won_at": known(close, won),
        "lost_at": known(close, lost & reached_opp),
    }
    start = datetime.combine(result.scenario.run.start_date, time())
    origin = np.datetime64(start, "s")
    status = np.full(n, "open", dtype=object)
    status[won] = "won"
    status[lost] = "lost"
    contact_at = col("contact_attempt").astype(np.int64)
    rep = col("rep").astype(int)
    owner = np.array([f"rep_{r + 1:02d}" if r >= 0 else None for r in rep.tolist()], dtype=object)
    names = np.asarray(rec.source_names, dtype=object)
    amount = np.where(won, col("revenue_usd").astype(float), np.nan)
    frame = pd.DataFrame(
        {
            "lead_id": [f"L{i:06d}" for i in range(1, n + 1)],
            "source": names[col("source").astype(int)],
            **{name: _datetimes(origin, h) for name, h in hours.items()},
            # attempts to reach: up to the reaching one, all of them if never reached
            "attempts": np.where(contact_at > 0, contact_at, col("attempts")).astype(np.int64),
            "status": status,
            "amount": np.round(amount, 2),
            "owner": owner,
            "score": np.round(col("score").astype(float), 4),
        }
    )
    frame = frame[list(CRM_COLUMNS)]
    # as text, so that it survives a Parquet file's metadata
    frame.attrs["as_of"] = (pd.Timestamp(start) + pd.Timedelta(hours=horizon)).isoformat()
    return frame


def _datetimes(origin: np.datetime64, hours: np.ndarray) -> pd.Series:
    """``origin`` plus ``hours``, rounded to the second; NaN hours give NaT."""
    seconds = np.round(hours * 3600.0)
    ok = np.isfinite(seconds)
    out = np.full(len(hours), np.datetime64("NaT"), dtype="datetime64[s]")
    out[ok] = origin + seconds[ok].astype(np.int64).astype("timedelta64[s]")
    return pd.Series(out)


def write_crm(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a CRM export as CSV (ISO datetimes), Excel or Parquet, by the suffix.

    Raises
    ------
    SimfunnelError
        An unknown suffix, or the file cannot be written.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise SimfunnelError(
            f"--export-crm {target}: unknown file type {suffix or '(none)'!r}; "
            f"use one of {', '.join(EXPORT_SUFFIXES)}"
        )
    try:
        if suffix == ".csv":
            frame.to_csv(target, index=False, date_format=_ISO)
        elif suffix == ".parquet":
            frame.to_parquet(target, index=False)
        else:
            frame.to_excel(target, index=False, sheet_name="leads")
    except OSError as exc:
        raise SimfunnelError(
            f"--export-crm {target}: cannot write it: {exc.strerror or exc}"
        ) from None
    return target

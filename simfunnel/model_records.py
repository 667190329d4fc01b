"""What a run records: the :class:`Records` of one run and the codes its columns use."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Final state of a lead at the end of the run, in code order.
FINAL_STATES = ("won", "lost", "stale", "nurturing", "in_progress", "unworked")
#: Furthest funnel stage a lead reached, in code order.
STAGES = ("new", "contacted", "qualified", "opportunity", "won")
#: Readiness at capture, in code order.
READINESS = ("ready", "not_ready", "unqualified")

# Live status of a lead during the run. LEAKED: left nurture unready, at ``exit``.
WAITING, RETRY, SERVICE, NURTURE, WON, LOST, STALE, LEAKED = range(8)

# Outcome codes of one attempt.
NO_CONTACT, DISQUALIFIED, NOT_READY, QUALIFIED = range(4)


@dataclass(frozen=True)
class Records:
    """What one run recorded, in columnar form.

    Attributes
    ----------
    leads
        One entry per lead, all arrays of equal length: ``source`` (code into
        ``source_names``), ``arrival_hours``, ``first_response_hours`` (from the start
        of the cycle of the first attempt; NaN if never attempted), ``attempts``,
        ``furthest_stage`` (code into :data:`STAGES`) and ``final_state`` (code into
        :data:`FINAL_STATES`) at the horizon, ``cohort_stage`` and ``cohort_state`` at
        the end of the run (the same in window accounting), ``revenue_usd`` (the
        first deal of a won lead, whenever it closes), ``rep`` (first rep to work it,
        -1 if none), ``close_hours`` (NaN if no opportunity), ``nurtured``,
        ``routed_to_nurture`` (sent to nurture on arrival, before any attempt),
        ``first_attempt_contact`` (reached on the first attempt of its first
        cycle), ``contact_attempt`` (attempt number of first contact, 0 if
        never), ``contact_hours`` (when first reached, NaN if never),
        ``qualified_hours`` (when qualified, NaN if never; an opportunity opens
        then), ``readiness`` (code into :data:`READINESS`), ``fit``, ``score``.
    rep_days
        One entry per rep per day employed: ``day``, ``rep``, ``hours_paid``,
        ``hours_selling`` (paid hours available for leads), ``hours_busy``,
        ``attempts``, ``fruitless``, ``fatigue`` (end of day), ``quit`` (the rep quit
        that day). Days after the horizon (the cohort's drain) are included.
    busy_hours_by_source
        Rep hours spent on each source's leads.
    hire_hours
        Hours at which replacement reps started.
    backlog_end
        Leads waiting in the queue, or between attempts, at the horizon.
    end_hours
        When the run stopped: the horizon, or later with cohort accounting.
    """

    leads: dict[str, np.ndarray]
    rep_days: dict[str, np.ndarray]
    busy_hours_by_source: np.ndarray
    hire_hours: np.ndarray
    backlog_end: int
    source_names: tuple[str, ...]
    horizon_hours: float
    seed: int
    end_hours: float = math.nan


#: Columns of ``Records.rep_days`` and their dtypes.
REP_DAY_COLUMNS: dict[str, Any] = {
    "day": np.int32,
    "rep": np.int32,
    "hours_paid": float,
    "hours_selling": float,
    "hours_busy": float,
    "attempts": np.int32,
    "fruitless": np.int32,
    "fatigue": float,
    "quit": bool,
}

"""What both hot paths of the model share: a run's state, the team side and the records.

:class:`FunnelBase` sets up a run (pre-drawn leads, per-lead state, the queue
discipline, the reps), runs the people side (shifts, the end of each day with
fatigue, quitting, hiring and ramp), keeps the snapshot at the horizon and turns
the final state into :class:`~simfunnel.model_records.Records`. How arrivals and
attempts are scheduled belongs to a subclass: :class:`simfunnel.model.FunnelModel`
(the engine) or :class:`simfunnel.model_reference.ReferenceFunnelModel`.
"""

from __future__ import annotations

import gc
import math
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import URGENT, Timeout

from simfunnel.model_draws import BusinessClock, attempt_columns, compact, draw_leads
from simfunnel.model_records import (
    FINAL_STATES,
    LEAKED,
    LOST,
    NURTURE,
    REP_DAY_COLUMNS,
    RETRY,
    STALE,
    WAITING,
    WON,
    Records,
)
from simfunnel.parameters import WEEKDAYS, Scenario
from simfunnel.streams import stream

#: The live per-lead state kept at the horizon, and its dtypes in the records.
#: Quit draws are taken from each rep's stream this many at a time.
_QUIT_BLOCK = 64

_LIVE_COLUMNS: dict[str, Any] = {
    "status": np.int8,
    "stage": np.int8,
    "attempts": np.int32,
    "cycle_attempts": np.int32,
    "cycle_bh": float,
}


#: Entry stages as the stage numbers of the records.
_ENTRY = {"lead": 0, "qualified": 2, "opportunity": 3}


def _column(values: Sequence[Any], dtype: Any) -> np.ndarray:
    """A list as a numpy column.

    Whole numbers from 0 to 255 (most codes and counts) go through a bytearray,
    about four times quicker than ``fromiter``; the rest through ``fromiter`` with a
    count (about twice ``asarray``'s speed).
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        try:
            small = np.frombuffer(bytearray(values), np.uint8)
        except (TypeError, ValueError):  # a value outside 0-255, or not a whole number
            pass
        else:
            if not (dtype == np.int8 and len(small) and small.max() > 127):
                return small.astype(dtype)
    return np.fromiter(values, dtype, len(values))


@contextmanager
def _collector_off_the_lists() -> Iterator[None]:
    """Keep the cycle collector off the objects that exist now (``gc.freeze``).

    A run holds its leads' state in lists of hundreds of thousands of numbers, and
    each collection of the generation they sit in walks every one of them: at 8x
    volume a single full collection took 50 ms, and the collections grew with the
    volume. Nothing in those lists can be part of a cycle. What the run itself
    creates is collected as usual. Objects that someone else froze stay frozen.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class FunnelBase:
    """The state of one run, its team side and its records; the hot path is a subclass's.

    Subclasses schedule arrivals and attempts in :meth:`_wire` and hand out work in
    :meth:`_dispatch`; :meth:`_release` frees what they scheduled once the run ends.

    Parameters
    ----------
    scenario
        A validated :class:`~simfunnel.parameters.Scenario`.
    seed
        Root seed; defaults to ``scenario.run.seed``.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = int(scenario.run.seed if seed is None else seed)
        self.env = simpy.Environment()
        run, team, proc = scenario.run, scenario.team, scenario.process
        self.horizon = run.horizon_days * 24.0
        self._cohort = run.accounting == "cohort"
        self.end_limit = self.horizon + (run.drain_days * 24.0 if self._cohort else 0.0)

        drawn = draw_leads(scenario, self.seed)
        self._drawn = drawn
        n = len(drawn["arrival_hours"])
        self.n_leads = n
        self._clock = BusinessClock(scenario, self.end_limit)
        # Hot per-lead state as Python lists (fast scalar access).
        self._src: list[int] = drawn["source"].tolist()
        self._pat: list[float] = drawn["patience"].tolist() if proc.patience.enabled else []
        self._ready: list[int] = drawn["readiness"].tolist()
        # read only when a ready lead is reached: a float64 array is quicker to make
        self._fit: array[float] = array("d", drawn["fit"].tobytes())
        # Until a lead arrives, its cycle starts at its arrival time.
        self._cycle_start: list[float] = drawn["arrival_hours"].tolist()
        self._cycle_bh: list[float] = (
            list(self._cycle_start)  # round the clock, business hours are clock hours
            if self._clock.round_the_clock
            else self._clock.hours(drawn["arrival_hours"]).tolist()
        )
        self._cycle_attempts = [0] * n
        self._attempts = [0] * n
        self._qd = [1.0] * n
        self._contact_at = [0] * n
        self._contact_h: list[float] = [math.nan] * n
        self._qualified_h: list[float] = [math.nan] * n
        self._stage = [0] * n
        self._status = [WAITING] * n
        self._first: list[float] = [math.nan] * n
        self._first_rep: list[int] = [-1] * n
        self._revenue = np.zeros(n)
        self._close = np.full(n, np.nan)
        self._exit = np.full(n, np.inf)
        self._nurtured = np.zeros(n, dtype=bool)
        self._routed = np.zeros(n, dtype=bool)
        self._unresolved = 0
        self._draining = False
        self._snapshot: dict[str, list[Any]] = {}
        self._backlog_at_horizon = 0

        n_src = len(scenario.sources)
        columns = range(attempt_columns(scenario))
        self._u_contact = [compact(drawn.pop(f"contact_{a}")) for a in columns]
        self._u_qualify = [compact(drawn.pop(f"qualify_{a}")) for a in columns]
        # work times are drawn only for exponential work
        self._e_work = [compact(drawn.pop(f"work_{a}")) for a in columns if f"work_{a}" in drawn]
        self._u_opportunity = compact(drawn.pop("opportunity_u"))
        self._u_win = compact(drawn.pop("win_u"))
        self._busy_by_source = [0.0] * n_src

        # Constants of the hot path.
        self._contact_p = proc.contact_probability
        self._retry_p = proc.retry_contact_probability
        self._qual_p = (
            proc.qualification.ready,
            proc.qualification.not_ready,
            proc.qualification.unqualified,
        )
        decay = proc.decay
        self._decay_on = decay.enabled
        self._decay_contact = decay.enabled and decay.applies_to in ("contact", "both")
        self._decay_qual = decay.enabled and decay.applies_to in ("qualification", "both")
        self._tau_h = decay.tau_minutes / 60.0
        self._phi = decay.floor
        self._patience_on = proc.patience.enabled
        self._nurture_on = proc.nurture.enabled
        self._nurture_unreached = proc.nurture.enabled and proc.nurture.unreached
        self._nurture_below = proc.routing.nurture_below_score
        by_score = proc.routing.policy == "score" or self._nurture_below is not None
        self._score: list[float] = drawn["score"].tolist() if by_score else []
        if team.work_minutes is not None:
            self._attempt_h, self._talk_h = team.work_minutes / 60.0, 0.0
        else:
            self._attempt_h = team.minutes_per_attempt / 60.0
            self._talk_h = team.minutes_per_conversation / 60.0
        self._exp_work = team.work_time == "exponential"
        self._max_att = team.max_attempts
        self._spacing = team.attempt_spacing_hours
        # A source's entry stage: 0 the team works its leads, 2 they arrive qualified,
        # 3 they arrive as opportunities (their opportunity chance is then one).
        self._entry = [_ENTRY[s.entry_stage] for s in scenario.sources]
        self._p_opp = [
            1.0
            if s.entry_stage == "opportunity"
            else proc.opportunity_probability
            if s.opportunity_probability is None
            else s.opportunity_probability
            for s in scenario.sources
        ]
        self._p_win = [
            proc.win_probability if s.win_probability is None else s.win_probability
            for s in scenario.sources
        ]
        self._close_h = [
            24.0 * (proc.days_to_close if s.days_to_close is None else s.days_to_close)
            for s in scenario.sources
        ]
        # Capacity: selling hours a shift, and work that ends by the end of the shift.
        self._selling_h = team.selling_hours
        self._check_budget = team.selling_hours < team.shift_hours
        self._check_end = not team.round_the_clock
        self._split_midnight = team.shift_start_hour + team.shift_hours > 24.0
        self._shift_end = math.inf

        # The queue and its discipline; _unpop puts a lead back at the head.
        self._queue: Any
        if proc.routing.policy == "fifo":
            self._queue = deque()
            self._push = self._queue.append
            self._pop = self._queue.popleft
            self._unpop = self._queue.appendleft
        elif proc.routing.policy == "newest_first":
            self._queue = []
            self._push = self._queue.append
            self._pop = self._queue.pop
            self._unpop = self._queue.append
        else:
            heap: list[tuple[float, int]] = []
            self._queue = heap
            score = self._score
            self._push = lambda i: heappush(heap, (-score[i], i))
            self._pop = lambda: heappop(heap)[1]
            self._unpop = self._push

        # Reps.
        self._on_shift = team.round_the_clock
        # Reps waiting for work, longest idle first (round-robin routing).
        self._idle: deque[int] = deque()
        self._resting: list[int] = []
        self._budget: list[float] = []
        self._employed: list[bool] = []
        self._leaving: list[bool] = []
        self._fatigue: list[float] = []
        self._hired_at: list[float] = []
        self._speed: list[float] = []
        self._conv: list[float] = []
        self._busy_today: list[float] = []
        self._busy_carry: list[float] = []
        self._att_today: list[int] = []
        self._fruit_today: list[int] = []
        self._quit_rng: list[np.random.Generator] = []
        self._quit_u: list[list[float]] = []  # each rep's quit draws, a block ahead
        self._quit_next: list[int] = []
        self._days_recorded = 0
        for _ in range(team.reps):
            self._add_rep(hired_at=-math.inf)
        self._hires: list[float] = []
        self._rep_rows: list[tuple[Any, ...]] = []  # a tuple a rep-day (REP_DAY_COLUMNS)

        self._end = self.env.event()
        # Created first, so that it runs before anything else due at the horizon.
        Timeout(self.env, self.horizon).callbacks.append(self._at_horizon)
        self._processes: list[Any] = []
        self._wire()

    def _wire(self) -> None:
        """Schedule the arrivals, the shifts and the days (called at the end of set-up)."""
        raise NotImplementedError

    def _dispatch(self) -> None:
        """Hand queued leads to idle reps while on shift."""
        raise NotImplementedError

    def _release(self) -> None:
        """Drop what the run scheduled, so the model is freed without the cycle collector."""
        self.env._queue.clear()
        for generator in self._processes:
            generator.close()
        self._processes.clear()

    # ----------------------------------------------------------------- reps

    def _add_rep(self, hired_at: float) -> int:
        rep = len(self._employed)
        ramped = hired_at == -math.inf or self.scenario.team.ramp_days == 0
        self._employed.append(True)
        self._leaving.append(False)
        self._fatigue.append(0.0)
        self._hired_at.append(hired_at)
        self._speed.append(1.0 if ramped else 1.0 / self.scenario.team.ramp_start_productivity)
        self._conv.append(1.0)
        self._budget.append(self._selling_h)
        self._busy_today.append(0.0)
        self._busy_carry.append(0.0)
        self._att_today.append(0)
        self._fruit_today.append(0)
        # each rep (seat) has its own stream for quitting, kept whatever the team size
        self._quit_rng.append(stream(self.seed, "burnout", str(rep)))
        self._quit_u.append([])
        self._quit_next.append(0)
        self._idle.append(rep)
        return rep

    def _resolve(self) -> None:
        """A lead reached its end (won, lost, stale, or out of nurture unready)."""
        self._unresolved -= 1
        if self._draining and not self._unresolved:
            self._finish()

    def _workday(self, day: int) -> bool:
        weekday = WEEKDAYS[(self.scenario.run.start_date.weekday() + day) % 7]
        return weekday in self.scenario.team.working_days

    def _new_selling_day(self) -> None:
        """Selling hours are renewed, and reps who stopped early come back."""
        if self._check_budget:
            self._budget[:] = [self._selling_h] * len(self._employed)
        if self._resting:
            self._idle.extend(self._resting)
            self._resting.clear()
        self._dispatch()

    def _shifts(self) -> Any:
        team = self.scenario.team
        day = 0
        while day * 24.0 + team.shift_start_hour < self.end_limit:
            if self._workday(day):
                yield Timeout(self.env, day * 24.0 + team.shift_start_hour - self.env._now)
                self._on_shift = True
                self._shift_end = self.env._now + team.shift_hours
                self._new_selling_day()
                yield Timeout(self.env, team.shift_hours)
                self._on_shift = False
            day += 1

    def _days(self) -> Any:
        n_days = math.ceil(self.end_limit / 24.0)
        for day in range(n_days):
            yield Timeout(self.env, (day + 1) * 24.0 - self.env._now)
            self._end_of_day(day)

    def _end_of_day(self, day: int) -> None:
        """Close a day: each rep's fatigue, quitting, ramp, and the day's record.

        This runs for every rep on every day of the run and of the cohort's drain,
        so it is written for speed: one record tuple a rep-day, the quit draws taken
        from a block drawn ahead (the same numbers, in the same order, as one draw
        a day), and every per-rep list bound locally.
        """
        self._days_recorded = day + 1
        team, burn = self.scenario.team, self.scenario.burnout
        if team.round_the_clock:
            paid = 24.0
        else:
            paid = team.shift_hours if self._workday(day) else 0.0
        selling = min(self._selling_h, paid)
        h0 = -math.log(1.0 - burn.annual_turnover) / 365.0
        now = self.env._now
        record = self._rep_rows.append
        employed, busy_today, busy_carry = self._employed, self._busy_today, self._busy_carry
        att_today, fruit_today, fatigues = self._att_today, self._fruit_today, self._fatigue
        speed, conv, hired_at = self._speed, self._conv, self._hired_at
        quit_u, quit_next = self._quit_u, self._quit_next
        burn_on = burn.enabled
        u_star, recovery, rise = burn.utilization_threshold, burn.recovery_days, burn.rise_per_day
        m, f_star = burn.futility_min_utilization, burn.futility_threshold
        futility_rise, quit_k = burn.futility_rise_per_day, burn.quit_fatigue_k
        over_u, over_m = max(1e-9, 1.0 - u_star), max(1e-9, 1.0 - m)
        over_f = max(1e-9, 1.0 - f_star)
        slowdown, conversion_loss = (
            burn.slowdown_at_full_fatigue,
            burn.conversion_loss_at_full_fatigue,
        )
        ramping = team.ramp_days > 0
        ramp_h, ramp_start = team.ramp_days * 24.0, team.ramp_start_productivity
        exp, expm1 = math.exp, math.expm1
        for rep in range(len(employed)):
            if not employed[rep]:
                continue
            busy = busy_today[rep]
            attempts = att_today[rep]
            fruitless = fruit_today[rep]
            fatigue = fatigues[rep]
            quit_today = False
            if burn_on:
                util = 0.0
                if selling > 0:
                    util = busy / selling
                    if not util < 1.0:  # min(1.0, util)
                        util = 1.0
                fatigue -= fatigue / recovery
                if util > u_star:
                    fatigue += rise * (util - u_star) / over_u
                if attempts and util > m:
                    excess = fruitless / attempts - f_star
                    if excess > 0:
                        weight = (util - m) / over_m
                        fatigue += futility_rise * weight * excess / over_f
                if not fatigue > 0.0:  # min(1.0, max(0.0, fatigue))
                    fatigue = 0.0
                elif not fatigue < 1.0:
                    fatigue = 1.0
                fatigues[rep] = fatigue
                k = quit_next[rep]
                draws = quit_u[rep]
                if k == len(draws):
                    draws = quit_u[rep] = self._quit_rng[rep].random(_QUIT_BLOCK).tolist()
                    k = 0
                quit_next[rep] = k + 1
                quit_today = draws[k] < -expm1(-(h0 * exp(quit_k * fatigue)))
            record((day, rep, paid, selling, busy, attempts, fruitless, fatigue, quit_today))
            carry = busy_carry[rep]
            if carry:
                busy_today[rep] = today = 24.0 if carry > 24.0 else carry
                busy_carry[rep] = carry - today
            else:
                busy_today[rep] = 0.0
            att_today[rep] = 0
            fruit_today[rep] = 0
            if quit_today:
                self._quit(rep)
                continue
            productivity = 1.0
            if ramping and hired_at[rep] > -math.inf:
                ramp = (now - hired_at[rep]) / ramp_h
                productivity = min(1.0, ramp_start + (1.0 - ramp_start) * ramp)
            speed[rep] = (1.0 + slowdown * fatigue) / productivity
            conv[rep] = 1.0 - conversion_loss * fatigue
        if team.round_the_clock and self._check_budget:
            self._new_selling_day()

    def _quit(self, rep: int) -> None:
        self._employed[rep] = False
        if rep in self._idle:
            self._idle.remove(rep)
        elif rep in self._resting:
            self._resting.remove(rep)
        else:
            self._leaving[rep] = True
        lag = self.scenario.team.hiring_lag_days * 24.0
        Timeout(self.env, lag).callbacks.append(self._hire)

    def _hire(self, event: Timeout) -> None:
        now = self.env._now
        self._hires.append(now)
        self._add_rep(hired_at=now)
        if self._on_shift:
            self._dispatch()

    # --------------------------------------------------------- horizon and end

    def _at_horizon(self, event: Timeout) -> None:
        """Keep the state at the horizon; stop, or drain the cohort."""
        self._draining = True
        if not self._cohort or not self._unresolved:
            self._stop_at_horizon()
        else:
            self._keep_snapshot()
            Timeout(self.env, self.end_limit - self.horizon).callbacks.append(self._finish)

    def _live_state(self) -> dict[str, list[Any]]:
        """The per-lead state that the horizon's snapshot keeps."""
        return {
            "status": self._status,
            "stage": self._stage,
            "attempts": self._attempts,
            "cycle_attempts": self._cycle_attempts,
            "cycle_bh": self._cycle_bh,
        }

    def _keep_snapshot(self) -> None:
        """Copy the live state at the horizon (list copies: arrays come at the end)."""
        self._snapshot = {key: list(values) for key, values in self._live_state().items()}

    def _stop_at_horizon(self) -> None:
        """End the run now, before any other event due at the horizon.

        Nothing changes after this moment, so the live state is the horizon's
        snapshot as it is, with no copy to make or compare.
        """
        self._snapshot = self._live_state()
        end = self._end
        if not end.triggered:
            end._ok, end._value = True, None  # Event.succeed, scheduled first in line
            self.env.schedule(end, URGENT)

    def _finish(self, event: Timeout | None = None) -> None:
        if not self._end.triggered:
            self._end.succeed()

    def _columns(self, state: dict[str, list[Any]]) -> dict[str, np.ndarray]:
        """The state lists as arrays, for :meth:`_states`.

        Every lead's status, stage and attempts; the cycle (its attempts, and the
        business hour it started) of the waiting leads only: patience is all it is
        read for.
        """
        out = {
            key: _column(state[key], _LIVE_COLUMNS[key]) for key in ("status", "stage", "attempts")
        }
        waiting = np.flatnonzero(out["status"] == WAITING)
        ids = waiting.tolist()
        cycle_attempts, cycle_bh = state["cycle_attempts"], state["cycle_bh"]
        out["waiting"] = waiting
        out["cycle_attempts"] = np.fromiter((cycle_attempts[i] for i in ids), np.int32, len(ids))
        out["cycle_bh"] = np.fromiter((cycle_bh[i] for i in ids), float, len(ids))
        return out

    def _states(
        self,
        at: float,
        status: np.ndarray,
        stage: np.ndarray,
        attempts: np.ndarray,
        waiting: np.ndarray,
        cycle_attempts: np.ndarray,
        cycle_bh: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final state and furthest stage of every lead at clock hour ``at``, and the queue.

        ``cycle_attempts`` and ``cycle_bh`` are those of the ``waiting`` leads.
        """
        close, exit_ = self._close, self._exit
        pending_deal = np.isfinite(close) & (close > at)
        expired = np.zeros(len(status), dtype=bool)
        if self._patience_on:
            waited = self._clock.at(at) - cycle_bh
            expired[waiting] = (cycle_attempts == 0) & (waited > self._drawn["patience"][waiting])
        state = np.full(len(status), FINAL_STATES.index("in_progress"), dtype=np.int8)
        state[(status == WON) & ~pending_deal] = FINAL_STATES.index("won")
        state[(status == LOST) & ~pending_deal] = FINAL_STATES.index("lost")
        state[(status == LEAKED) & (exit_ <= at)] = FINAL_STATES.index("lost")
        state[(status == STALE) | expired] = FINAL_STATES.index("stale")
        nurturing = (status == NURTURE) | ((status == LEAKED) & (exit_ > at))
        state[nurturing] = FINAL_STATES.index("nurturing")
        state[(status == WAITING) & ~expired & (attempts == 0)] = FINAL_STATES.index("unworked")
        stage = np.where((stage == 4) & pending_deal, 3, stage).astype(np.int8)
        queued = ((status == WAITING) & ~expired) | (status == RETRY)
        return state, stage, queued

    # ------------------------------------------------------------------ run

    def run(self) -> Records:
        """Simulate to the horizon (and with cohort accounting, past it) and return records."""
        with _collector_off_the_lists():
            self.env.run(until=self._end)
            return self._records()

    def _records(self) -> Records:
        """Close the last day, free what the run scheduled and assemble the records."""
        end = self.env.now
        # A horizon inside a day: close the last, partial day here.
        for day in range(self._days_recorded, math.ceil(end / 24.0)):
            self._end_of_day(day)
        # Pending events hold this model's bound methods and suspended processes hold
        # it in their frames: release them all, so the model is freed at once rather
        # than by a later garbage collection (which would let memory climb over a long
        # sweep).
        self._release()
        live = self._live_state()
        snap = self._snapshot
        at_horizon = self._columns(snap)
        final, stage_h, queued = self._states(self.horizon, **at_horizon)
        # Stopped at the horizon, the snapshot is the live state itself.
        unchanged = all(snap[key] is live[key] or snap[key] == live[key] for key in snap)
        if unchanged and end == self.horizon:  # window accounting, as a rule
            at_end = at_horizon
            cohort_state, cohort_stage = final.copy(), stage_h.copy()
        else:
            at_end = at_horizon if unchanged else self._columns(live)
            cohort_state, cohort_stage, _ = self._states(end, **at_end)
        d = self._drawn
        leads = {
            "source": d["source"],
            "arrival_hours": d["arrival_hours"],
            "first_response_hours": _column(self._first, float),
            "attempts": at_end["attempts"].copy(),
            "furthest_stage": stage_h,
            "final_state": final,
            "cohort_stage": cohort_stage,
            "cohort_state": cohort_state,
            # a deal decided but closing after the run stopped is not revenue yet
            "revenue_usd": np.where(cohort_state == FINAL_STATES.index("won"), self._revenue, 0.0),
            "rep": _column(self._first_rep, np.int32),
            "close_hours": self._close,
            "nurtured": self._nurtured,
            "routed_to_nurture": self._routed,
            "contact_attempt": _column(self._contact_at, np.int16),
            "contact_hours": _column(self._contact_h, float),
            "qualified_hours": _column(self._qualified_h, float),
            "readiness": d["readiness"],
            "fit": d["fit"],
            "score": d["score"],
        }
        rows = self._rep_rows
        by_column = zip(*rows, strict=True) if rows else [()] * len(REP_DAY_COLUMNS)
        rep_days = {
            key: _column(values, dtype)
            for (key, dtype), values in zip(REP_DAY_COLUMNS.items(), by_column, strict=True)
        }
        return Records(
            leads=leads,
            rep_days=rep_days,
            busy_hours_by_source=np.asarray(self._busy_by_source),
            hire_hours=np.asarray(self._hires),
            backlog_end=int(queued.sum()),
            source_names=tuple(self.scenario.source_names),
            horizon_hours=self.horizon,
            seed=self.seed,
            end_hours=end,
        )

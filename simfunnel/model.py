"""The SimPy model of the funnel: arrivals, the queue, reps, nurture and burnout.

No I/O and no printing here: the model records events into plain lists and numpy
arrays, which :mod:`simfunnel.metrics` turns into tables.

Processes and events
--------------------
SimPy's :class:`~simpy.Environment` owns the clock and the event queue, and
``env.run`` drives the run. On that queue:

- one arrival chain per source, replaying that source's pre-drawn,
  non-homogeneous Poisson arrival times (:mod:`simfunnel.model_draws`): each
  arrival schedules the next;
- a lead's life is driven by callbacks rather than a process per lead: the end
  of an attempt applies its outcome, and the same callback hands the rep the
  next lead and starts that attempt (done, next lead and start fused in one);
- retries wait in a delay line: their spacing is fixed, so they fall due in the
  order they were made, and only the line's head sits on SimPy's queue;
- one shift process puts the team on and off shift (absent when the team works
  round the clock), and one daily process runs the people side: fatigue,
  quitting, hiring and ramp (:mod:`simfunnel.model_core`);
- a timeout at the horizon keeps a snapshot, and ends the run or starts the
  cohort's drain.

The hot events are plain tuples ``(time, priority, id, wake)`` pushed on SimPy's
heap, where ``wake`` is a small reusable object with what ``Environment.step``
reads of an event (its ``callbacks`` and ``_ok``); ids come from the
environment's own counter, so ties at equal times resolve in the order the events
were made, as with :class:`simpy.events.Timeout`. The state of the hot path lives
in the closures of :meth:`FunnelModel._wire` rather than on the model. The
records are identical to those of the plainer reference path,
:mod:`simfunnel.model_reference` (one ``Timeout`` per event), which the tests
compare it with.

Patience is applied when a lead reaches the head of the queue: a lead whose
patience ran out while waiting is marked stale then and skipped. No decision
depends on the queue's length, so the sample path is the same as with one
abandonment event per lead (the M/M/c+M queue). Patience runs in on-shift hours.

With cohort accounting the run goes on after the horizon, with arrivals stopped,
until every lead of the window is resolved (won, lost, stale, or out of nurture) or
``run.drain_days`` have passed. A snapshot at the horizon keeps what the calendar
window needs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np
from simpy.events import NORMAL, Timeout

from simfunnel.model_core import FunnelBase
from simfunnel.model_draws import HOURS_PER_MONTH, BusinessClock, attempt_columns
from simfunnel.model_records import (
    DISQUALIFIED,
    FINAL_STATES,
    LEAKED,
    LOST,
    NO_CONTACT,
    NOT_READY,
    NURTURE,
    QUALIFIED,
    READINESS,
    RETRY,
    SERVICE,
    STAGES,
    STALE,
    WAITING,
    WON,
    Records,
)

__all__ = [
    "FINAL_STATES",
    "HOURS_PER_MONTH",
    "READINESS",
    "STAGES",
    "BusinessClock",
    "FunnelModel",
    "Records",
    "attempt_columns",
]


class _Wake:
    """An entry of SimPy's event queue: what ``Environment.step`` reads of an event.

    ``step`` takes ``callbacks``, sets it to None and calls each with the wake;
    ``_ok`` tells it the event did not fail. One wake per rep (its attempt), per
    source (its next arrival) and for the retry line is reused, its ``callbacks``
    restored each time it is scheduled again.
    """

    __slots__ = ("_ok", "callbacks", "code", "ids", "lead", "n", "pos", "rep", "source")

    def __init__(self, rep: int = -1, source: int = -1) -> None:
        self._ok = True
        self.callbacks: list[Any] | None = None
        self.rep = rep  # a rep's attempt: the rep, the lead and the outcome code
        self.lead = -1
        self.code = 0
        self.source = source  # a source's arrivals: its leads, their count, the position
        self.ids: Sequence[int] = ()
        self.n = 0
        self.pos = 0


class FunnelModel(FunnelBase):
    """One run of the funnel for a validated scenario.

    Parameters
    ----------
    scenario
        A validated :class:`~simfunnel.parameters.Scenario`.
    seed
        Root seed; defaults to ``scenario.run.seed``.
    """

    _rep_wakes: list[_Wake] | None = None

    def _add_rep(self, hired_at: float) -> int:
        rep = super()._add_rep(hired_at)
        if self._rep_wakes is not None:
            self._rep_wakes.append(_Wake(rep))
        return rep

    def _at_horizon(self, event: Timeout) -> None:
        self._horizon_cb(event)

    def _release(self) -> None:
        super()._release()
        # The closures refer to one another (and to the wakes that refer back to
        # them): empty their cells, so nothing waits for the cycle collector.
        for fn in self._closures:
            for cell in fn.__closure__ or ():
                cell.cell_contents = None
        self._closures.clear()
        del self._dispatch, self._horizon_cb

    def _wire(self) -> None:
        """Build the hot path's closures and schedule the first events."""
        env = self.env
        heap: list[Any] = env._queue  # wakes stand in for events here
        eid = env._eid
        scenario = self.scenario
        team = scenario.team
        drawn = self._drawn

        # Per-lead state (the lists are the base's own, which the records read).
        src, pat, ready, fit, score = self._src, self._pat, self._ready, self._fit, self._score
        cycle_start, cycle_bh, cycle_att = self._cycle_start, self._cycle_bh, self._cycle_attempts
        attempts, qds, contact_at = self._attempts, self._qd, self._contact_at
        contact_h, qualified_h, stage, status = (
            self._contact_h,
            self._qualified_h,
            self._stage,
            self._status,
        )
        first, first_rep = self._first, self._first_rep
        revenue, close, exit_ = self._revenue, self._close, self._exit
        nurtured, routed = self._nurtured, self._routed
        value, close_e = drawn["value"], drawn["close_e"]
        nurture_ready, nurture_leak = drawn["nurture_ready"], drawn["nurture_leak"]
        u_contact, u_qualify, e_work = self._u_contact, self._u_qualify, self._e_work
        u_opportunity, u_win = self._u_opportunity, self._u_win
        busy_by_source = self._busy_by_source

        # Reps.
        idle, resting = self._idle, self._resting
        idle_append, idle_popleft, resting_append = idle.append, idle.popleft, resting.append
        budget, leaving, speed, conv = self._budget, self._leaving, self._speed, self._conv
        busy_today, busy_carry = self._busy_today, self._busy_carry
        att_today, fruit_today = self._att_today, self._fruit_today

        # The queue discipline.
        queue, push, pop, unpop = self._queue, self._push, self._pop, self._unpop

        # Constants.
        contact_p, retry_p, qual_p = self._contact_p, self._retry_p, self._qual_p
        decay_on, decay_contact, decay_qual = self._decay_on, self._decay_contact, self._decay_qual
        tau_h, phi = self._tau_h, self._phi
        patience_on, nurture_on = self._patience_on, self._nurture_on
        nurture_unreached, below = self._nurture_unreached, self._nurture_below
        attempt_h, talk_h = self._attempt_h, self._talk_h
        reached_h = attempt_h + talk_h
        exp_work, max_att, spacing = self._exp_work, self._max_att, self._spacing
        p_opp, p_win, close_hours = self._p_opp, self._p_win, self._close_h
        entry = self._entry
        check_budget, check_end = self._check_budget, self._check_end
        split_midnight = self._split_midnight
        cohort, horizon, end_limit = self._cohort, self.horizon, self.end_limit
        clock = self._clock
        round_clock = clock.round_the_clock
        clock_start, clock_length = clock.start, clock.length
        clock_cum, clock_working = clock._cum, clock._working
        exp, floor = math.exp, math.floor
        finish = self._finish

        # Mutable scalars of the hot path.
        on_shift = self._on_shift
        shift_end = self._shift_end
        unresolved = 0
        draining = False

        def resolve() -> None:
            """A lead reached its end (won, lost, stale, or out of nurture unready)."""
            nonlocal unresolved
            unresolved -= 1
            if draining and not unresolved:
                finish()

        def next_lead() -> int:
            """The next lead to work, skipping those whose patience ran out; -1 if none."""
            if not queue:
                return -1
            if not patience_on:
                return pop()
            now = env._now
            if round_clock:
                waited_by = now
            else:  # BusinessClock.at, inlined
                k = floor((now - clock_start) / 24.0)
                if k < 0:
                    waited_by = 0.0
                else:
                    into = now - (k * 24.0 + clock_start)
                    if not clock_working[k]:
                        into = 0.0
                    elif into > clock_length:  # min(into, clock_length)
                        into = clock_length
                    waited_by = clock_cum[k] + into
            while queue:
                i: int = pop()
                if cycle_att[i] == 0 and waited_by - cycle_bh[i] > pat[i]:
                    status[i] = STALE
                    resolve()
                    continue
                return i
            return -1

        def start(rep: int, i: int, now: float) -> bool:
            """Start an attempt on lead ``i``; False (nothing changed) if it does not fit.

            The attempt's outcome and duration come from the lead's pre-drawn numbers,
            so they are known before the rep commits: an attempt that would overrun
            the rep's selling hours or the shift is left for the next shift.
            """
            a = attempts[i]
            in_cycle = cycle_att[i]
            fresh = in_cycle == 0
            delay = 0.0
            if fresh:
                # The clock reaches a pre-drawn arrival time by adding a float delay,
                # which can land a rounding error before it: taken at once, it waited 0.
                delay = now - cycle_start[i]
                if delay < 0.0:
                    delay = 0.0
                qd = 1.0
                if decay_on:
                    qd = phi + (1.0 - phi) * exp(-delay / tau_h)
                p_contact = contact_p
            else:
                qd = qds[i]
                p_contact = retry_p
            c = conv[rep]
            if decay_contact:
                p_contact *= qd
            if u_contact[a][i] < p_contact * c:
                readiness = ready[i]
                p = qual_p[readiness]
                if readiness == 0:
                    p = p * 2.0 * fit[i]
                    if not p < 1.0:  # min(1.0, p)
                        p = 1.0
                if decay_qual:
                    p *= qd
                if u_qualify[a][i] < p * c:
                    code = QUALIFIED
                else:
                    code = NOT_READY if readiness == 1 else DISQUALIFIED
                hours = reached_h * speed[rep]
            else:
                code = NO_CONTACT
                hours = attempt_h * speed[rep]
            if exp_work:
                hours *= e_work[a][i]
            if check_budget and hours > budget[rep] + 1e-9:
                return False
            if check_end and now + hours > shift_end + 1e-9:
                return False
            # Commit.
            if fresh:
                qds[i] = qd
                if a == 0:
                    first[i] = delay
                    first_rep[i] = rep
            attempts[i] = a + 1
            cycle_att[i] = in_cycle + 1
            status[i] = SERVICE
            if code == NO_CONTACT:
                fruit_today[rep] += 1
            elif not contact_at[i]:
                contact_at[i] = a + 1
                contact_h[i] = now
                if stage[i] < 1:
                    stage[i] = 1
            if check_budget:
                budget[rep] -= hours
            if not split_midnight:
                busy_today[rep] += hours
            else:
                # Work past midnight counts on the days it runs.
                today = (floor(now / 24.0) + 1.0) * 24.0 - now
                if hours > today:
                    busy_today[rep] += today
                    busy_carry[rep] += hours - today
                else:
                    busy_today[rep] += hours
            att_today[rep] += 1
            busy_by_source[src[i]] += hours
            wake = rep_wakes[rep]
            wake.lead = i
            wake.code = code
            wake.callbacks = done_callbacks
            heappush(heap, (now + hours, NORMAL, next(eid), wake))
            return True

        def dispatch() -> None:
            """Hand queued leads to idle reps, longest idle first, while on shift."""
            while idle and on_shift and queue:
                lead = next_lead()
                if lead < 0:
                    return
                rep = idle_popleft()
                if not start(rep, lead, env._now):
                    unpop(lead)
                    resting_append(rep)

        def done(wake: _Wake) -> None:
            """An attempt ended: apply its outcome, and the rep starts the next one."""
            rep, i, code = wake.rep, wake.lead, wake.code
            now = env._now
            if code == NO_CONTACT:
                if cycle_att[i] < max_att:
                    status[i] = RETRY
                    if spacing > 0:
                        due, key = now + spacing, next(eid)
                        if not retry_line:
                            retry_wake.callbacks = retry_callbacks
                            heappush(heap, (due, NORMAL, key, retry_wake))
                        retry_line.append((due, key, i))
                    else:
                        push(i)
                elif nurture_unreached and not nurtured[i]:
                    to_nurture(i, now)
                else:
                    status[i] = LOST
                    resolve()
            elif code == DISQUALIFIED:
                status[i] = LOST
                resolve()
            elif code == NOT_READY:
                if nurture_on:
                    to_nurture(i, now)
                else:
                    status[i] = LOST
                    resolve()
            else:
                qualify(i, now)
            # The rep moves on.
            if leaving[rep]:
                leaving[rep] = False
                return
            if on_shift and queue:
                nxt = next_lead()
                if nxt >= 0:
                    if start(rep, nxt, now):
                        return
                    unpop(nxt)
                    resting_append(rep)
                    return
            idle_append(rep)

        def qualify(i: int, now: float) -> None:
            """A qualified lead: opportunity or not, and when and how its deal closes.

            The outcome is drawn now and the close dated; the lead is resolved at
            once, and the calendar window counts the deal only from its close date.
            """
            stage[i] = 2
            qualified_h[i] = now
            s = src[i]
            if u_opportunity[i] >= p_opp[s]:
                status[i] = LOST
                resolve()
                return
            stage[i] = 3
            close[i] = now + close_hours[s] * float(close_e[i])
            if u_win[i] < p_win[s]:
                stage[i] = 4
                status[i] = WON
                revenue[i] = value[i]
            else:
                status[i] = LOST
            resolve()

        def requeue(wake: _Wake) -> None:
            """The head of the retry line is due: back in the queue."""
            i = retry_line.popleft()[2]
            if retry_line:
                due, key, _ = retry_line[0]
                wake.callbacks = retry_callbacks
                heappush(heap, (due, NORMAL, key, wake))
            push(i)
            if idle and on_shift:
                dispatch()

        def to_nurture(i: int, now: float) -> None:
            nurtured[i] = True
            ready_h = float(nurture_ready[i])
            leak_h = float(nurture_leak[i])
            if ready_h < leak_h:
                status[i] = NURTURE
                if now + ready_h < end_limit:
                    entry = [now + ready_h, next(eid), i, False]
                    heappush(nurture_line, entry)
                    if nurture_line[0] is entry:
                        schedule_nurture(entry)
            else:
                status[i] = LEAKED
                exit_[i] = now + leak_h
                resolve()

        def schedule_nurture(entry: list[Any]) -> None:
            """Put a nurture return on SimPy's queue (the line's head always is)."""
            entry[3] = True
            wake = _Wake()
            wake.lead = entry[2]
            wake.callbacks = nurture_callbacks
            heappush(heap, (entry[0], NORMAL, entry[1], wake))

        def from_nurture(wake: _Wake) -> None:
            """A nurtured lead becomes ready: back in the queue for a second cycle.

            Returns wait in their own heap, ordered like SimPy's queue (time, then the
            order they were made), whose head is always on SimPy's queue: so the
            return that fires is the head, and SimPy's heap stays small.
            """
            heappop(nurture_line)
            if nurture_line and not nurture_line[0][3]:
                schedule_nurture(nurture_line[0])
            i = wake.lead
            now = env._now
            ready[i] = 0
            cycle_start[i] = now
            cycle_bh[i] = clock.at(now)
            cycle_att[i] = 0
            status[i] = WAITING
            push(i)
            if idle and on_shift:
                dispatch()

        def arrive(wake: _Wake) -> None:
            """A lead arrives; its source's next arrival is scheduled."""
            nonlocal unresolved
            i = wake.lead
            now = env._now
            unresolved += 1
            if entry[src[i]]:  # arrives qualified or as an opportunity: no calls
                qualify(i, now)
            elif below is not None and score[i] < below:
                routed[i] = True
                to_nurture(i, now)
            else:
                push(i)
                if idle and on_shift:
                    dispatch()
            ids = wake.ids
            pos = wake.pos + 1
            if pos < wake.n:
                nxt = ids[pos]
                wake.pos = pos
                wake.lead = nxt
                wake.callbacks = arrive_callbacks
                heappush(heap, (now + (cycle_start[nxt] - now), NORMAL, next(eid), wake))

        def shifts() -> Any:
            """Put the team on shift on working days, and off at the end of the shift."""
            nonlocal on_shift, shift_end
            day = 0
            while day * 24.0 + team.shift_start_hour < end_limit:
                if self._workday(day):
                    yield Timeout(env, day * 24.0 + team.shift_start_hour - env._now)
                    on_shift = self._on_shift = True
                    shift_end = self._shift_end = env._now + team.shift_hours
                    self._new_selling_day()
                    yield Timeout(env, team.shift_hours)
                    on_shift = self._on_shift = False
                day += 1

        def at_horizon(event: Timeout) -> None:
            """Keep the state at the horizon; stop, or drain the cohort."""
            nonlocal draining
            draining = self._draining = True
            if not cohort or not unresolved:
                self._stop_at_horizon()
            else:
                self._keep_snapshot()
                Timeout(env, end_limit - horizon).callbacks.append(finish)

        rep_wakes = [_Wake(rep) for rep in range(len(self._employed))]
        self._rep_wakes = rep_wakes
        retry_line: deque[tuple[float, int, int]] = deque()
        retry_wake = _Wake()
        nurture_line: list[list[Any]] = []
        nurture_callbacks = [from_nurture]
        done_callbacks = [done]
        retry_callbacks = [requeue]
        arrive_callbacks = [arrive]
        self._dispatch = dispatch  # type: ignore[method-assign]
        self._horizon_cb = at_horizon
        self._closures: list[Any] = [
            resolve,
            next_lead,
            start,
            dispatch,
            done,
            qualify,
            requeue,
            to_nurture,
            schedule_nurture,
            from_nurture,
            arrive,
            shifts,
            at_horizon,
        ]

        # The first arrival of each source, in source order (as the reference's
        # arrival processes make them), then the shifts and the days.
        # (Until a lead arrives, its cycle_start is its arrival time.)
        source_ids = drawn["source"]
        chains: list[Sequence[int]] = []
        if len(scenario.sources) == 1:
            chains.append(range(len(cycle_start)))
        else:
            for code in range(len(scenario.sources)):
                chains.append(np.flatnonzero(source_ids == code).tolist())
        for code, ids_s in enumerate(chains):
            if ids_s:
                wake = _Wake(source=code)
                wake.ids = ids_s
                wake.n = len(ids_s)
                wake.lead = ids_s[0]
                wake.callbacks = arrive_callbacks
                heappush(heap, (cycle_start[ids_s[0]], NORMAL, next(eid), wake))
        if not team.round_the_clock:
            self._processes.append(shifts())
        self._processes.append(self._days())
        for generator in self._processes:
            env.process(generator)

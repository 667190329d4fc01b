"""The reference hot path: one SimPy ``Timeout`` per event, state on the model.

This is the hot path as it stood before the engine of :mod:`simfunnel.model`: an
arrival process per source, and per attempt a :class:`simpy.events.Timeout` whose
callback applies its outcome and hands the rep the next lead. It is kept, slower
but plain, as the reference the engine's records are tested against
(``tests/test_engine.py``): both give the same records for the same scenario and
seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from simpy.events import Timeout

from simfunnel.model_core import FunnelBase
from simfunnel.model_records import (
    DISQUALIFIED,
    LEAKED,
    LOST,
    NO_CONTACT,
    NOT_READY,
    NURTURE,
    QUALIFIED,
    RETRY,
    SERVICE,
    STALE,
    WAITING,
    WON,
)


class ReferenceFunnelModel(FunnelBase):
    """One run of the funnel on the reference hot path (see the module docstring).

    Parameters
    ----------
    scenario
        A validated :class:`~simfunnel.parameters.Scenario`.
    seed
        Root seed; defaults to ``scenario.run.seed``.
    """

    def _wire(self) -> None:
        drawn = self._drawn
        self._done_cb = self._done
        source_ids = drawn["source"]
        for code in range(len(self.scenario.sources)):
            ids = np.nonzero(source_ids == code)[0]
            self._processes.append(
                self._arrivals(ids.tolist(), drawn["arrival_hours"][ids].tolist())
            )
        if not self.scenario.team.round_the_clock:
            self._processes.append(self._shifts())
        self._processes.append(self._days())
        for generator in self._processes:
            self.env.process(generator)

    def _release(self) -> None:
        super()._release()
        # _done_cb is a bound method of the model held by the model: a cycle.
        del self._done_cb

    def _dispatch(self) -> None:
        idle = self._idle
        while idle and self._on_shift:
            lead = self._next_lead()
            if lead < 0:
                return
            rep = idle.popleft()
            if not self._start(rep, lead):
                self._unpop(lead)
                self._resting.append(rep)

    def _next_lead(self) -> int:
        queue = self._queue
        if not queue:
            return -1
        pop = self._pop
        if not self._patience_on:
            return pop()
        now = self.env._now
        waited_by = now if self._clock.round_the_clock else self._clock.at(now)
        ca, cbh, pat, status = self._cycle_attempts, self._cycle_bh, self._pat, self._status
        while queue:
            i = pop()
            if ca[i] == 0 and waited_by - cbh[i] > pat[i]:
                status[i] = STALE
                self._resolve()
                continue
            return int(i)
        return -1

    # ---------------------------------------------------------------- leads

    def _arrivals(self, ids: list[int], times: list[float]) -> Any:
        env = self.env
        arrive = self._arrive
        for i, t in zip(ids, times, strict=True):
            yield Timeout(env, t - env._now)
            arrive(i)

    def _arrive(self, i: int) -> None:
        self._unresolved += 1
        if self._entry[self._src[i]]:  # arrives qualified or as an opportunity
            self._qualify(i, self.env._now)
            return
        below = self._nurture_below
        if below is not None and self._score[i] < below:
            self._routed[i] = True
            self._to_nurture(i, self.env._now)
            return
        self._push(i)
        if self._idle and self._on_shift:
            self._dispatch()

    def _start(self, rep: int, i: int) -> bool:
        """Start an attempt on lead ``i``; False (nothing changed) if it does not fit.

        The attempt's outcome and duration come from the lead's pre-drawn numbers, so
        they are known before the rep commits: an attempt that would overrun the
        rep's selling hours or the shift is left for the next shift.
        """
        now = self.env._now
        a = self._attempts[i]
        fresh = self._cycle_attempts[i] == 0
        delay = 0.0
        if fresh:
            # The clock reaches a pre-drawn arrival time by adding a float delay, which
            # can land a rounding error before it: a lead taken at once waited zero.
            delay = now - self._cycle_start[i]
            if delay < 0.0:
                delay = 0.0
            qd = 1.0
            if self._decay_on:
                phi = self._phi
                qd = phi + (1.0 - phi) * math.exp(-delay / self._tau_h)
            p_contact = self._contact_p
        else:
            qd = self._qd[i]
            p_contact = self._retry_p
        conv = self._conv[rep]
        if self._decay_contact:
            p_contact *= qd
        if self._u_contact[a][i] < p_contact * conv:
            readiness = self._ready[i]
            p = self._qual_p[readiness]
            if readiness == 0:
                p = min(1.0, p * 2.0 * self._fit[i])
            if self._decay_qual:
                p *= qd
            if self._u_qualify[a][i] < p * conv:
                code = QUALIFIED
            else:
                code = NOT_READY if readiness == 1 else DISQUALIFIED
            hours = (self._attempt_h + self._talk_h) * self._speed[rep]
        else:
            code = NO_CONTACT
            hours = self._attempt_h * self._speed[rep]
        if self._exp_work:
            hours *= self._e_work[a][i]
        if self._check_budget and hours > self._budget[rep] + 1e-9:
            return False
        if self._check_end and now + hours > self._shift_end + 1e-9:
            return False
        # Commit.
        if fresh:
            self._qd[i] = qd
            if a == 0:
                self._first[i] = delay
                self._first_rep[i] = rep
        self._attempts[i] = a + 1
        self._cycle_attempts[i] += 1
        self._status[i] = SERVICE
        if code == NO_CONTACT:
            self._fruit_today[rep] += 1
        elif not self._contact_at[i]:
            self._contact_at[i] = a + 1
            self._contact_h[i] = now
            if self._stage[i] < 1:
                self._stage[i] = 1
        if self._check_budget:
            self._budget[rep] -= hours
        if not self._split_midnight:
            self._busy_today[rep] += hours
        else:
            # Work past midnight counts on the days it runs.
            today = (math.floor(now / 24.0) + 1.0) * 24.0 - now
            if hours > today:
                self._busy_today[rep] += today
                self._busy_carry[rep] += hours - today
            else:
                self._busy_today[rep] += hours
        self._att_today[rep] += 1
        self._busy_by_source[self._src[i]] += hours
        Timeout(self.env, hours, (rep, i, code)).callbacks.append(self._done_cb)
        return True

    def _done(self, event: Timeout) -> None:
        rep, i, code = event._value
        now = self.env._now
        if code == NO_CONTACT:
            if self._cycle_attempts[i] < self._max_att:
                self._status[i] = RETRY
                if self._spacing > 0:
                    Timeout(self.env, self._spacing, i).callbacks.append(self._requeue)
                else:
                    self._push(i)
            elif self._nurture_unreached and not self._nurtured[i]:
                self._to_nurture(i, now)
            else:
                self._status[i] = LOST
                self._resolve()
        elif code == DISQUALIFIED:
            self._status[i] = LOST
            self._resolve()
        elif code == NOT_READY:
            if self._nurture_on:
                self._to_nurture(i, now)
            else:
                self._status[i] = LOST
                self._resolve()
        else:
            self._qualify(i, now)
        # The rep moves on.
        if self._leaving[rep]:
            self._leaving[rep] = False
            return
        if self._on_shift:
            nxt = self._next_lead()
            if nxt >= 0:
                if self._start(rep, nxt):
                    return
                self._unpop(nxt)
                self._resting.append(rep)
                return
        self._idle.append(rep)

    def _qualify(self, i: int, now: float) -> None:
        """A qualified lead: opportunity or not, and when and how its deal closes.

        The outcome is drawn now and the close dated; the lead is resolved at once,
        and the calendar window counts the deal only from its close date.
        """
        self._stage[i] = 2
        self._qualified_h[i] = now
        s = self._src[i]
        if self._u_opportunity[i] >= self._p_opp[s]:
            self._status[i] = LOST
            self._resolve()
            return
        self._stage[i] = 3
        self._close[i] = now + self._close_h[s] * float(self._drawn["close_e"][i])
        if self._u_win[i] < self._p_win[s]:
            self._stage[i] = 4
            self._status[i] = WON
            self._revenue[i] = self._drawn["value"][i]
        else:
            self._status[i] = LOST
        self._resolve()

    def _requeue(self, event: Timeout) -> None:
        self._push(event._value)
        if self._idle and self._on_shift:
            self._dispatch()

    def _to_nurture(self, i: int, now: float) -> None:
        self._nurtured[i] = True
        ready = float(self._drawn["nurture_ready"][i])
        leak = float(self._drawn["nurture_leak"][i])
        if ready < leak:
            self._status[i] = NURTURE
            if now + ready < self.end_limit:
                Timeout(self.env, ready, i).callbacks.append(self._from_nurture)
        else:
            self._status[i] = LEAKED
            self._exit[i] = now + leak
            self._resolve()

    def _from_nurture(self, event: Timeout) -> None:
        i = event._value
        now = self.env._now
        self._ready[i] = 0
        self._cycle_start[i] = now
        self._cycle_bh[i] = self._clock.at(now)
        self._cycle_attempts[i] = 0
        self._status[i] = WAITING
        self._push(i)
        if self._idle and self._on_shift:
            self._dispatch()

    # ------------------------------------------------------- shifts and days

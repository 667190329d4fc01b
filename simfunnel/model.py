"""The SimPy model of the funnel: arrivals, the queue, reps, nurture and burnout.

No I/O and no printing here: the model records events into plain lists and numpy
arrays, which :mod:`simfunnel.metrics` turns into tables.

Processes and events
--------------------
- one arrival process per source, replaying that source's pre-drawn,
  non-homogeneous Poisson arrival times (:mod:`simfunnel.arrivals`);
- one shift process that puts the team on and off shift (absent when the team
  works round the clock);
- one daily process for the people side: fatigue, quitting, hiring and ramp;
- a lead's life is driven by event callbacks rather than a process per lead:
  an attempt is a :class:`simpy.events.Timeout` whose callback applies its outcome
  and hands the rep the next lead. This keeps the per-lead cost low enough to
  simulate hundreds of thousands of leads a second.

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
from array import array
from collections import deque
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any

import numpy as np
import simpy
from scipy.special import ndtr, ndtri
from simpy.events import Timeout

from simfunnel.arrivals import arrival_times
from simfunnel.parameters import WEEKDAYS, Scenario
from simfunnel.streams import stream

#: Final state of a lead at the end of the run, in code order.
FINAL_STATES = ("won", "lost", "stale", "nurturing", "in_progress", "unworked")
#: Furthest funnel stage a lead reached, in code order.
STAGES = ("new", "contacted", "qualified", "opportunity", "won")
#: Readiness at capture, in code order.
READINESS = ("ready", "not_ready", "unqualified")

# Live status of a lead during the run. _LEAKED: left nurture unready, at ``exit``.
_WAITING, _RETRY, _SERVICE, _NURTURE, _WON, _LOST, _STALE, _LEAKED = range(8)

# Outcome codes of one attempt.
_NO_CONTACT, _DISQUALIFIED, _NOT_READY, _QUALIFIED = range(4)

HOURS_PER_MONTH = 365.25 * 24 / 12


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


def _draw_leads(scenario: Scenario, seed: int) -> dict[str, np.ndarray]:
    """Pre-draw every lead's arrival and attributes, source by source, merged in time.

    Each source has its own streams, so changing one source leaves the others'
    leads untouched. Every attribute is drawn whether or not its mechanism is on,
    so that switching a mechanism off does not reshuffle the rest.
    """
    proc = scenario.process
    d_prime = math.sqrt(2.0) * float(ndtri(proc.routing.score_auc))
    ready_rate = proc.nurture.ready_hazard_per_month / HOURS_PER_MONTH
    leak_rate = proc.nurture.leak_hazard_per_month / HOURS_PER_MONTH
    parts: list[dict[str, np.ndarray]] = []
    for code, src in enumerate(scenario.sources):
        times = arrival_times(src, scenario, stream(seed, "source", src.name, "arrivals"))
        g = stream(seed, "source", src.name, "attributes")
        n = len(times)
        u = g.random(n)
        q = src.quality
        readiness = np.where(u < q.ready, 0, np.where(u < q.ready + q.not_ready, 1, 2))
        fit = g.beta(src.fit.alpha, src.fit.beta, n)
        noise = g.standard_normal(n)
        score = ndtr(noise + d_prime * (readiness == 0) - d_prime / 2.0)
        sigma = src.deal_size.sigma
        value = g.lognormal(math.log(src.deal_size.mean_usd) - sigma**2 / 2.0, sigma, n)
        patience = g.standard_exponential(n) * proc.patience.mean_hours
        if proc.patience.distribution == "fixed":
            patience = np.full(n, proc.patience.mean_hours)
        e_ready = g.standard_exponential(n)
        e_leak = g.standard_exponential(n)
        with np.errstate(divide="ignore", over="ignore"):  # a zero hazard: never
            nurture_ready = e_ready / ready_rate if ready_rate > 0 else np.full(n, np.inf)
            nurture_leak = e_leak / leak_rate if leak_rate > 0 else np.full(n, np.inf)
        parts.append(
            {
                "source": np.full(n, code, dtype=np.int16),
                "arrival_hours": times,
                "readiness": readiness.astype(np.int8),
                "fit": fit,
                "score": score,
                "value": value,
                "patience": patience,
                "nurture_ready": np.where(readiness == 2, np.inf, nurture_ready),
                "nurture_leak": nurture_leak,
            }
        )
        # Outcome luck belongs to the lead and its attempt number, each column its own
        # stream, so the same lead meets the same luck at its k-th attempt whatever the
        # team, routing or attempt limit (common random numbers across scenarios).
        for a in range(attempt_columns(scenario)):
            for kind in ("contact", "qualify", "work"):
                g_a = stream(seed, "source", src.name, kind, str(a))
                draw = g_a.random(n) if kind != "work" else g_a.standard_exponential(n)
                parts[-1][f"{kind}_{a}"] = draw.astype(np.float32)
        g_close = stream(seed, "source", src.name, "close")
        parts[-1]["opportunity_u"] = g_close.random(n).astype(np.float32)
        parts[-1]["win_u"] = g_close.random(n).astype(np.float32)
        parts[-1]["close_e"] = g_close.standard_exponential(n)
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(merged["arrival_hours"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def attempt_columns(scenario: Scenario) -> int:
    """Attempts a lead can get: ``max_attempts`` per cycle, two cycles with nurture."""
    cycles = 2 if scenario.process.nurture.enabled else 1
    return scenario.team.max_attempts * cycles


def _compact(values: np.ndarray) -> array[float]:
    """A float32 column with fast scalar reads (4 bytes a value)."""
    out = array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


class BusinessClock:
    """On-shift hours elapsed since hour 0: the clock that patience runs on.

    Shift k starts at ``24 k + shift_start_hour`` and lasts ``shift_hours`` on a
    working day; round the clock, business hours are clock hours.
    """

    def __init__(self, scenario: Scenario, until_hours: float) -> None:
        team = scenario.team
        self.round_the_clock = team.round_the_clock
        self.start = team.shift_start_hour
        self.length = team.shift_hours
        first = scenario.run.start_date.weekday()
        n = math.ceil(until_hours / 24.0) + 2
        self.working = np.array(
            [WEEKDAYS[(first + k) % 7] in team.working_days for k in range(n)], dtype=bool
        )
        self.cum = np.concatenate([[0.0], np.cumsum(self.working * self.length)])
        self._working = self.working.tolist()
        self._cum = self.cum.tolist()

    def at(self, t: float) -> float:
        """Business hours elapsed by clock hour ``t``."""
        if self.round_the_clock:
            return t
        k = math.floor((t - self.start) / 24.0)
        if k < 0:
            return 0.0
        into = t - (k * 24.0 + self.start)
        return self._cum[k] + (min(into, self.length) if self._working[k] else 0.0)

    def hours(self, t: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`at`."""
        t = np.asarray(t, dtype=float)
        if self.round_the_clock:
            return t.copy()
        k = np.floor((t - self.start) / 24.0).astype(np.int64)
        kk = np.clip(k, 0, len(self.working) - 1)
        into = np.minimum(t - (kk * 24.0 + self.start), self.length)
        out = self.cum[kk] + np.where(self.working[kk], into, 0.0)
        return np.where(k < 0, 0.0, out)


class FunnelModel:
    """One run of the funnel for a validated scenario.

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

        drawn = _draw_leads(scenario, self.seed)
        self._drawn = drawn
        n = len(drawn["arrival_hours"])
        self.n_leads = n
        self._clock = BusinessClock(scenario, self.end_limit)
        # Hot per-lead state as Python lists (fast scalar access).
        self._src: list[int] = drawn["source"].tolist()
        self._arr: list[float] = drawn["arrival_hours"].tolist()
        self._pat: list[float] = drawn["patience"].tolist()
        self._ready: list[int] = drawn["readiness"].tolist()
        self._fit: list[float] = drawn["fit"].tolist()
        self._cycle_start: list[float] = list(self._arr)
        self._cycle_bh: list[float] = self._clock.hours(drawn["arrival_hours"]).tolist()
        self._cycle_attempts = [0] * n
        self._attempts = [0] * n
        self._qd = [1.0] * n
        self._contact_at = [0] * n
        self._contact_h: list[float] = [math.nan] * n
        self._qualified_h: list[float] = [math.nan] * n
        self._stage = [0] * n
        self._status = [_WAITING] * n
        self._first: list[float] = [math.nan] * n
        self._first_rep: list[int] = [-1] * n
        self._revenue = np.zeros(n)
        self._close = np.full(n, np.nan)
        self._exit = np.full(n, np.inf)
        self._nurtured = np.zeros(n, dtype=bool)
        self._routed = np.zeros(n, dtype=bool)
        self._unresolved = 0
        self._draining = False
        self._snapshot: dict[str, np.ndarray] = {}
        self._backlog_at_horizon = 0

        n_src = len(scenario.sources)
        columns = range(attempt_columns(scenario))
        self._u_contact = [_compact(drawn.pop(f"contact_{a}")) for a in columns]
        self._u_qualify = [_compact(drawn.pop(f"qualify_{a}")) for a in columns]
        self._e_work = [_compact(drawn.pop(f"work_{a}")) for a in columns]
        self._u_opportunity = _compact(drawn.pop("opportunity_u"))
        self._u_win = _compact(drawn.pop("win_u"))
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
        self._score: list[float] = drawn["score"].tolist()
        if team.work_minutes is not None:
            self._attempt_h, self._talk_h = team.work_minutes / 60.0, 0.0
        else:
            self._attempt_h = team.minutes_per_attempt / 60.0
            self._talk_h = team.minutes_per_conversation / 60.0
        self._exp_work = team.work_time == "exponential"
        self._max_att = team.max_attempts
        self._spacing = team.attempt_spacing_hours
        self._p_opp = [
            proc.opportunity_probability
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
        self._days_recorded = 0
        for _ in range(team.reps):
            self._add_rep(hired_at=-math.inf)
        self._hires: list[float] = []
        self._rep_days: dict[str, list[Any]] = {k: [] for k in _REP_DAY_COLUMNS}

        self._end = self.env.event()
        # Created first, so that it runs before anything else due at the horizon.
        Timeout(self.env, self.horizon).callbacks.append(self._at_horizon)
        self._done_cb = self._done
        source_ids = drawn["source"]
        self._processes: list[Any] = []
        for code in range(n_src):
            ids = np.nonzero(source_ids == code)[0]
            self._processes.append(
                self._arrivals(ids.tolist(), drawn["arrival_hours"][ids].tolist())
            )
        if not team.round_the_clock:
            self._processes.append(self._shifts())
        self._processes.append(self._days())
        for generator in self._processes:
            self.env.process(generator)

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
        self._idle.append(rep)
        return rep

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
                status[i] = _STALE
                self._unresolved -= 1
                if self._draining and not self._unresolved:
                    self._finish()
                continue
            return int(i)
        return -1

    def _resolve(self) -> None:
        """A lead reached its end (won, lost, stale, or out of nurture unready)."""
        self._unresolved -= 1
        if self._draining and not self._unresolved:
            self._finish()

    # ---------------------------------------------------------------- leads

    def _arrivals(self, ids: list[int], times: list[float]) -> Any:
        env = self.env
        arrive = self._arrive
        for i, t in zip(ids, times, strict=True):
            yield Timeout(env, t - env._now)
            arrive(i)

    def _arrive(self, i: int) -> None:
        self._unresolved += 1
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
                code = _QUALIFIED
            else:
                code = _NOT_READY if readiness == 1 else _DISQUALIFIED
            hours = (self._attempt_h + self._talk_h) * self._speed[rep]
        else:
            code = _NO_CONTACT
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
        self._status[i] = _SERVICE
        if code == _NO_CONTACT:
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
        if code == _NO_CONTACT:
            if self._cycle_attempts[i] < self._max_att:
                self._status[i] = _RETRY
                if self._spacing > 0:
                    Timeout(self.env, self._spacing, i).callbacks.append(self._requeue)
                else:
                    self._push(i)
            elif self._nurture_unreached and not self._nurtured[i]:
                self._to_nurture(i, now)
            else:
                self._status[i] = _LOST
                self._unresolved -= 1
                if self._draining and not self._unresolved:
                    self._finish()
        elif code == _DISQUALIFIED:
            self._status[i] = _LOST
            self._unresolved -= 1
            if self._draining and not self._unresolved:
                self._finish()
        elif code == _NOT_READY:
            if self._nurture_on:
                self._to_nurture(i, now)
            else:
                self._status[i] = _LOST
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
            self._status[i] = _LOST
            self._resolve()
            return
        self._stage[i] = 3
        self._close[i] = now + self._close_h[s] * float(self._drawn["close_e"][i])
        if self._u_win[i] < self._p_win[s]:
            self._stage[i] = 4
            self._status[i] = _WON
            self._revenue[i] = self._drawn["value"][i]
        else:
            self._status[i] = _LOST
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
            self._status[i] = _NURTURE
            if now + ready < self.end_limit:
                Timeout(self.env, ready, i).callbacks.append(self._from_nurture)
        else:
            self._status[i] = _LEAKED
            self._exit[i] = now + leak
            self._resolve()

    def _from_nurture(self, event: Timeout) -> None:
        i = event._value
        now = self.env._now
        self._ready[i] = 0
        self._cycle_start[i] = now
        self._cycle_bh[i] = self._clock.at(now)
        self._cycle_attempts[i] = 0
        self._status[i] = _WAITING
        self._push(i)
        if self._idle and self._on_shift:
            self._dispatch()

    # ------------------------------------------------------- shifts and days

    def _workday(self, day: int) -> bool:
        weekday = WEEKDAYS[(self.scenario.run.start_date.weekday() + day) % 7]
        return weekday in self.scenario.team.working_days

    def _new_selling_day(self) -> None:
        """Selling hours are renewed, and reps who stopped early come back."""
        if self._check_budget:
            self._budget = [self._selling_h] * len(self._employed)
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
        self._days_recorded = day + 1
        team, burn = self.scenario.team, self.scenario.burnout
        if team.round_the_clock:
            paid = 24.0
        else:
            paid = team.shift_hours if self._workday(day) else 0.0
        selling = min(self._selling_h, paid)
        n_reps = len(self._employed)
        h0 = -math.log(1.0 - burn.annual_turnover) / 365.0
        now = self.env._now
        rec = self._rep_days
        for rep in range(n_reps):
            if not self._employed[rep]:
                continue
            busy = self._busy_today[rep]
            attempts, fruitless = self._att_today[rep], self._fruit_today[rep]
            fatigue = self._fatigue[rep]
            quit_today = False
            if burn.enabled:
                util = min(1.0, busy / selling) if selling > 0 else 0.0
                u_star = burn.utilization_threshold
                fatigue -= fatigue / burn.recovery_days
                if util > u_star:
                    fatigue += burn.rise_per_day * (util - u_star) / max(1e-9, 1.0 - u_star)
                m = burn.futility_min_utilization
                if attempts and util > m:
                    f_star = burn.futility_threshold
                    excess = fruitless / attempts - f_star
                    if excess > 0:
                        weight = (util - m) / max(1e-9, 1.0 - m)
                        fatigue += (
                            burn.futility_rise_per_day * weight * excess / max(1e-9, 1.0 - f_star)
                        )
                fatigue = min(1.0, max(0.0, fatigue))
                self._fatigue[rep] = fatigue
                hazard = h0 * math.exp(burn.quit_fatigue_k * fatigue)
                quit_today = self._quit_rng[rep].random() < -math.expm1(-hazard)
            for key, value in (
                ("day", day),
                ("rep", rep),
                ("hours_paid", paid),
                ("hours_selling", selling),
                ("hours_busy", busy),
                ("attempts", attempts),
                ("fruitless", fruitless),
                ("fatigue", fatigue),
                ("quit", quit_today),
            ):
                rec[key].append(value)
            carry = self._busy_carry[rep]
            self._busy_today[rep] = min(carry, 24.0)
            self._busy_carry[rep] = carry - self._busy_today[rep]
            self._att_today[rep] = 0
            self._fruit_today[rep] = 0
            if quit_today:
                self._quit(rep)
                continue
            productivity = 1.0
            if self._hired_at[rep] > -math.inf and team.ramp_days > 0:
                ramp = (now - self._hired_at[rep]) / (team.ramp_days * 24.0)
                start = team.ramp_start_productivity
                productivity = min(1.0, start + (1.0 - start) * ramp)
            self._speed[rep] = (1.0 + burn.slowdown_at_full_fatigue * fatigue) / productivity
            self._conv[rep] = 1.0 - burn.conversion_loss_at_full_fatigue * fatigue
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
        self._snapshot = {
            "status": np.asarray(self._status, dtype=np.int8),
            "stage": np.asarray(self._stage, dtype=np.int8),
            "attempts": np.asarray(self._attempts, dtype=np.int32),
            "cycle_attempts": np.asarray(self._cycle_attempts, dtype=np.int32),
            "cycle_bh": np.asarray(self._cycle_bh),
        }
        self._draining = True
        if not self._cohort or not self._unresolved:
            self._finish()
        else:
            Timeout(self.env, self.end_limit - self.horizon).callbacks.append(self._finish)

    def _finish(self, event: Timeout | None = None) -> None:
        if not self._end.triggered:
            self._end.succeed()

    def _states(
        self,
        at: float,
        status: np.ndarray,
        stage: np.ndarray,
        attempts: np.ndarray,
        cycle_attempts: np.ndarray,
        cycle_bh: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final state and furthest stage of every lead at clock hour ``at``, and the queue."""
        close, exit_ = self._close, self._exit
        pending_deal = np.isfinite(close) & (close > at)
        waited = self._clock.at(at) - cycle_bh
        expired = (status == _WAITING) & (cycle_attempts == 0) & self._patience_on
        expired &= waited > self._drawn["patience"]
        state = np.full(len(status), FINAL_STATES.index("in_progress"), dtype=np.int8)
        state[(status == _WON) & ~pending_deal] = FINAL_STATES.index("won")
        state[(status == _LOST) & ~pending_deal] = FINAL_STATES.index("lost")
        state[(status == _LEAKED) & (exit_ <= at)] = FINAL_STATES.index("lost")
        state[(status == _STALE) | expired] = FINAL_STATES.index("stale")
        nurturing = (status == _NURTURE) | ((status == _LEAKED) & (exit_ > at))
        state[nurturing] = FINAL_STATES.index("nurturing")
        state[(status == _WAITING) & ~expired & (attempts == 0)] = FINAL_STATES.index("unworked")
        stage = np.where((stage == 4) & pending_deal, 3, stage).astype(np.int8)
        queued = ((status == _WAITING) & ~expired) | (status == _RETRY)
        return state, stage, queued

    # ------------------------------------------------------------------ run

    def run(self) -> Records:
        """Simulate to the horizon (and with cohort accounting, past it) and return records."""
        self.env.run(until=self._end)
        end = self.env.now
        # A horizon inside a day: close the last, partial day here.
        for day in range(self._days_recorded, math.ceil(end / 24.0)):
            self._end_of_day(day)
        # Pending events hold this model's bound methods, suspended processes hold it
        # in their frames, and _done_cb is a bound method of its own: release them all,
        # so the model is freed at once rather than by a later garbage collection
        # (which would let memory climb over a long sweep).
        self.env._queue.clear()
        for generator in self._processes:
            generator.close()
        self._processes.clear()
        del self._done_cb
        snap = self._snapshot
        final, stage_h, queued = self._states(
            self.horizon,
            snap["status"],
            snap["stage"],
            snap["attempts"],
            snap["cycle_attempts"],
            snap["cycle_bh"],
        )
        cohort_state, cohort_stage, _ = self._states(
            end,
            np.asarray(self._status, dtype=np.int8),
            np.asarray(self._stage, dtype=np.int8),
            np.asarray(self._attempts, dtype=np.int32),
            np.asarray(self._cycle_attempts, dtype=np.int32),
            np.asarray(self._cycle_bh),
        )
        d = self._drawn
        leads = {
            "source": d["source"],
            "arrival_hours": d["arrival_hours"],
            "first_response_hours": np.asarray(self._first, dtype=float),
            "attempts": np.asarray(self._attempts, dtype=np.int32),
            "furthest_stage": stage_h,
            "final_state": final,
            "cohort_stage": cohort_stage,
            "cohort_state": cohort_state,
            # a deal decided but closing after the run stopped is not revenue yet
            "revenue_usd": np.where(cohort_state == FINAL_STATES.index("won"), self._revenue, 0.0),
            "rep": np.asarray(self._first_rep, dtype=np.int32),
            "close_hours": self._close,
            "nurtured": self._nurtured,
            "routed_to_nurture": self._routed,
            "contact_attempt": np.asarray(self._contact_at, dtype=np.int16),
            "contact_hours": np.asarray(self._contact_h),
            "qualified_hours": np.asarray(self._qualified_h),
            "readiness": d["readiness"],
            "fit": d["fit"],
            "score": d["score"],
        }
        rep_days = {
            key: np.asarray(self._rep_days[key], dtype=dtype)
            for key, dtype in _REP_DAY_COLUMNS.items()
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


_REP_DAY_COLUMNS: dict[str, Any] = {
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

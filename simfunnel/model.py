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
abandonment event per lead (the M/M/c+M queue).
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

# Live status of a lead during the run.
_WAITING, _RETRY, _SERVICE, _NURTURE, _WON, _LOST, _STALE, _OPEN = range(8)

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
        ``source_names``), ``arrival_hours``, ``first_response_hours`` (NaN if never
        attempted), ``attempts``, ``furthest_stage`` (code into :data:`STAGES`),
        ``final_state`` (code into :data:`FINAL_STATES`), ``revenue_usd``, ``rep``
        (first rep to work it, -1 if none), ``close_hours`` (NaN if no opportunity),
        ``nurtured``, ``readiness`` (code into :data:`READINESS`), ``fit``, ``score``.
    rep_days
        One entry per rep per day employed: ``day``, ``rep``, ``hours_paid``,
        ``hours_busy``, ``attempts``, ``fruitless``, ``fatigue`` (end of day),
        ``quit`` (the rep quit that day).
    busy_hours_by_source
        Rep hours spent on each source's leads.
    hire_hours
        Hours at which replacement reps started.
    backlog_end
        Leads waiting in the queue, or between attempts, at the end.
    """

    leads: dict[str, np.ndarray]
    rep_days: dict[str, np.ndarray]
    busy_hours_by_source: np.ndarray
    hire_hours: np.ndarray
    backlog_end: int
    source_names: tuple[str, ...]
    horizon_hours: float
    seed: int


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
        self.horizon = scenario.run.horizon_days * 24.0
        team, proc = scenario.team, scenario.process

        drawn = _draw_leads(scenario, self.seed)
        self._drawn = drawn
        n = len(drawn["arrival_hours"])
        self.n_leads = n
        # Hot per-lead state as Python lists (fast scalar access).
        self._src: list[int] = drawn["source"].tolist()
        self._arr: list[float] = drawn["arrival_hours"].tolist()
        self._pat: list[float] = drawn["patience"].tolist()
        self._ready: list[int] = drawn["readiness"].tolist()
        self._cycle_start: list[float] = list(self._arr)
        self._cycle_attempts = [0] * n
        self._attempts = [0] * n
        self._stage = [0] * n
        self._status = [_WAITING] * n
        self._first: list[float] = [math.nan] * n
        self._first_rep: list[int] = [-1] * n
        self._revenue = np.zeros(n)
        self._close = np.full(n, np.nan)
        self._nurtured = np.zeros(n, dtype=bool)

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
        self._qual_p = (
            proc.qualification.ready,
            proc.qualification.not_ready,
            proc.qualification.unqualified,
        )
        self._decay_on = proc.decay.enabled
        self._tau_h = proc.decay.tau_minutes / 60.0
        self._phi = proc.decay.floor
        self._patience_on = proc.patience.enabled
        self._nurture_on = proc.nurture.enabled
        self._nurture_below = proc.routing.nurture_below_score
        self._score: list[float] = drawn["score"].tolist()
        self._attempt_h = team.minutes_per_attempt / 60.0 / team.selling_share
        self._talk_h = team.minutes_per_conversation / 60.0 / team.selling_share
        self._exp_work = team.work_time == "exponential"
        self._max_att = team.max_attempts
        self._spacing = team.attempt_spacing_hours
        self._p_opp = proc.opportunity_probability
        self._p_win = proc.win_probability
        self._close_h = proc.days_to_close * 24.0

        # The queue and its discipline.
        self._queue: Any
        if proc.routing.policy == "fifo":
            self._queue = deque()
            self._push = self._queue.append
            self._pop = self._queue.popleft
        elif proc.routing.policy == "newest_first":
            self._queue = []
            self._push = self._queue.append
            self._pop = self._queue.pop
        else:
            heap: list[tuple[float, int]] = []
            self._queue = heap
            score = self._score
            self._push = lambda i: heappush(heap, (-score[i], i))
            self._pop = lambda: heappop(heap)[1]

        # Reps.
        self._on_shift = team.round_the_clock
        self._idle: list[int] = []
        self._employed: list[bool] = []
        self._leaving: list[bool] = []
        self._fatigue: list[float] = []
        self._hired_at: list[float] = []
        self._speed: list[float] = []
        self._conv: list[float] = []
        self._busy_today: list[float] = []
        self._att_today: list[int] = []
        self._fruit_today: list[int] = []
        self._quit_rng: list[np.random.Generator] = []
        self._days_recorded = 0
        for _ in range(team.reps):
            self._add_rep(hired_at=-math.inf)
        self._hires: list[float] = []
        self._rep_days: dict[str, list[Any]] = {
            k: []
            for k in (
                "day",
                "rep",
                "hours_paid",
                "hours_busy",
                "attempts",
                "fruitless",
                "fatigue",
                "quit",
            )
        }

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
        self._busy_today.append(0.0)
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
            self._start(idle.pop(), lead)

    def _next_lead(self) -> int:
        queue, pop = self._queue, self._pop
        if not self._patience_on:
            return pop() if queue else -1
        now = self.env._now
        ca, cs, pat, status = self._cycle_attempts, self._cycle_start, self._pat, self._status
        while queue:
            i = pop()
            if ca[i] == 0 and now - cs[i] > pat[i]:
                status[i] = _STALE
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
        below = self._nurture_below
        if below is not None and self._score[i] < below:
            self._to_nurture(i, self.env._now)
            return
        self._push(i)
        if self._idle and self._on_shift:
            self._dispatch()

    def _start(self, rep: int, i: int) -> None:
        now = self.env._now
        s = self._src[i]
        attempts = self._attempts
        a = attempts[i]
        if a == 0:
            # The clock reaches a pre-drawn arrival time by adding a float delay, which
            # can land a rounding error before it: a lead taken at once waited zero.
            delay = now - self._arr[i]
            self._first[i] = delay if delay > 0.0 else 0.0
            self._first_rep[i] = rep
        attempts[i] = a + 1
        self._cycle_attempts[i] += 1
        self._status[i] = _SERVICE
        q = self._conv[rep]
        if self._decay_on:
            phi = self._phi
            q *= phi + (1.0 - phi) * math.exp((self._cycle_start[i] - now) / self._tau_h)
        if self._u_contact[a][i] < self._contact_p * q:
            stage = self._stage
            if stage[i] < 1:
                stage[i] = 1
            readiness = self._ready[i]
            p = self._qual_p[readiness]
            if readiness == 0:
                p = min(1.0, p * 2.0 * float(self._drawn["fit"][i]))
            if self._u_qualify[a][i] < p * q:
                code = _QUALIFIED
            else:
                code = _NOT_READY if readiness == 1 else _DISQUALIFIED
            hours = (self._attempt_h + self._talk_h) * self._speed[rep]
        else:
            code = _NO_CONTACT
            hours = self._attempt_h * self._speed[rep]
            self._fruit_today[rep] += 1
        if self._exp_work:
            hours *= self._e_work[a][i]
        self._busy_today[rep] += hours
        self._att_today[rep] += 1
        self._busy_by_source[s] += hours
        Timeout(self.env, hours, (rep, i, code)).callbacks.append(self._done_cb)

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
            else:
                self._status[i] = _LOST
        elif code == _DISQUALIFIED:
            self._status[i] = _LOST
        elif code == _NOT_READY:
            if self._nurture_on:
                self._to_nurture(i, now)
            else:
                self._status[i] = _LOST
        else:
            self._qualify(i, now)
        # The rep moves on.
        if self._leaving[rep]:
            self._leaving[rep] = False
            return
        if self._on_shift:
            nxt = self._next_lead()
            if nxt >= 0:
                self._start(rep, nxt)
                return
        self._idle.append(rep)

    def _qualify(self, i: int, now: float) -> None:
        self._stage[i] = 2
        if self._u_opportunity[i] >= self._p_opp:
            self._status[i] = _LOST
            return
        self._stage[i] = 3
        close = now + self._close_h * float(self._drawn["close_e"][i])
        won = self._u_win[i] < self._p_win
        self._close[i] = close
        if close > self.horizon:
            self._status[i] = _OPEN
        elif won:
            self._stage[i] = 4
            self._status[i] = _WON
            self._revenue[i] = self._drawn["value"][i]
        else:
            self._status[i] = _LOST

    def _requeue(self, event: Timeout) -> None:
        self._push(event._value)
        if self._idle and self._on_shift:
            self._dispatch()

    def _to_nurture(self, i: int, now: float) -> None:
        self._nurtured[i] = True
        ready = float(self._drawn["nurture_ready"][i])
        leak = float(self._drawn["nurture_leak"][i])
        if ready < leak and now + ready < self.horizon:
            self._status[i] = _NURTURE
            Timeout(self.env, ready, i).callbacks.append(self._from_nurture)
        elif leak <= ready and now + leak <= self.horizon:
            self._status[i] = _LOST
        else:
            self._status[i] = _NURTURE

    def _from_nurture(self, event: Timeout) -> None:
        i = event._value
        self._ready[i] = 0
        self._cycle_start[i] = self.env._now
        self._cycle_attempts[i] = 0
        self._status[i] = _WAITING
        self._push(i)
        if self._idle and self._on_shift:
            self._dispatch()

    # ------------------------------------------------------- shifts and days

    def _workday(self, day: int) -> bool:
        weekday = WEEKDAYS[(self.scenario.run.start_date.weekday() + day) % 7]
        return weekday in self.scenario.team.working_days

    def _shifts(self) -> Any:
        team = self.scenario.team
        day = 0
        while day * 24.0 + team.shift_start_hour < self.horizon:
            if self._workday(day):
                yield Timeout(self.env, day * 24.0 + team.shift_start_hour - self.env._now)
                self._on_shift = True
                self._dispatch()
                yield Timeout(self.env, team.shift_hours)
                self._on_shift = False
            day += 1

    def _days(self) -> Any:
        n_days = math.ceil(self.horizon / 24.0)
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
                util = min(1.0, busy / paid) if paid > 0 else 0.0
                u_star = burn.utilization_threshold
                fatigue -= fatigue / burn.recovery_days
                if util > u_star:
                    fatigue += burn.rise_per_day * (util - u_star) / max(1e-9, 1.0 - u_star)
                if attempts:
                    f_star = burn.futility_threshold
                    excess = fruitless / attempts - f_star
                    if excess > 0:
                        fatigue += burn.futility_rise_per_day * excess / max(1e-9, 1.0 - f_star)
                fatigue = min(1.0, max(0.0, fatigue))
                self._fatigue[rep] = fatigue
                hazard = h0 * math.exp(burn.quit_fatigue_k * fatigue)
                quit_today = self._quit_rng[rep].random() < -math.expm1(-hazard)
            for key, value in (
                ("day", day),
                ("rep", rep),
                ("hours_paid", paid),
                ("hours_busy", busy),
                ("attempts", attempts),
                ("fruitless", fruitless),
                ("fatigue", fatigue),
                ("quit", quit_today),
            ):
                rec[key].append(value)
            self._busy_today[rep] = 0.0
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

    def _quit(self, rep: int) -> None:
        self._employed[rep] = False
        if rep in self._idle:
            self._idle.remove(rep)
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

    # ------------------------------------------------------------------ run

    def run(self) -> Records:
        """Simulate to the horizon and return the records."""
        self.env.run(until=self.horizon)
        # run(until=h) stops before events at h itself: close the last day here.
        for day in range(self._days_recorded, math.ceil(self.horizon / 24.0)):
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
        status = np.asarray(self._status, dtype=np.int8)
        attempts = np.asarray(self._attempts, dtype=np.int32)
        cycle_attempts = np.asarray(self._cycle_attempts, dtype=np.int32)
        waited = self.horizon - np.asarray(self._cycle_start)
        expired = (status == _WAITING) & (cycle_attempts == 0) & self._patience_on
        expired &= waited > self._drawn["patience"]
        final = np.full(len(status), FINAL_STATES.index("in_progress"), dtype=np.int8)
        final[status == _WON] = FINAL_STATES.index("won")
        final[status == _LOST] = FINAL_STATES.index("lost")
        final[(status == _STALE) | expired] = FINAL_STATES.index("stale")
        final[status == _NURTURE] = FINAL_STATES.index("nurturing")
        final[(status == _WAITING) & ~expired & (attempts == 0)] = FINAL_STATES.index("unworked")
        queued = ((status == _WAITING) & ~expired) | (status == _RETRY)
        d = self._drawn
        leads = {
            "source": d["source"],
            "arrival_hours": d["arrival_hours"],
            "first_response_hours": np.asarray(self._first, dtype=float),
            "attempts": attempts,
            "furthest_stage": np.asarray(self._stage, dtype=np.int8),
            "final_state": final,
            "revenue_usd": self._revenue,
            "rep": np.asarray(self._first_rep, dtype=np.int32),
            "close_hours": self._close,
            "nurtured": self._nurtured,
            "readiness": d["readiness"],
            "fit": d["fit"],
            "score": d["score"],
        }
        rep_days = {
            "day": np.asarray(self._rep_days["day"], dtype=np.int32),
            "rep": np.asarray(self._rep_days["rep"], dtype=np.int32),
            "hours_paid": np.asarray(self._rep_days["hours_paid"], dtype=float),
            "hours_busy": np.asarray(self._rep_days["hours_busy"], dtype=float),
            "attempts": np.asarray(self._rep_days["attempts"], dtype=np.int32),
            "fruitless": np.asarray(self._rep_days["fruitless"], dtype=np.int32),
            "fatigue": np.asarray(self._rep_days["fatigue"], dtype=float),
            "quit": np.asarray(self._rep_days["quit"], dtype=bool),
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
        )

"""A run's inputs, drawn before it starts, and the clock that patience runs on.

Every lead's arrival, attributes and luck are pre-drawn with numpy, source by
source from named streams (common random numbers).
"""

from __future__ import annotations

import math
from array import array

import numpy as np
from scipy.special import ndtr, ndtri

from simfunnel.arrivals import arrival_times
from simfunnel.parameters import WEEKDAYS, Scenario
from simfunnel.streams import stream

HOURS_PER_MONTH = 365.25 * 24 / 12


def draw_leads(scenario: Scenario, seed: int) -> dict[str, np.ndarray]:
    """Pre-draw every lead's arrival and attributes, source by source, merged in time.

    Each source has its own streams, so changing one source leaves the others'
    leads untouched. Every attribute is drawn whether or not its mechanism is on,
    so that switching a mechanism off does not reshuffle the rest; only draws that
    nothing would read and that come last in their stream are left out (the
    nurture times without nurture, the work times of fixed work), which changes
    no other draw.
    """
    proc = scenario.process
    # Nurture is reached with nurture on, or by routing low scores to it.
    need_nurture = proc.nurture.enabled or proc.routing.nurture_below_score is not None
    kinds = (
        ("contact", "qualify", "work")
        if scenario.team.work_time == "exponential"
        else (
            "contact",
            "qualify",
        )
    )
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
        if need_nurture:
            e_ready = g.standard_exponential(n)
            e_leak = g.standard_exponential(n)
            with np.errstate(divide="ignore", over="ignore"):  # a zero hazard: never
                nurture_ready = e_ready / ready_rate if ready_rate > 0 else np.full(n, np.inf)
                nurture_leak = e_leak / leak_rate if leak_rate > 0 else np.full(n, np.inf)
            nurture_ready = np.where(readiness == 2, np.inf, nurture_ready)
        else:
            nurture_ready = nurture_leak = np.full(n, np.inf)
        parts.append(
            {
                "source": np.full(n, code, dtype=np.int16),
                "arrival_hours": times,
                "readiness": readiness.astype(np.int8),
                "fit": fit,
                "score": score,
                "value": value,
                "patience": patience,
                "nurture_ready": nurture_ready,
                "nurture_leak": nurture_leak,
            }
        )
        # Outcome luck belongs to the lead and its attempt number, each column its own
        # stream, so the same lead meets the same luck at its k-th attempt whatever the
        # team, routing or attempt limit (common random numbers across scenarios).
        for a in range(attempt_columns(scenario)):
            for kind in kinds:
                g_a = stream(seed, "source", src.name, kind, str(a))
                draw = g_a.random(n) if kind != "work" else g_a.standard_exponential(n)
                parts[-1][f"{kind}_{a}"] = draw.astype(np.float32)
        g_close = stream(seed, "source", src.name, "close")
        parts[-1]["opportunity_u"] = g_close.random(n).astype(np.float32)
        parts[-1]["win_u"] = g_close.random(n).astype(np.float32)
        parts[-1]["close_e"] = g_close.standard_exponential(n)
    if len(parts) == 1:  # already in time order
        return parts[0]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(merged["arrival_hours"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def attempt_columns(scenario: Scenario) -> int:
    """Attempts a lead can get: ``max_attempts`` per cycle, two cycles with nurture."""
    cycles = 2 if scenario.process.nurture.enabled else 1
    return scenario.team.max_attempts * cycles


def compact(values: np.ndarray) -> array[float]:
    """A float32 column with fast scalar reads (4 bytes a value)."""
    out = array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).data.cast("B"))
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

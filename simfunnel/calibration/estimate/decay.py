"""Speed-to-lead decay: the contact chance falling with the first-response delay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from simfunnel.calibration.estimate.censoring import stage_flags
from simfunnel.calibration.estimate.cure import LEVEL
from simfunnel.calibration.estimate.intervals import _Z, _row
from simfunnel.calibration.estimate.timing import response_minutes


@dataclass(frozen=True)
class DecayFit:
    """Maximum-likelihood speed-to-lead decay with a profile-likelihood interval for tau."""

    tau_minutes: float
    tau_low: float
    tau_high: float
    floor: float
    floor_low: float
    floor_high: float
    first_probability: float
    retry_probability: float
    n: int
    outcome: str


def _decay_nll(
    theta: np.ndarray,
    d: np.ndarray,
    k: np.ndarray,
    y: np.ndarray,
    log_tau: float | None = None,
    w: np.ndarray | None = None,
) -> float:
    c1 = special.expit(theta[0])
    c2 = special.expit(theta[1])
    phi = special.expit(theta[2])
    tau = math.exp(theta[3] if log_tau is None else log_tau)
    q = phi + (1 - phi) * np.exp(-d / tau)
    p1 = np.clip(c1 * q, 1e-12, 1 - 1e-12)
    p2 = np.clip(c2 * q, 1e-12, 1 - 1e-12)
    # not reached in k attempts; or reached at attempt k, after k - 1 misses
    miss = np.log1p(-p1) + (k - 1) * np.log1p(-p2)
    first = k <= 1
    hit = np.where(
        first, np.log(p1), np.log1p(-p1) + np.maximum(k - 2, 0) * np.log1p(-p2) + np.log(p2)
    )
    ll = np.where(y, hit, miss)
    return float(-(ll * w).sum() if w is not None else -ll.sum())


def _grouped(
    d: np.ndarray, k: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leads grouped by attempts, outcome and a fine log bin of the delay (about 2% wide).

    The likelihood of a group is its size times that of its mean delay, so large
    exports fit in the time of small ones.
    """
    positive = d[d > 0]
    if len(positive) == 0:
        bins = np.zeros(len(d), dtype=int)
    else:
        edges = np.geomspace(max(float(positive.min()), 1e-3), float(positive.max()) * 1.001, 800)
        bins = np.where(d > 0, np.searchsorted(edges, d) + 1, 0)
    table = pd.DataFrame({"b": bins, "k": k, "y": y, "d": d})
    grouped = table.groupby(["b", "k", "y"], sort=False).agg(d=("d", "mean"), w=("d", "size"))
    keys = grouped.index.to_frame(index=False)
    return (
        grouped["d"].to_numpy(float),
        keys["k"].to_numpy(float),
        keys["y"].to_numpy(bool),
        grouped["w"].to_numpy(float),
    )


def fit_decay(frame: pd.DataFrame, outcome: str = "contacted") -> DecayFit | None:
    """Speed-to-lead decay q(d) = phi + (1 - phi) exp(-d / tau) by maximum likelihood.

    A lead first answered after d minutes is reached at its k-th attempt
    (``attempts``, as the model stops dialling a lead once it is reached) with
    probability (1 - c1 q)(1 - c2 q)^(k-2) c2 q, or c1 q at the first, and not reached in
    k attempts with probability (1 - c1 q)(1 - c2 q)^(k-1); c1 and c2 are the chances of
    the first and of each later attempt at no delay (the model's contact and retry
    probabilities). Without an attempts column every lead counts one attempt. tau's
    interval is the profile likelihood (chi-square, 1 degree of freedom); phi's comes
    from the observed information.

    Returns None when the data lacks response times or the outcome.
    """
    flags = stage_flags(frame)
    if outcome not in flags:
        return None
    d = response_minutes(frame)
    ok = d.notna() & (d >= 0)
    if "attempts" in frame:
        attempts = frame["attempts"].astype(float)
        ok &= attempts.fillna(0) >= 1
        k = attempts.where(ok).clip(lower=1).to_numpy(float)
    else:
        k = np.ones(len(frame))
    if int(ok.sum()) < 50:
        return None
    y = flags[outcome][0].to_numpy(bool)[ok.to_numpy()]
    dd = d[ok].to_numpy(float)
    kk = k[ok.to_numpy()]
    if y.all() or not y.any() or len(np.unique(dd)) < 5:
        return None  # no outcome variation, or delays too alike to tell a decay
    scale = max(float(np.median(dd)), 1.0)
    dd, kk, y, w = _grouped(dd, kk, y)
    starts = [math.log(scale * f) for f in (0.5, 2.0, 8.0)]
    best = None
    for log_tau in starts:
        res = optimize.minimize(
            _decay_nll,
            np.array([0.0, -1.0, -1.0, log_tau]),
            args=(dd, kk, y, None, w),
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-5, "fatol": 1e-6},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    # Nelder-Mead can stall on a ridge of (phi, tau): restart from where it stopped
    for _ in range(3):
        again = optimize.minimize(
            _decay_nll,
            best.x,
            args=(dd, kk, y, None, w),
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-7},
        )
        if again.fun >= best.fun - 1e-6:
            break
        best = again
    theta = best.x
    nll0 = float(best.fun)
    # profile likelihood of log tau: where it rises by chi2(1)/2 on each side
    cut = stats.chi2.ppf(LEVEL, 1) / 2
    x0 = theta[:3]

    def excess(g: float) -> float:
        r = optimize.minimize(
            lambda t: _decay_nll(np.append(t, 0.0), dd, kk, y, log_tau=g, w=w),
            x0,
            method="Nelder-Mead",
            options={"maxiter": 2000, "xatol": 1e-4, "fatol": 1e-5},
        )
        return float(r.fun) - nll0 - cut

    bounds = []
    for sign in (-1.0, 1.0):
        step, far, near = 0.25, float(theta[3]), float(theta[3])
        found = False
        limit = math.log(0.1) if sign < 0 else math.log(1e6)
        while not found and sign * (limit - far) > 0:
            near = far
            far = max(far - step, limit) if sign < 0 else min(far + step, limit)
            found = excess(far) > 0
            step *= 1.5
        if found and excess(near) < 0:
            bounds.append(optimize.brentq(excess, min(near, far), max(near, far), xtol=1e-3))
        elif found:  # the profile is rough here: take the step's far end, a wider interval
            bounds.append(far)
        else:
            bounds.append(-math.inf if sign < 0 else math.inf)
    tau_lo, tau_hi = math.exp(bounds[0]), math.exp(bounds[1])
    # phi: a numerical second derivative on the logit scale
    h = 1e-3
    e = np.array([0.0, 0.0, h, 0.0])
    second = (
        _decay_nll(theta + e, dd, kk, y, w=w) - 2 * nll0 + _decay_nll(theta - e, dd, kk, y, w=w)
    ) / h**2
    se = 1 / math.sqrt(second) if second > 0 else math.inf
    phi_lo = float(special.expit(theta[2] - _Z * se))
    phi_hi = float(special.expit(theta[2] + _Z * se))
    return DecayFit(
        tau_minutes=math.exp(theta[3]),
        tau_low=tau_lo,
        tau_high=tau_hi,
        floor=float(special.expit(theta[2])),
        floor_low=phi_lo,
        floor_high=phi_hi,
        first_probability=float(special.expit(theta[0])),
        retry_probability=float(special.expit(theta[1])),
        n=int(ok.sum()),
        outcome=outcome,
    )


def decay_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for tau and phi (``process.decay``) when response times and outcomes both exist."""
    outcome = "contacted" if "contacted" in stage_flags(frame) else "qualified"
    fit = fit_decay(frame, outcome)
    if fit is None:
        return []
    how = f"maximum likelihood on {outcome} given first-response delay and attempts"
    return [
        _row(
            "process.decay.tau_minutes",
            "all",
            fit.tau_minutes,
            fit.tau_low,
            fit.tau_high,
            fit.n,
            how + "; profile-likelihood interval",
        ),
        _row(
            "process.decay.floor",
            "all",
            fit.floor,
            fit.floor_low,
            fit.floor_high,
            fit.n,
            how + "; Wald interval on the logit",
        ),
    ]

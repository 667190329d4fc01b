"""Time to an event when some never have it: a Weibull mixture cure model (lifelines).

A deal still open long after nearly every deal has closed is more likely one that will
never close than a slow one. A plain survival fit treats it as a slow close and
stretches the time to close; a mixture cure model splits the rows into a share that
never has the event and a Weibull time to the event for the rest, so the time to close
is the mean of the rows that do close. lifelines' :class:`~lifelines.MixtureCureFitter`
does the maximum-likelihood fit; the interval of the mean comes from its covariance.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special

#: Confidence level of the intervals.
LEVEL = 0.95
#: Draws of the parameters behind the interval of the mean.
_DRAWS = 2000


@dataclass(frozen=True)
class CureFit:
    """A mixture cure fit: the share that never has the event and the time of the rest.

    Attributes
    ----------
    cured, cured_low, cured_high
        Share of rows that never have the event, with its 95% interval.
    mean, low, high
        Mean time to the event among the rows that have it (Weibull), with its interval.
    aic
        Akaike information criterion of the fit (three parameters).
    events, censored
        Rows with the event, and rows censored (still open at the end of the data).
    """

    cured: float
    cured_low: float
    cured_high: float
    mean: float
    low: float
    high: float
    aic: float
    events: int
    censored: int


def weibull_mean(scale: np.ndarray | float, shape: np.ndarray | float) -> np.ndarray:
    """Mean of a Weibull with lifelines' ``lambda_`` (scale) and ``rho_`` (shape)."""
    return np.asarray(scale) * special.gamma(1.0 + 1.0 / np.asarray(shape))


def fit_cure(durations: np.ndarray, events: np.ndarray, seed: int = 0) -> CureFit | None:
    """Fit the cure model to ``durations`` (days) with ``events`` (True: had the event).

    Returns None where it cannot be fitted: fewer than 5 events, no censored row (then
    nothing is "cured"), or a fit that does not converge.
    """
    from lifelines import MixtureCureFitter, WeibullFitter

    durations = np.clip(np.asarray(durations, dtype=float), 1e-3, None)
    events = np.asarray(events, dtype=bool)
    n_events, n_censored = int(events.sum()), int((~events).sum())
    if n_events < 5 or n_censored == 0 or len(np.unique(durations[events])) < 3:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                model = MixtureCureFitter(base_fitter=WeibullFitter()).fit(durations, events)
    except Exception:  # lifelines raises its own convergence errors, of several types
        return None
    params = model.params_
    names = list(params.index)
    centre = params.to_numpy(float)
    cov = np.asarray(model.variance_matrix_, dtype=float)
    if not np.all(np.isfinite(cov)) or not np.all(np.isfinite(centre)):
        return None
    cured = float(params["cured_fraction_"])
    scale, shape = float(params["lambda_"]), float(params["rho_"])
    if not (0.0 <= cured < 1.0 and scale > 0 and shape > 0):
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(centre, cov, size=_DRAWS, check_valid="ignore")
    keep = (draws[:, names.index("lambda_")] > 0) & (draws[:, names.index("rho_")] > 0.05)
    means = weibull_mean(draws[keep, names.index("lambda_")], draws[keep, names.index("rho_")])
    tail = (1 - LEVEL) / 2
    lo, hi = (float(q) for q in np.quantile(means, [tail, 1 - tail]))
    z = 1.959963984540054
    se = math.sqrt(max(cov[names.index("cured_fraction_"), names.index("cured_fraction_")], 0.0))
    return CureFit(
        cured=cured,
        cured_low=max(0.0, cured - z * se),
        cured_high=min(1.0, cured + z * se),
        mean=float(weibull_mean(scale, shape)),
        low=max(0.0, lo),
        high=hi,
        aic=float(model.AIC_),
        events=n_events,
        censored=n_censored,
    )

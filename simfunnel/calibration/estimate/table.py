"""The estimates table: every direct estimate the data allows, step by step."""

from __future__ import annotations

from typing import Any

import pandas as pd

from simfunnel.calibration.estimate.conversion import conversion_estimates
from simfunnel.calibration.estimate.decay import decay_estimates
from simfunnel.calibration.estimate.intervals import ESTIMATE_COLUMNS
from simfunnel.calibration.estimate.score import score_estimates
from simfunnel.calibration.estimate.team import team_estimates
from simfunnel.calibration.estimate.timing import close_time_estimates, response_estimates
from simfunnel.calibration.estimate.value import churn_estimates, deal_size_estimates
from simfunnel.calibration.estimate.volume import volume_estimates


def estimates(
    frame: pd.DataFrame, outcomes: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every direct estimate the data allows, as a tidy table, and the per-source profiles.

    Parameters
    ----------
    frame
        Every lead: the volumes.
    outcomes
        The leads whose outcomes were recorded (default ``frame``): conversion, timing,
        value, team and score (see :mod:`simfunnel.calibration.estimate.recording`).

    Returns
    -------
    (table, extras)
        ``table`` has the columns of :data:`ESTIMATE_COLUMNS`; ``extras`` holds the
        weekday and hour profiles and bursts per source (see :func:`volume_estimates`).
    """
    rows, extras = volume_estimates(frame)
    for part in (
        conversion_estimates,
        close_time_estimates,
        deal_size_estimates,
        churn_estimates,
        response_estimates,
        decay_estimates,
        team_estimates,
        score_estimates,
    ):
        rows += part(frame if outcomes is None else outcomes)
    return pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS)), extras

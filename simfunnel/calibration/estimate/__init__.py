"""Step 2 of a calibration: direct estimates from the canonical lead frame.

One module a quantity: :mod:`~simfunnel.calibration.estimate.intervals` (the level, Wilson
intervals, the estimates table's rows), :mod:`~simfunnel.calibration.estimate.censoring`
(the end of the data, stage flags, the share ever reached, observed rates),
:mod:`~simfunnel.calibration.estimate.cure` (the cure-rate fit),
:mod:`~simfunnel.calibration.estimate.recording` (the start of outcome recording, cohorts),
:mod:`~simfunnel.calibration.estimate.volume` (level, trend, campaigns) on
:mod:`~simfunnel.calibration.estimate.weekly` (weekly counts, baselines, campaign weeks),
:mod:`~simfunnel.calibration.estimate.conversion`,
:mod:`~simfunnel.calibration.estimate.timing` (close time, created to won, response),
:mod:`~simfunnel.calibration.estimate.value` (deal size, churn),
:mod:`~simfunnel.calibration.estimate.decay` (speed-to-lead decay),
:mod:`~simfunnel.calibration.estimate.team`, :mod:`~simfunnel.calibration.estimate.score`,
:mod:`~simfunnel.calibration.estimate.undated` (exports without dates) and
:mod:`~simfunnel.calibration.estimate.table` (:func:`estimates`, all of them).
"""

from __future__ import annotations

from simfunnel.calibration.estimate.censoring import (
    SAME_EVENT_SHARE,
    as_of,
    ever_reached,
    not_identified,
    observed_rates,
    resolved,
    same_day_stages,
    stage_flags,
    weeks_observed,
)
from simfunnel.calibration.estimate.conversion import conversion_estimates
from simfunnel.calibration.estimate.cure import LEVEL
from simfunnel.calibration.estimate.decay import DecayFit, decay_estimates, fit_decay
from simfunnel.calibration.estimate.intervals import ESTIMATE_COLUMNS, pool_sources, slug, wilson
from simfunnel.calibration.estimate.score import score_estimates
from simfunnel.calibration.estimate.table import estimates
from simfunnel.calibration.estimate.team import team_estimates
from simfunnel.calibration.estimate.timing import (
    MAX_SHAPE_ROWS,
    close_time_estimates,
    response_estimates,
    response_minutes,
)
from simfunnel.calibration.estimate.value import churn_estimates, deal_size_estimates
from simfunnel.calibration.estimate.volume import volume_estimates

__all__ = [
    "ESTIMATE_COLUMNS",
    "LEVEL",
    "MAX_SHAPE_ROWS",
    "SAME_EVENT_SHARE",
    "DecayFit",
    "as_of",
    "churn_estimates",
    "close_time_estimates",
    "conversion_estimates",
    "deal_size_estimates",
    "decay_estimates",
    "estimates",
    "ever_reached",
    "fit_decay",
    "not_identified",
    "observed_rates",
    "pool_sources",
    "resolved",
    "response_estimates",
    "response_minutes",
    "same_day_stages",
    "score_estimates",
    "slug",
    "stage_flags",
    "team_estimates",
    "volume_estimates",
    "weeks_observed",
    "wilson",
]

"""Step 3 of a calibration: what the export does not show, fitted by simulation.

:mod:`~simfunnel.calibration.fit.parameters` (what the fit moves),
:mod:`~simfunnel.calibration.fit.simulator` (simulated moments at common seeds),
:mod:`~simfunnel.calibration.fit.moments` (:func:`fit_by_simulation`),
:mod:`~simfunnel.calibration.fit.scale` (the scaled-down world the fit runs on),
:mod:`~simfunnel.calibration.fit.check` (:func:`fit_check`, observed against simulated)
and :mod:`~simfunnel.calibration.fit.backtest` (:func:`backtest`, calibrate on the first
part of the history, forecast the rest).
"""

from __future__ import annotations

from simfunnel.calibration.fit.backtest import (
    BACKTEST_COUNTS,
    BIAS_THRESHOLD,
    Backtest,
    backtest,
    bias_phrase,
    history_before,
)
from simfunnel.calibration.fit.check import FitCheck, fit_check, verdict
from simfunnel.calibration.fit.moments import fit_by_simulation
from simfunnel.calibration.fit.parameters import (
    DECOMPOSITION,
    FIT_COLUMNS,
    NOT_IDENTIFIED,
    RATE_STAGES,
    FitParameter,
    SimulatedFit,
    chance,
    default_parameters,
    flag_lines,
)

__all__ = [
    "BACKTEST_COUNTS",
    "BIAS_THRESHOLD",
    "DECOMPOSITION",
    "FIT_COLUMNS",
    "NOT_IDENTIFIED",
    "RATE_STAGES",
    "Backtest",
    "FitCheck",
    "FitParameter",
    "SimulatedFit",
    "backtest",
    "bias_phrase",
    "chance",
    "default_parameters",
    "fit_by_simulation",
    "fit_check",
    "flag_lines",
    "history_before",
    "verdict",
]

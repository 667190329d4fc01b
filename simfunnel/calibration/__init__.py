"""Calibration: turn a CRM export into a scenario, check the fit, and export simulated leads.

Modules, one step each: :mod:`~simfunnel.calibration.read.columns` (the canonical names),
:mod:`~simfunnel.calibration.read.mapping` (column mappings and presets),
:mod:`~simfunnel.calibration.read.limits` (size limits checked before a file loads),
:mod:`~simfunnel.calibration.read` (files to a canonical lead frame),
:mod:`~simfunnel.calibration.read.checks` (the mapping against the files, conflicts, sources),
:mod:`~simfunnel.calibration.read.history` (where the history ends, and a short one),
:mod:`~simfunnel.calibration.estimate` (direct estimates), of which volume in
:mod:`~simfunnel.calibration.estimate.volume` (level, trend, campaigns) on
:mod:`~simfunnel.calibration.estimate.weekly` (weekly counts, baselines, campaign weeks),
:mod:`~simfunnel.calibration.scenario` (the scenario YAML),
:mod:`~simfunnel.calibration.pipeline` (:func:`calibrate` joining them),
:mod:`~simfunnel.calibration.fit` (the simulation-based fit, fit check and back-test) and
:mod:`~simfunnel.calibration.export` (simulated leads as a CRM export).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from simfunnel.calibration.read.columns import CRM_COLUMNS, STAGES, STATUSES

if TYPE_CHECKING:
    from simfunnel.calibration.estimate.censoring import observed_rates
    from simfunnel.calibration.pipeline import Calibration, calibrate

_LAZY = {
    "Calibration": "simfunnel.calibration.pipeline",
    "calibrate": "simfunnel.calibration.pipeline",
    "observed_rates": "simfunnel.calibration.estimate.censoring",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simfunnel.calibration' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["CRM_COLUMNS", "STAGES", "STATUSES", "Calibration", "calibrate", "observed_rates"]

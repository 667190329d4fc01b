"""Calibration: turn a CRM export into a scenario, check the fit, and export simulated leads.

Laid out by step, run in order by :mod:`~simfunnel.calibration.pipeline`
(:func:`calibrate` and :class:`Calibration`):

1. :mod:`~simfunnel.calibration.read`: the files to one canonical lead frame (files,
   cells, problems, mapping, columns, checks, limits, leads, deals, history);
2. :mod:`~simfunnel.calibration.estimate`: direct estimates with intervals (intervals,
   censoring and cure, recording, volume and weekly, conversion, timing, value, decay,
   team, score, undated exports, the table of them all);
3. :mod:`~simfunnel.calibration.scenario`: the commented scenario YAML;
4. :mod:`~simfunnel.calibration.fit`: what the export does not show, fitted by simulation
   (parameters, simulator, moments, scale), the fit check and the back-test.

Beside them: :mod:`~simfunnel.calibration.evidence` (the estimates table's defaults and
fitted rows, the provenance), :mod:`~simfunnel.calibration.results` (what a calibration
saves for its report), :mod:`~simfunnel.calibration.export` (simulated leads as a CRM export) and
:mod:`~simfunnel.calibration.samples` (the shipped example). The command line's part is
:mod:`simfunnel.cli_calibrate`. The old module paths (``calibration.writer``, ``crm``,
``mapping``, ``columns``, ``checks``, ``limits``, ``history``, ``cure``, ``volume``,
``weekly``, ``recording``, ``undated``, ``scale``, ``command``) still import, with a
:class:`DeprecationWarning`, for one release.
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

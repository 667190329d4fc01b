"""Step 1 of a calibration: the export's files read into one canonical lead frame.

Modules: :mod:`~simfunnel.calibration.read.columns` (the canonical names),
:mod:`~simfunnel.calibration.read.mapping` (column mappings and presets),
:mod:`~simfunnel.calibration.read.limits` (size limits checked before a file loads),
:mod:`~simfunnel.calibration.read.files` (files to tables),
:mod:`~simfunnel.calibration.read.cells` (cells to dates, numbers and flags),
:mod:`~simfunnel.calibration.read.problems` (bad rows, and what reading did),
:mod:`~simfunnel.calibration.read.checks` (the mapping against the files, conflicts,
sources), :mod:`~simfunnel.calibration.read.leads` (:func:`lead_frame`),
:mod:`~simfunnel.calibration.read.deals` (the deals table joined on) and
:mod:`~simfunnel.calibration.read.history` (where the history ends, and a short one).

The names are loaded on first use, so that ``simfunnel --help`` (which reads the size
limits) does not load pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simfunnel.calibration.read.files import Table, read_table
    from simfunnel.calibration.read.leads import choose_mapping, lead_frame
    from simfunnel.calibration.read.problems import MAX_BAD_SHARE, ReadReport

_LAZY = {
    "MAX_BAD_SHARE": "simfunnel.calibration.read.problems",
    "ReadReport": "simfunnel.calibration.read.problems",
    "Table": "simfunnel.calibration.read.files",
    "read_table": "simfunnel.calibration.read.files",
    "choose_mapping": "simfunnel.calibration.read.leads",
    "lead_frame": "simfunnel.calibration.read.leads",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simfunnel.calibration.read' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["MAX_BAD_SHARE", "ReadReport", "Table", "choose_mapping", "lead_frame", "read_table"]

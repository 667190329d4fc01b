"""Calibration: turn a CRM export into a scenario (reading, estimates, scenario writer)."""

from __future__ import annotations

from simfunnel.calibration.columns import CRM_COLUMNS, STAGES, STATUSES

__all__ = ["CRM_COLUMNS", "STAGES", "STATUSES"]

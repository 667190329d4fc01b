"""Canonical column names of a calibration lead frame and of simfunnel's CRM export.

:data:`CRM_COLUMNS` is the header that :func:`~simfunnel.calibration.export.to_crm`
writes and that ``simfunnel calibrate`` recognises without a mapping. Every reader
(presets, a user's YAML mapping) turns its input into a frame with these names, so the
estimators see one shape whatever the CRM.
"""

from __future__ import annotations

from typing import Final

#: The native simfunnel CRM header, in this order. Datetimes are ISO 8601; ``status`` is
#: one of :data:`STATUSES`; ``amount`` is in USD; ``score`` is in [0, 1].
CRM_COLUMNS: Final[tuple[str, ...]] = (
    "lead_id",
    "source",
    "created_at",
    "first_response_at",
    "attempts",
    "contacted_at",
    "qualified_at",
    "opportunity_at",
    "won_at",
    "lost_at",
    "status",
    "amount",
    "owner",
    "score",
)

#: Values of the ``status`` column of a CRM export.
STATUSES: Final[tuple[str, ...]] = ("won", "lost", "open")

#: Roles a column mapping may name; the first three are required.
REQUIRED_ROLES: Final[tuple[str, ...]] = ("lead_id", "source", "created_at")
OPTIONAL_ROLES: Final[tuple[str, ...]] = (
    "first_response_at",
    "first_response_minutes",
    "attempts",
    "contacted_at",
    "contacted",
    "qualified_at",
    "qualified",
    "opportunity_at",
    "opportunity",
    "won_at",
    "lost_at",
    "status",
    "amount",
    "owner",
    "score",
    "churned_at",
)
ROLES: Final[tuple[str, ...]] = REQUIRED_ROLES + OPTIONAL_ROLES

#: Roles that hold a date and time.
DATE_ROLES: Final[tuple[str, ...]] = (
    "created_at",
    "first_response_at",
    "contacted_at",
    "qualified_at",
    "opportunity_at",
    "won_at",
    "lost_at",
    "churned_at",
)

#: Funnel stages, in order, as counted in the observed-rates table.
STAGES: Final[tuple[str, ...]] = ("contacted", "qualified", "opportunity", "won")

#: Columns of :func:`simfunnel.calibration.estimate.observed_rates`.
OBSERVED_RATE_COLUMNS: Final[tuple[str, ...]] = (
    "source",
    "stage",
    "leads",
    "reached",
    "rate",
    "low",
    "high",
)

"""Checks between the mapping and the data, and on the lead frame once it is read.

:func:`require_columns` holds every column a mapping names against its file: a
misspelled name is refused in one line listing the file's columns (cut short when
there are hundreds) with the nearest one. The others look at the canonical lead frame
that :func:`simfunnel.calibration.read.lead_frame` builds and return one readable line
per thing they changed or found, or refuse in one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from simfunnel.calibration.mapping import Mapping
from simfunnel.errors import CalibrationError

#: Columns listed in full in a message; beyond this, the first ones and a count.
SHOWN_COLUMNS = 30


def columns_text(columns: Sequence[str], limit: int = SHOWN_COLUMNS) -> str:
    """The file's columns for a message: all of them, or the first ``limit`` and a count."""
    names = [repr(str(c)) for c in columns]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names) - limit} more)"


def nearest(name: str, columns: Iterable[str]) -> str | None:
    """The column most like ``name``: the same but for case and spaces, else difflib's closest."""
    have = [str(c) for c in columns]
    folded = {" ".join(c.lower().split()): c for c in have}
    key = " ".join(name.lower().split())
    if key in folded:
        return folded[key]
    lowered = {c.lower(): c for c in have}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def missing_column(
    table: str, rows: int, columns: Sequence[str], wanted: Sequence[str], what: str
) -> CalibrationError:
    """The one-line error for a mapped column ``wanted`` (candidates) not in the file."""
    shown = " or ".join(repr(c) for c in wanted)
    close = nearest(wanted[0], columns)
    hint = f" (did you mean {close!r}?)" if close is not None else ""
    return CalibrationError(
        f"{table}: mapped column {shown} ({what}) is missing{hint}; the file's {rows} rows "
        f"have {len(columns)} columns: {columns_text(columns)}"
    )


def named_entries(mapping: Mapping, section: str) -> list[str]:
    """The roles of ``section`` (``leads`` or ``deals``) the user named in the mapping.

    A mapping built in code without ``named`` (not a preset, not the native header)
    counts as the user's in full.
    """
    roles = mapping.leads if section == "leads" else mapping.deals
    if mapping.named:
        return [r for r in roles if f"{section}.{r}" in mapping.named]
    from simfunnel.calibration.mapping import PRESETS

    if mapping.name == "crm" or mapping is PRESETS.get(mapping.name):
        return []
    return list(roles)


def require_columns(
    table: str, rows: int, columns: Sequence[str], mapping: Mapping, section: str
) -> None:
    """Refuse when a column the mapping names in ``section`` is not in the file.

    Raises
    ------
    CalibrationError
        ``leads x.csv: mapped column 'Creatd' (created_at) is missing (did you mean
        'Created'?); the file's 40 rows have 3 columns: 'Id', 'Source', 'Created'``.
    """
    have = {str(c).strip() for c in columns}
    roles = mapping.leads if section == "leads" else mapping.deals
    prefix = "" if section == "leads" else "deals."
    for role in named_entries(mapping, section):
        wanted = roles[role]
        if not any(name.strip() in have for name in wanted):
            raise missing_column(table, rows, columns, wanted, prefix + role)

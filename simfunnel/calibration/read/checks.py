"""Checks between the mapping and the data, and on the lead frame once it is read.

:func:`require_columns` holds every column a mapping names against its file: a
misspelled name is refused in one line listing the file's columns (cut short when
there are hundreds) with the nearest one. The others look at the canonical lead frame
that :func:`simfunnel.calibration.read.lead_frame` builds and return one readable line
per thing they changed or found, or refuse in one line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

import pandas as pd

from simfunnel.calibration.read.mapping import Mapping
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
    from simfunnel.calibration.read.mapping import PRESETS

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


# ---------------------------------------------------------------- the lead frame

#: A source column with more distinct values than this share of the leads (and more
#: than :data:`MAX_SOURCES_ANYWAY`) is no lead source but an id or a free-text field.
MAX_SOURCE_SHARE = 0.5
MAX_SOURCES_ANYWAY = 50
#: The name of the leads whose source is blank.
UNKNOWN_SOURCE = "unknown"


def _count(mask: pd.Series) -> int:
    return int(mask.fillna(False).astype(bool).sum())


def settle_outcomes(
    where: str,
    unit: str,
    status_column: str | None,
    meaning: pd.Series | None,
    won_by: dict[str, pd.Series],
    lost_by: dict[str, pd.Series],
    won_at: pd.Series | None = None,
    lost_at: pd.Series | None = None,
) -> tuple[pd.Series, pd.Series, list[str]]:
    """Won and lost, one at most per row, and one line per conflict saying what was trusted.

    Parameters
    ----------
    where, unit
        The file and what a row is (``leads``, ``deals``), for the lines.
    status_column, meaning
        The status column and what each row's status means (``won``, ``lost``, ``open``...),
        or None. A status is the CRM's current state: it is trusted over a date or a flag
        that says the opposite (a deal reopened, or a won date left behind).
    won_by, lost_by
        What else says won or lost: a label (``column 'won_at'``) and its rows.
    won_at, lost_at
        The two dates, when both exist: without a status to decide, the later one is
        trusted.

    Returns
    -------
    (won, lost, lines)
    """
    index = next(iter([*won_by.values(), *lost_by.values()]), meaning)
    assert index is not None
    false = pd.Series(False, index=index.index)
    said_won = false.copy()
    for mask in won_by.values():
        said_won |= mask.fillna(False).astype(bool)
    said_lost = false.copy()
    for mask in lost_by.values():
        said_lost |= mask.fillna(False).astype(bool)
    lines: list[str] = []
    won_names = " / ".join(won_by) or "a won date"
    lost_names = " / ".join(lost_by) or "a lost date"
    if meaning is not None and status_column is not None:
        status_won = meaning.eq("won").fillna(False).astype(bool)
        status_lost = meaning.eq("lost").fillna(False).astype(bool)
        against = status_lost & said_won & ~status_won
        if against.any():
            lines.append(
                f"{where}: {_count(against)} {unit} have {won_names} but status lost in column "
                f"{status_column!r}: the status is trusted, read as lost"
            )
        against = status_won & said_lost & ~status_lost
        if against.any():
            lines.append(
                f"{where}: {_count(against)} {unit} have {lost_names} but status won in column "
                f"{status_column!r}: the status is trusted, read as won"
            )
        won = status_won | (said_won & ~status_lost)
        lost = (status_lost | said_lost) & ~status_won
    else:
        won, lost = said_won, said_lost
    both = won & lost
    if both.any():
        if won_at is not None and lost_at is not None:
            later_win = (won_at >= lost_at).fillna(won_at.notna())
            lines.append(
                f"{where}: {_count(both)} {unit} are both won ({won_names}) and lost "
                f"({lost_names}): the later date is trusted ({_count(both & later_win)} won, "
                f"{_count(both & ~later_win)} lost)"
            )
            won = won & ~(both & ~later_win)
        else:
            lines.append(
                f"{where}: {_count(both)} {unit} are both won ({won_names}) and lost "
                f"({lost_names}), with no dates to order them: read as won"
            )
        lost = lost & ~won
    return won.astype(bool), lost.astype(bool), lines


def lead_outcomes(
    out: pd.DataFrame,
    roles: dict[str, str],
    meaning: pd.Series | None,
    where: str,
    strict: bool,
) -> list[str]:
    """Set the leads' ``status`` (won, lost, open) in ``out``; one line per conflict settled.

    A won date (or a won deal from the deals table) and a lost date or status are
    settled by :func:`settle_outcomes`, and a date the status overrules is dropped: it
    is no event. ``out["won"]`` (the deals' verdict) is consumed.

    Raises
    ------
    CalibrationError
        A conflict under ``strict``.
    """
    won_by: dict[str, pd.Series] = {}
    lost_by: dict[str, pd.Series] = {}
    if "won_at" in out:
        won_by[f"a won date ({roles.get('won_at', 'the deals')!r})"] = out["won_at"].notna()
    if "won" in out:
        won_by["a won deal"] = out.pop("won").fillna(False).astype(bool)
    if "lost_at" in out:
        lost_by[f"a lost date ({roles.get('lost_at', 'the deals')!r})"] = out["lost_at"].notna()
    if not won_by and not lost_by:
        won_by["nothing"] = pd.Series(False, index=out.index)
    won, lost, lines = settle_outcomes(
        where,
        "leads",
        roles.get("status"),
        meaning,
        won_by,
        lost_by,
        out.get("won_at"),
        out.get("lost_at"),
    )
    if strict and lines:
        raise CalibrationError(f"{lines[0]} (--strict: no conflict is settled)")
    if "won_at" in out:  # a date the status overrules is no event
        out["won_at"] = out["won_at"].where(won)
    if "lost_at" in out:
        out["lost_at"] = out["lost_at"].where(~won)
    status = pd.Series("open", index=out.index, dtype="string")
    out["status"] = status.mask(lost, "lost").mask(won, "won")
    return lines


def fold(name: str) -> str:
    """A source name compared without case and repeated spaces."""
    return " ".join(str(name).casefold().split())


def clean_sources(source: pd.Series, column: str, table: str) -> tuple[pd.Series, list[str]]:
    """Blank sources as ``unknown``, names differing only by case merged, each with a line.

    Raises
    ------
    CalibrationError
        More distinct sources than half the leads (and more than 50): the column holds
        ids or free text, not where a lead came from.
    """
    lines: list[str] = []
    blank = source.isna()
    if blank.any():
        lines.append(
            f"column {column!r} (source): {_count(blank)} of {len(source)} leads have no "
            f"source, counted as {UNKNOWN_SOURCE!r}"
        )
        source = source.fillna(UNKNOWN_SOURCE)
    counts = source.value_counts()
    keys = pd.Series([fold(s) for s in counts.index], index=counts.index)
    merged: list[str] = []
    rename: dict[str, str] = {}
    for _, names in keys.groupby(keys, sort=False):
        if len(names) < 2:
            continue
        spelled = list(names.index)  # most leads first: value_counts is sorted
        for other in spelled[1:]:
            rename[other] = spelled[0]
        shown = ", ".join(f"{s!r} ({int(counts[s])})" for s in spelled[:4])
        merged.append(f"{shown} as {spelled[0]!r}")
    if rename:
        source = source.replace(rename)
        more = f" and {len(merged) - 3} more groups" if len(merged) > 3 else ""
        lines.append(
            f"column {column!r} (source): names that differ only by case merged: "
            + "; ".join(merged[:3])
            + more
        )
    distinct = int(source.nunique())
    if distinct > MAX_SOURCES_ANYWAY and distinct > MAX_SOURCE_SHARE * len(source):
        examples = ", ".join(repr(str(s)) for s in source.drop_duplicates().head(3))
        raise CalibrationError(
            f"{table}: column {column!r} (source): {distinct} distinct values for "
            f"{len(source)} leads "
            f"(e.g. {examples}), more than half the leads: it holds ids or free text, not "
            "where a lead came from; map the column of lead sources or channels as "
            "leads.source (--mapping)"
        )
    return source, lines


def score_coverage(score: pd.Series, column: str) -> list[str]:
    """One line when the score is missing on part of the leads, with the share."""
    missing = _count(score.isna())
    if missing == 0 or missing == len(score):
        return []
    return [
        f"column {column!r} (score): missing on {missing} of {len(score)} leads "
        f"({missing / len(score):.0%}); the score's AUC uses the {len(score) - missing} "
        "leads that have one"
    ]


# -------------------------------------------------------------------- numbers shown

#: Below this in absolute value a number is shown (and written) as 0.
TINY = 1e-9
#: Estimates that may be negative (a falling trend); every other interval stops at 0.
SIGNED_FIELDS: frozenset[str] = frozenset({"trend_per_year"})


def tidy_estimates(table: pd.DataFrame, field: str = "field") -> pd.DataFrame:
    """Intervals that never go below 0 (but for a trend) and tiny numbers as 0."""
    out = table.copy()
    numbers = [c for c in ("estimate", "low", "high") if c in out.columns]
    for column in numbers:
        values = pd.to_numeric(out[column], errors="coerce").astype(float)
        out[column] = values.mask(values.abs() < TINY, 0.0)
    if "low" in out.columns and field in out.columns:
        signed = out[field].astype(str).isin(SIGNED_FIELDS)
        out["low"] = out["low"].where(signed | ~(out["low"] < 0), 0.0)
    return out


_SCIENTIFIC = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?e-(\d+)\b")


def plain_numbers(line: str) -> str:
    """A printed line with every number below :data:`TINY` (``3.2e-17``) written as 0."""
    return _SCIENTIFIC.sub(lambda m: "0" if int(m.group(1)) >= 9 else m.group(0), line)

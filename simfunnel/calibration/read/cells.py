"""Cells to values: text, dates (day first or month first), numbers, yes/no flags, statuses."""

from __future__ import annotations

import warnings

import pandas as pd

from simfunnel.calibration.read.mapping import (
    DEFAULT_STATUS_VALUES,
    Mapping,
)
from simfunnel.errors import CalibrationError

_TRUE = {"true", "yes", "y", "1", "1.0", "x", "t", "won", "converted"}
_FALSE = {"false", "no", "n", "0", "0.0", "f", ""}


def _text(values: pd.Series) -> pd.Series:
    """Cells as stripped text, with empty cells missing; whole floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(values) and bool(
        (values.dropna() == values.dropna().round()).all()
    ):
        values = values.astype("Int64")
    out = values.astype("string").str.strip()
    return out.mask(out.eq(""))


def _dayfirst_guess(raw: pd.Series) -> bool:
    """True when d/m/y-looking dates have a first part above 12 and no second part above 12."""
    # the date part of each distinct cell: a year of timestamps has a few hundred days
    days = pd.Series(raw.dropna().astype(str).str.strip().str.slice(0, 10).unique())
    parts = days.str.extract(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}")
    parts = parts.dropna()
    if parts.empty:
        return False
    first = parts[0].astype(int)
    second = parts[1].astype(int)
    return bool((first > 12).any() and not (second > 12).any())


def _parse_dates(raw: pd.Series, mapping: Mapping) -> tuple[pd.Series, bool]:
    """Datetimes (naive, UTC for zoned input) and whether day-first was guessed.

    pandas' own warnings (``Could not infer format...``) are silenced: a date that does
    not parse is counted and reported by the caller, in one line.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _parse_dates_quietly(raw, mapping)


def _parse_dates_quietly(raw: pd.Series, mapping: Mapping) -> tuple[pd.Series, bool]:
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
        return parsed.dt.tz_localize(None).astype("datetime64[ns]"), False
    text = _text(raw)
    guessed = False
    dayfirst = mapping.dayfirst
    if mapping.date_format is None and not dayfirst and _dayfirst_guess(text):
        dayfirst = guessed = True
    if mapping.date_format is not None:
        parsed = pd.to_datetime(text, format=mapping.date_format, errors="coerce", utc=True)
    else:
        parsed = pd.to_datetime(text, errors="coerce", dayfirst=dayfirst, utc=True)
        retry = parsed.isna() & text.notna()
        if bool(retry.any()):
            again = pd.to_datetime(
                text[retry], errors="coerce", dayfirst=dayfirst, utc=True, format="mixed"
            )
            parsed = parsed.where(~retry, again)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]"), guessed


#: A number written the continental way: 1.234,56 or 12,5 (a decimal comma).
_DECIMAL_COMMA = r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+,\d{1,2}$"


def _numbers(raw: pd.Series) -> pd.Series:
    """Numbers from cells such as ``12000``, ``$12,000.50``, ``USD 1200`` or ``1.234,56``."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(float)
    text = _text(raw).str.replace(r"^[A-Z]{3}\s+|[\s$€£\u00a0]", "", regex=True)
    comma = text.str.fullmatch(_DECIMAL_COMMA).fillna(False).astype(bool)
    continental = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    text = text.where(~comma, continental).str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce").astype(float)


def _flags(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Truth values and the cells that are not a recognisable yes/no."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.fillna(False).astype(bool), pd.Series(False, index=raw.index)
    text = _text(raw).str.lower().fillna("")
    yes = text.isin(_TRUE)
    bad = ~(yes | text.isin(_FALSE))
    return yes.astype(bool), bad.astype(bool)


def _example(raw: pd.Series, mask: pd.Series, ids: pd.Series | None = None) -> str:
    first = mask[mask].index[0]
    value = repr(str(raw.loc[first]))
    if ids is not None:
        return f"lead {str(ids.loc[first])!r}: {value}"
    return value


def _status_meanings(raw: pd.Series, values: dict[str, str]) -> tuple[pd.Series, list[str]]:
    table = {**DEFAULT_STATUS_VALUES, **values}
    text = _text(raw).str.lower()
    meaning = text.map(lambda v: table.get(v, "open") if isinstance(v, str) else "open")
    unknown = text[text.notna() & ~text.isin(list(table))]
    notes = []
    if len(unknown):
        counts = unknown.value_counts()
        shown = ", ".join(f"{v!r} ({n})" for v, n in counts.head(5).items())
        given = int(text.notna().sum())
        if len(unknown) == given and given > 0:  # not one status means anything: refuse
            known = ", ".join(sorted(values)) or "none given"
            raise CalibrationError(
                f"status: none of the column's values is in the value map, so every lead "
                f"would read as open ({shown}); map them under status_values (known: {known})"
            )
        notes.append(f"statuses not in the value map, read as open: {shown}")
    return meaning.astype("string"), notes

"""Reading a CRM export into one canonical lead frame.

:func:`read_table` loads a CSV, Parquet or ``.xlsx`` file (CSV text is tried as UTF-8,
UTF-8 with a BOM, then Latin-1, and the report says which was used). :func:`lead_frame`
applies a column mapping (a preset, the native CRM header, or the user's YAML), parses
dates and numbers, joins an optional deals table, checks the rows, and returns a frame
with the names of :mod:`simfunnel.calibration.columns` and a :class:`ReadReport`.

Bad rows: each check (an unparseable date, a stage before creation, a negative amount, a
duplicate lead id, an empty required value...) names the column, how many rows fail and
an example. When only a few rows fail (at most ``max_bad_share`` of them) they are
skipped, counted and reported; ``strict`` makes any bad row an error; more than that is
always an error (:class:`~simfunnel.errors.CalibrationError`).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simfunnel.calibration.checks import (
    clean_sources,
    columns_text,
    lead_outcomes,
    missing_column,
    require_columns,
    score_coverage,
    settle_outcomes,
)
from simfunnel.calibration.columns import CRM_COLUMNS, DATE_ROLES, REQUIRED_ROLES
from simfunnel.calibration.limits import (
    ReadLimits,
    check_csv,
    check_frame,
    check_parquet,
    check_xlsx,
    long_cells,
)
from simfunnel.calibration.mapping import (
    DEFAULT_STATUS_VALUES,
    PRESETS,
    Mapping,
    check_date_format,
    detect,
    resolve,
)
from simfunnel.errors import CalibrationError

#: Share of rows that may be skipped as bad before the data is refused.
MAX_BAD_SHARE = 0.02

_TRUE = {"true", "yes", "y", "1", "1.0", "x", "t", "won", "converted"}
_FALSE = {"false", "no", "n", "0", "0.0", "f", ""}


@dataclass
class Table:
    """A table as read from a file (or given as a DataFrame), before any mapping."""

    frame: pd.DataFrame
    name: str
    how: str = "a DataFrame"
    long_cells: dict[str, str] = field(default_factory=dict)

    def check_cells(self, columns: Iterable[str]) -> None:
        """Refuse a cell over the size limit in one of ``columns`` (those the mapping reads)."""
        for column in columns:
            if column in self.long_cells:
                raise CalibrationError(self.long_cells[column])


@dataclass
class ReadReport:
    """What reading did: files, mapping, roles found and missing, rows skipped."""

    files: list[str] = field(default_factory=list)
    mapping: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    missing_roles: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_kept: int = 0
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    date_only: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as readable lines."""
        out = [*self.files, f"mapping: {self.mapping}"]
        out.append("roles: " + ", ".join(f"{r} <- {c!r}" for r, c in self.roles.items()))
        if self.missing_roles:
            out.append("not in the data (domain defaults): " + ", ".join(self.missing_roles))
        out += [f"skipped {line}" for line in self.skipped]
        out += self.notes
        out.append(f"{self.rows_kept} of {self.rows_read} leads kept")
        return out


# ------------------------------------------------------------------------ files


#: What a file's extension promises, for the message when its content is something else.
_KIND_BY_SUFFIX: dict[str, str] = {
    ".xlsx": "an Excel workbook",
    ".xlsm": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".parquet": "a Parquet file",
    ".pq": "a Parquet file",
}


def _kind(name: str) -> str:
    """What the file named ``name`` claims to be: a CSV file unless its extension says else."""
    return _KIND_BY_SUFFIX.get(Path(name).suffix.lower(), "a CSV file")


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """Text and the encoding used: UTF-8, UTF-8 with BOM, then Latin-1."""
    for bom, label in ((codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise CalibrationError(
                f"{name}: wrong encoding: {label} text; save it as UTF-8 "
                "(tried UTF-8, UTF-8 with BOM, Latin-1)"
            )
    nul = data.find(b"\x00", 0, 65536)
    if nul >= 0:
        raise CalibrationError(
            f"{name}: not {_kind(name)} (binary content, a NUL byte at offset {nul}); "
            "give CSV, Parquet or .xlsx"
        )
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "UTF-8 with BOM"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    text = data.decode("latin-1")
    control = re.search(r"[\x80-\x9f]", text)
    if control is not None:
        offset = control.start()
        raise CalibrationError(
            f"{name}: wrong encoding: byte 0x{data[offset]:02x} at offset {offset} is "
            "neither UTF-8 nor Latin-1 text (Windows-1252?); save it as UTF-8 "
            "(tried UTF-8, UTF-8 with BOM, Latin-1)"
        )
    return text, f"Latin-1 (not UTF-8: byte 0x{data[first_bad]:02x} at offset {first_bad})"


def _csv(text: str, name: str) -> pd.DataFrame:
    if not text.strip():
        raise CalibrationError(f"{name}: empty file (no header, no rows)")
    sample = text[:20000]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, skipinitialspace=True, na_values=[""]
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CalibrationError(f"{name}: not {_kind(name)} ({first})") from None
    return frame


def read_table(
    path: str | Path,
    what: str = "leads",
    *,
    limits: ReadLimits | None = None,
) -> Table:
    """Load a CSV, Parquet or .xlsx file as a raw table (all CSV cells as text).

    Parameters
    ----------
    path
        The file. Its first bytes decide the format (a ZIP is read as .xlsx, ``PAR1``
        as Parquet), so a misnamed file is read as what it is. A bare name that is no
        file but a shipped sample (``example_crm``, ``hubspot_contacts``,
        ``salesforce_leads``, ``salesforce_opportunities``) reads that sample.
    what
        ``leads`` or ``deals``, for the messages.
    limits
        Most rows, columns, characters in a cell and megabytes a workbook unzips to
        (:class:`~simfunnel.calibration.limits.ReadLimits`), checked before the file is
        loaded. Default: the documented defaults.

    Raises
    ------
    CalibrationError
        Missing or empty file, a binary file that is not Parquet or .xlsx, a wrong
        encoding, a file with a header and no rows, a file over a size limit, a Parquet
        column of binary data.
    """
    limits = limits or ReadLimits()
    target = Path(path)
    if not target.exists() and not target.suffix and target.name == str(path):
        from simfunnel.calibration.samples import sample_path

        bundled = sample_path(f"{target.name}.csv")
        if bundled.is_file():  # a shipped sample by name: example_crm, hubspot_contacts...
            target = bundled
    name = f"{what} {target.name}"
    if not target.is_file():
        reason = "is a folder, not a file" if target.is_dir() else "no such file"
        raise CalibrationError(f"{name}: {reason}")
    with target.open("rb") as handle:
        magic = handle.read(4)
    long_lines = True  # a CSV file says whether a line is long enough to hold a long cell
    if magic == b"PAR1":
        check_parquet(target, name, limits)
        try:
            frame = pd.read_parquet(target)
        except Exception as exc:
            raise CalibrationError(f"{name}: not a readable Parquet file ({exc})") from None
        how = "Parquet"
    elif magic == b"PK\x03\x04":
        check_xlsx(target, name, limits)
        try:
            frame = pd.read_excel(target, engine="openpyxl", sheet_name=0)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CalibrationError(f"{name}: not a readable .xlsx workbook ({first})") from None
        check_frame(frame, name, limits)
        how = "Excel .xlsx (first sheet)"
    else:
        long_lines = check_csv(target, name, limits)
        data = target.read_bytes()
        if not data.strip():
            raise CalibrationError(f"{name}: empty file (no header, no rows)")
        text, encoding = _decode(data, name)
        frame = _csv(text, name)
        how = f"CSV in {encoding}"
    long = long_cells(frame, name, limits) if long_lines else {}
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise CalibrationError(
            f"{name}: no rows (only a header: {columns_text(list(frame.columns))})"
        )
    return Table(frame, name, how, long)


# ---------------------------------------------------------------------- parsing


@dataclass
class _Problems:
    """Bad rows found so far, each check with the column, a count and an example."""

    table: str
    rows: int
    found: list[tuple[str, pd.Series, str, str]] = field(default_factory=list)

    def add(self, what: str, mask: pd.Series, example: str, table: str | None = None) -> None:
        """A check that failed on the rows of ``mask``; ``table`` names the file to blame."""
        if bool(mask.any()):
            self.found.append((what, mask, example, table or self.table))

    def apply(self, strict: bool, max_share: float) -> tuple[pd.Series | None, list[str]]:
        """Rows to drop and one line per check; raise when too many (or any, strict)."""
        if not self.found:
            return None, []
        lines: list[str] = []
        drop = pd.Series(False, index=self.found[0][1].index)
        for what, mask, example, table in self.found:
            n = int(mask.sum())
            unit = "rows" if table == self.table else "leads"  # another file's, per lead
            line = f"{table}: {what}: {n} of {self.rows} {unit}, e.g. {example}"
            if strict or n > max_share * self.rows:
                hint = " (--strict: no bad row is skipped)" if strict else ""
                raise CalibrationError(line + hint)
            lines.append(line)
            drop |= mask
        return drop, lines


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
    parts = raw.dropna().astype(str).str.extract(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}")
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
        notes.append(f"statuses not in the value map, read as open: {shown}")
    return meaning.astype("string"), notes


# ------------------------------------------------------------------- the frame


def choose_mapping(
    columns: list[str], mapping: Mapping | None, preset: str | None = None, where: str = "leads"
) -> Mapping:
    """The mapping to use: the one given, a named preset, or one detected from the header.

    Raises
    ------
    CalibrationError
        No mapping given and the header is neither simfunnel's CRM export nor a preset's.
    """
    if mapping is not None:
        return mapping
    if preset is not None:
        if preset not in PRESETS:
            raise CalibrationError(f"--preset: must be one of {', '.join(PRESETS)}, got {preset!r}")
        return PRESETS[preset]
    found = detect(columns)
    if found is None:
        shown = ", ".join(repr(c) for c in columns[:8])
        raise CalibrationError(
            f"{where}: the header ({shown}{', ...' if len(columns) > 8 else ''}) is not "
            "simfunnel's CRM export nor a HubSpot or Salesforce export; give --mapping or --preset"
        )
    return found


def _as_table(value: pd.DataFrame | Table, what: str) -> Table:
    if isinstance(value, Table):
        return value
    if not isinstance(value, pd.DataFrame):
        raise CalibrationError(f"{what}: expected a pandas DataFrame, got {type(value).__name__}")
    frame = value.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise CalibrationError(f"{what}: no rows")
    return Table(frame, what)


def lead_frame(
    leads: pd.DataFrame | Table,
    deals: pd.DataFrame | Table | None = None,
    mapping: Mapping | None = None,
    *,
    preset: str | None = None,
    strict: bool = False,
    max_bad_share: float = MAX_BAD_SHARE,
) -> tuple[pd.DataFrame, ReadReport]:
    """The canonical lead frame of a leads table (and deals table) under a mapping.

    Parameters
    ----------
    leads, deals
        Raw tables (from :func:`read_table`, or DataFrames).
    mapping
        Which column holds which role; None: ``preset``, else detected from the header.
    strict
        Refuse any bad row instead of skipping a few.
    max_bad_share
        The share of rows a check may skip before the data is refused.

    Returns
    -------
    (frame, report)
        ``frame`` has the columns of :data:`~simfunnel.calibration.columns.CRM_COLUMNS`
        that the data holds, plus ``first_response_minutes``, the stage flags
        ``contacted``/``qualified``/``opportunity`` and ``churned_at`` when present;
        ``frame.attrs["date_only"]`` lists the date columns with no time of day.

    Raises
    ------
    CalibrationError
        One line naming the table, the column, the number of rows and an example.
    """
    lt = _as_table(leads, "leads")
    report = ReadReport()
    report.files.append(f"{lt.name}: {len(lt.frame)} rows, {lt.how}")
    chosen = choose_mapping(list(lt.frame.columns), mapping, preset, lt.name)
    report.mapping = chosen.name
    if chosen.date_format is not None:
        check_date_format(chosen.date_format)
    if deals is None and chosen.deals and chosen.named & {f"deals.{r}" for r in chosen.deals}:
        report.notes.append(
            f"mapping {chosen.name}: it has a deals section but no deals table was given "
            "(--deals): the deals' columns are not read"
        )
    raw = lt.frame.reset_index(drop=True)
    roles = resolve(chosen.leads, raw.columns)
    require_columns(lt.name, len(raw), list(raw.columns), chosen, "leads")
    lt.check_cells(roles.values())
    for role in REQUIRED_ROLES:
        if role not in roles:
            wanted = chosen.leads.get(role, ())
            if not wanted and role == "created_at":
                continue  # an export without dates: conversion only (see calibration.undated)
            if not wanted:
                raise CalibrationError(
                    f"mapping {chosen.name}: the required role {role} is not mapped"
                )
            raise missing_column(lt.name, len(raw), list(raw.columns), wanted, role)
    report.roles = dict(roles)
    report.rows_read = len(raw)
    problems = _Problems(lt.name, len(raw))
    out = pd.DataFrame(index=raw.index)
    ids = _text(raw[roles["lead_id"]])
    out["lead_id"] = ids
    out["source"], notes = clean_sources(_text(raw[roles["source"]]), roles["source"], lt.name)
    report.notes += notes
    problems.add(f"column {roles['lead_id']!r} (lead_id) is empty", ids.isna(), "''")

    def column(role: str) -> str:
        return f"column {roles[role]!r} ({role})"

    date_only: list[str] = []
    for role in DATE_ROLES:
        if role not in roles:
            continue
        cells = raw[roles[role]]
        parsed, guessed = _parse_dates(cells, chosen)
        given = (
            _text(cells).notna()
            if not pd.api.types.is_datetime64_any_dtype(cells)
            else (cells.notna())
        )
        bad = given & parsed.isna()
        problems.add(
            f"{column(role)}: unparseable date", bad, _example(cells, bad, ids) if bad.any() else ""
        )
        if guessed:
            report.notes.append(
                f"{column(role)}: dates read day first (e.g. {_text(cells).dropna().iloc[0]!r})"
            )
        if role == "created_at":
            problems.add(f"{column(role)} is empty", ~given, "''")
        out[role] = parsed
        valid = parsed.dropna()
        if len(valid) and bool((valid == valid.dt.normalize()).all()):
            date_only.append(role)
    if "created_at" not in out:
        out["created_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
        report.notes.append(
            "no creation dates (created_at is not mapped): only conversion and the "
            "score can be estimated from the rows themselves"
        )
    if "first_response_minutes" in roles and "first_response_at" not in roles:
        cells = raw[roles["first_response_minutes"]]
        minutes = _numbers(cells)
        bad = _text(cells).notna() & minutes.isna()
        problems.add(
            f"{column('first_response_minutes')}: not a number",
            bad,
            _example(cells, bad, ids) if bad.any() else "",
        )
        neg = minutes < 0
        problems.add(
            f"{column('first_response_minutes')}: negative",
            neg,
            _example(cells, neg, ids) if neg.any() else "",
        )
        out["first_response_minutes"] = minutes
    for role in ("attempts", "amount", "score"):
        if role not in roles:
            continue
        cells = raw[roles[role]]
        values = _numbers(cells)
        bad = _text(cells).notna() & values.isna()
        if bad.any():
            problems.add(f"{column(role)}: not a number", bad, _example(cells, bad, ids))
        neg = values < 0
        if neg.any():
            problems.add(f"{column(role)}: negative {role}", neg, _example(cells, neg, ids))
        out[role] = values
        if role == "score":
            report.notes += score_coverage(values, roles[role])
    if "owner" in roles:
        out["owner"] = _text(raw[roles["owner"]])
    for role in ("contacted", "qualified", "opportunity"):
        if role in roles:
            cells = raw[roles[role]]
            yes, bad = _flags(cells)
            if bad.any():
                problems.add(f"{column(role)}: not yes/no", bad, _example(cells, bad, ids))
            out[role] = yes
    meaning: pd.Series | None = None
    if "status" in roles:
        meaning, notes = _status_meanings(raw[roles["status"]], chosen.status_values)
        report.notes += [f"{column('status')}: {n}" for n in notes]

    # deals: joined on the lead id (or the leads' match column)
    if deals is not None:
        if not chosen.deals:
            raise CalibrationError(
                f"mapping {chosen.name}: a deals table was given but the mapping has no "
                "deals section"
            )
        deals_table = _as_table(deals, "deals")
        _join_deals(out, raw, deals_table, chosen, roles, report, strict, max_bad_share)
        date_only = [r for r in date_only if r in out] + [
            r for r in report.date_only if r not in date_only
        ]

    # a stage before the lead was created
    for role in DATE_ROLES[1:]:
        if role not in out:
            continue
        slack = (
            pd.Timedelta(days=1)
            if role in date_only or "created_at" in date_only
            else pd.Timedelta(0)
        )
        before = (out[role] + slack) < out["created_at"]
        if before.any():
            first = before[before].index[0]
            table, where = lt.name, roles.get(role, role)
            if role not in roles and deals is not None:  # the date came from the deals
                dated = [f"deals.{role}"] + (
                    ["deals.closed_at"] if role in ("won_at", "lost_at") else []
                )
                where = next((roles[k] for k in dated if k in roles), where)
                table = deals_table.name
            created = f" (column {roles['created_at']!r} of {lt.name})" if table != lt.name else ""
            problems.add(
                f"column {where!r} ({role}) is before created_at{created}",
                before.fillna(False),
                f"lead {str(ids.loc[first])!r}: {out[role].loc[first]} < created "
                f"{out['created_at'].loc[first]}",
                table,
            )

    # duplicate lead ids (exact copies of a row are dropped without complaint)
    exact = raw.duplicated(keep="first")
    if exact.any():
        report.notes.append(f"{int(exact.sum())} rows that repeat an earlier row exactly dropped")
    dupes = ids.duplicated(keep=False) & ids.notna() & ~exact
    dupes &= ids.isin(ids[~exact][ids[~exact].duplicated()])
    if dupes.any():
        problems.add(
            f"column {roles['lead_id']!r} (lead_id) has duplicate ids",
            dupes,
            repr(str(ids[dupes].iloc[0])),
        )
    drop, lines = problems.apply(strict, max_bad_share)
    report.skipped += lines
    keep = ~exact
    if drop is not None:
        keep &= ~drop
    if "first_response_at" in out:
        out["first_response_minutes"] = (
            out["first_response_at"] - out["created_at"]
        ) / pd.Timedelta(minutes=1)

    # status: won / lost / open, and stage flags from what a status means
    if meaning is not None or "won_at" in out or "lost_at" in out or "won" in out:
        if meaning is not None:
            for stage in ("contacted", "qualified", "opportunity"):
                hit = meaning.eq(stage).fillna(False)
                if hit.any():
                    out[stage] = (out[stage] if stage in out else False) | hit
        report.notes += lead_outcomes(out, roles, meaning, lt.name, strict)
    for stage in ("contacted", "qualified", "opportunity"):
        if stage in out:
            out[stage] = out[stage].fillna(False).astype(bool)
    frame = out.loc[keep].reset_index(drop=True)
    order = [c for c in CRM_COLUMNS if c in frame.columns]
    extra = [
        c
        for c in ("first_response_minutes", "contacted", "qualified", "opportunity", "churned_at")
        if c in frame.columns and c not in order
    ]
    frame = frame[order + extra]
    frame.attrs["date_only"] = sorted(set(date_only))
    frame.attrs["mapping"] = chosen.name
    report.rows_kept = len(frame)
    report.date_only = sorted(set(date_only))
    report.missing_roles = [
        r
        for r in (
            "first_response_at",
            "attempts",
            "contacted_at",
            "qualified_at",
            "opportunity_at",
            "won_at",
            "amount",
            "owner",
            "score",
            "churned_at",
        )
        if r not in frame.columns
        and not (r == "first_response_at" and "first_response_minutes" in frame.columns)
        and r.removesuffix("_at") not in frame.columns
    ]
    if len(frame) == 0:
        raise CalibrationError(f"{lt.name}: no lead is left after the checks")
    return frame, report


def _join_deals(
    out: pd.DataFrame,
    raw: pd.DataFrame,
    table: Table,
    mapping: Mapping,
    roles: dict[str, str],
    report: ReadReport,
    strict: bool,
    max_bad_share: float,
) -> None:
    """Fill the leads' opportunity/won/lost dates, amount and owner from a deals table."""
    deals = table.frame.reset_index(drop=True)
    report.files.append(f"{table.name}: {len(deals)} rows, {table.how}")
    require_columns(table.name, len(deals), list(deals.columns), mapping, "deals")
    droles = resolve(mapping.deals, deals.columns)
    table.check_cells(droles.values())
    if "lead_id" not in droles:
        raise missing_column(
            table.name,
            len(deals),
            list(deals.columns),
            mapping.deals.get("lead_id", ("lead_id",)),
            "deals.lead_id",
        )
    if mapping.match is not None:
        found = resolve({"match": mapping.match}, raw.columns)
        if "match" not in found:
            raise missing_column(
                "leads", len(raw), list(raw.columns), mapping.match, "deals.match, the deals' key"
            )
        lead_key = _text(raw[found["match"]])
    else:
        lead_key = out["lead_id"]
    key = _text(deals[droles["lead_id"]])
    problems = _Problems(table.name, len(deals))
    known = set(lead_key.dropna())
    unmatched = key.notna() & ~key.isin(known)
    if bool(unmatched.all()):
        example = str(key.dropna().iloc[0]) if key.notna().any() else ""
        raise CalibrationError(
            f"{table.name}: column {droles['lead_id']!r} (lead_id): none of the {len(deals)} "
            f"rows matches a lead id, e.g. {example!r}"
        )
    problems.add(
        f"column {droles['lead_id']!r} (lead_id) matches no lead",
        unmatched,
        repr(str(key[unmatched].iloc[0])) if unmatched.any() else "",
    )
    # a deal listed twice would count twice (its amount summed): repeated rows and, where
    # the key is the deal's own id, two different rows for one deal are bad rows
    repeated = deals.duplicated(keep="first")
    problems.add(
        "rows that repeat an earlier row",
        repeated,
        repr(str(key[repeated].iloc[0])) if repeated.any() else "",
    )
    if mapping.match is not None:
        rest = key.notna() & ~repeated
        twice = rest & key.isin(key[rest][key[rest].duplicated()])
        problems.add(
            f"column {droles['lead_id']!r} (the deal id) has duplicate ids",
            twice,
            repr(str(key[twice].iloc[0])) if twice.any() else "",
        )
    d = pd.DataFrame({"key": key})
    for role in ("opportunity_at", "closed_at", "won_at", "lost_at", "churned_at"):
        if role in droles:
            cells = deals[droles[role]]
            parsed, _ = _parse_dates(cells, mapping)
            bad = (
                _text(cells).notna() & parsed.isna()
                if not pd.api.types.is_datetime64_any_dtype(cells)
                else cells.isna() & False
            )
            if bad.any():
                problems.add(
                    f"column {droles[role]!r} ({role}): unparseable date",
                    bad,
                    repr(str(cells[bad].iloc[0])),
                )
            d[role] = parsed
            valid = parsed.dropna()
            if len(valid) and bool((valid == valid.dt.normalize()).all()):
                report.date_only.append("won_at" if role == "closed_at" else role)
    won_by: dict[str, pd.Series] = {}
    lost_by: dict[str, pd.Series] = {}
    deal_meaning: pd.Series | None = None
    if "won" in droles:
        yes, bad = _flags(deals[droles["won"]])
        if bad.any():
            problems.add(
                f"column {droles['won']!r} (won): not yes/no",
                bad,
                repr(str(deals[droles["won"]][bad].iloc[0])),
            )
        won_by[f"won in column {droles['won']!r}"] = yes
    if "status" in droles:
        table_values = {
            "won": "won",
            "closed won": "won",
            "lost": "lost",
            "closed lost": "lost",
            **mapping.deal_status_values,
        }
        text = _text(deals[droles["status"]]).str.lower()
        deal_meaning = text.map(
            lambda v: table_values.get(v, "open") if isinstance(v, str) else "open"
        ).astype("string")
    if "won_at" in d:
        won_by[f"a won date ({droles['won_at']!r})"] = d["won_at"].notna()
    if "lost_at" in d:
        lost_by[f"a lost date ({droles['lost_at']!r})"] = d["lost_at"].notna()
    if not won_by and not lost_by:
        won_by["nothing"] = pd.Series(False, index=deals.index)
    won, lost, lines = settle_outcomes(
        table.name,
        "deals",
        droles.get("status"),
        deal_meaning,
        won_by,
        lost_by,
        d.get("won_at"),
        d.get("lost_at"),
    )
    if strict and lines:
        raise CalibrationError(f"{lines[0]} (--strict: no conflict is settled)")
    report.notes += lines
    for role, keep in (("won_at", won), ("lost_at", ~won)):
        if role in d:
            d[role] = d[role].where(keep)
    if "closed_at" in d:
        d["won_at"] = (
            d["won_at"].fillna(d["closed_at"].where(won))
            if "won_at" in d
            else d["closed_at"].where(won)
        )
        d["lost_at"] = (
            d["lost_at"].fillna(d["closed_at"].where(lost))
            if "lost_at" in d
            else d["closed_at"].where(lost)
        )
    d["won"] = won
    d["lost"] = lost
    if "amount" in droles:
        cells = deals[droles["amount"]]
        amount = _numbers(cells)
        bad = _text(cells).notna() & amount.isna()
        if bad.any():
            problems.add(
                f"column {droles['amount']!r} (amount): not a number",
                bad,
                repr(str(cells[bad].iloc[0])),
            )
        neg = amount < 0
        if neg.any():
            problems.add(
                f"column {droles['amount']!r} (amount): negative amount",
                neg,
                repr(str(cells[neg].iloc[0])),
            )
        d["amount"] = amount.where(won)
    if "owner" in droles:
        d["owner"] = _text(deals[droles["owner"]])
    drop, lines = problems.apply(strict, max_bad_share)
    report.skipped += lines
    if drop is not None:
        d = d[~drop]
    d = d[d["key"].isin(known)]
    agg: dict[str, Any] = {"won": "any", "lost": "all"}
    for role in ("opportunity_at", "won_at", "churned_at"):
        if role in d:
            agg[role] = "min"
    if "lost_at" in d:
        agg["lost_at"] = "max"
    if "amount" in d:
        agg["amount"] = lambda s: s.sum(min_count=1)
    if "owner" in d:
        agg["owner"] = "first"
    per_key = d.groupby("key").agg(agg)
    per_lead = per_key.reindex(lead_key.to_numpy())
    per_lead.index = out.index
    # A deals table lists opportunities when it dates them or holds deals not won (open or
    # lost): then a lead with a deal reached the opportunity stage, even without its date.
    # A table of won deals alone says nothing about which other leads reached it.
    if "opportunity_at" in d or not bool(d["won"].all()):
        has_deal = lead_key.isin(set(d["key"]))
        out["opportunity"] = (out["opportunity"] if "opportunity" in out else False) | has_deal
    elif "opportunity" not in out and "opportunity_at" not in out:
        report.notes.append(
            f"{table.name}: every deal is won and no opportunity date is mapped, so the "
            "opportunity stage is not in the data (win and opportunity chances stay defaults)"
        )
    for role in ("opportunity_at", "won_at", "lost_at", "churned_at"):
        if role in per_lead:
            values = pd.to_datetime(per_lead[role]).astype("datetime64[ns]")
            if role == "lost_at":
                values = values.where(~per_lead["won"].fillna(False).astype(bool))
            out[role] = out[role].fillna(values) if role in out else values
    if "amount" in per_lead:
        out["amount"] = (
            out["amount"].fillna(per_lead["amount"]) if "amount" in out else per_lead["amount"]
        )
    if "owner" in per_lead and "owner" not in out:
        out["owner"] = per_lead["owner"].astype("string")
    out["won"] = per_lead["won"].fillna(False).astype(bool)
    roles.update({f"deals.{r}": c for r, c in droles.items()})
    report.roles.update({f"deals.{r}": c for r, c in droles.items()})

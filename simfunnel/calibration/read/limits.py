"""Size limits of an export, checked before it is loaded.

A CRM export is read whole into memory, and some inputs would take minutes or
gigabytes before anything could be said about them: thirty million rows, a header of a
hundred thousand columns, a megabyte in one cell, or an ``.xlsx`` that unzips to
gigabytes (a zip bomb). So :func:`check_file` looks first at what is cheap to learn —
a Parquet file's footer, a CSV file's header and a streamed count of its lines, the
uncompressed sizes a workbook's zip directory declares — and refuses above a limit, in
one line that names the limit and the option that raises it (``--max-rows`` on the
command line is ``max_rows`` in :func:`simfunnel.calibrate`, and so on).
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from simfunnel.errors import CalibrationError

#: Most rows a leads or deals file may have, by default (about a million leads a year
#: for two years; the reading and the estimates take about a minute at this size).
DEFAULT_MAX_ROWS = 2_000_000
#: Most columns, by default (a CRM export with every property has a few hundred).
DEFAULT_MAX_COLUMNS = 2_000
#: Longest cell, in characters, by default (a long note fits; a pasted document does not).
DEFAULT_MAX_CELL_CHARS = 10_000
#: Most megabytes a workbook may unzip to, by default (a workbook of some hundred
#: thousand rows; a zip bomb unzips to gigabytes).
DEFAULT_MAX_XLSX_MB = 250.0

#: The workbook's first sheet, whose declared extent is read before it is opened.
FIRST_SHEET = "xl/worksheets/sheet1.xml"
_CHUNK = 1 << 24  # bytes read at a time when counting lines
_HEADER_BYTES = 1 << 22  # a header longer than this is refused without parsing it


@dataclass(frozen=True)
class ReadLimits:
    """The limits of one read; each is a keyword of :func:`simfunnel.calibrate`."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_cell_chars: int = DEFAULT_MAX_CELL_CHARS
    max_xlsx_mb: float = DEFAULT_MAX_XLSX_MB

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_columns", "max_cell_chars", "max_xlsx_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                flag = "--" + name.replace("_", "-")
                raise CalibrationError(f"{name} ({flag}): must be a number > 0, got {value!r}")


def _raise(name: str, what: str, limit: str, option: str) -> CalibrationError:
    flag = "--" + option.replace("_", "-")
    return CalibrationError(
        f"{name}: {what}; the limit is {limit} ({flag}, or {option}= in simfunnel.calibrate, "
        "raises it)"
    )


def too_many_rows(name: str, rows: int | str, limits: ReadLimits) -> CalibrationError:
    """The error for a file with more rows than ``limits.max_rows``."""
    return _raise(name, f"{rows} rows", f"{limits.max_rows:,} rows", "max_rows")


def too_many_columns(name: str, columns: int, limits: ReadLimits) -> CalibrationError:
    """The error for a file with more columns than ``limits.max_columns``."""
    return _raise(name, f"{columns:,} columns", f"{limits.max_columns:,} columns", "max_columns")


def check_parquet(path: Path, name: str, limits: ReadLimits) -> None:
    """Rows, columns and binary columns from a Parquet file's footer, without its data."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
        rows, schema = meta.metadata.num_rows, meta.schema_arrow
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CalibrationError(f"{name}: not a readable Parquet file ({first})") from None
    if len(schema) > limits.max_columns:
        raise too_many_columns(name, len(schema), limits)
    if rows > limits.max_rows:
        raise too_many_rows(name, f"{rows:,}", limits)
    for item in schema:
        kind = item.type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise CalibrationError(
                f"{name}: column {item.name!r} holds binary data ({kind}), not text, dates "
                "or numbers; write it as a string column (or leave it out of the file)"
            )
        if pa.types.is_fixed_size_binary(kind) or pa.types.is_nested(kind):
            raise CalibrationError(
                f"{name}: column {item.name!r} is of type {kind}, not text, dates or numbers; "
                "write it as a string column (or leave it out of the file)"
            )


def check_xlsx(path: Path, name: str, limits: ReadLimits) -> None:
    """The uncompressed size a workbook's zip directory declares, before openpyxl opens it."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > limits.max_xlsx_mb * 1e6:
                raise _raise(
                    name,
                    f"unzips to {total / 1e6:,.0f} MB",
                    f"{limits.max_xlsx_mb:,g} MB",
                    "max_xlsx_mb",
                )
            head = b""
            if FIRST_SHEET in archive.namelist():
                with archive.open(FIRST_SHEET) as sheet:
                    head = sheet.read(4096)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CalibrationError(f"{name}: not a readable .xlsx workbook ({exc})") from None
    # the sheet's declared extent (``<dimension ref="A1:N2000001"/>``), when it says one
    found = re.search(rb'<dimension ref="[A-Z]+\d+:([A-Z]+)(\d+)"', head)
    if found is not None:
        columns = 0
        for letter in found.group(1).decode():
            columns = columns * 26 + ord(letter) - ord("A") + 1
        if columns > limits.max_columns:
            raise too_many_columns(name, columns, limits)
        rows = int(found.group(2)) - 1  # the header is row 1
        if rows > limits.max_rows:
            raise too_many_rows(name, f"{rows:,}", limits)


def _header_fields(line: bytes) -> int:
    """Fields of a CSV header line under the delimiter that splits it most."""
    text = line.decode("latin-1")
    best = 1
    for delimiter in ",;\t|":
        if delimiter in text:
            try:
                fields = len(next(csv.reader([text], delimiter=delimiter)))
            except csv.Error:  # a field beyond the csv module's size limit
                fields = text.count(delimiter) + 1
            best = max(best, fields)
    return best


def _csv_records(path: Path, stop: int) -> int:
    """Records in a CSV file (a quoted line break in a cell starts none), up to ``stop``."""
    count = 0
    try:
        with path.open(encoding="latin-1", newline="") as handle:
            for _ in csv.reader(handle):
                count += 1
                if count >= stop:
                    break
    except csv.Error:  # a cell beyond the csv module's size limit: count its lines
        return stop
    return count


def check_csv(path: Path, name: str, limits: ReadLimits) -> bool:
    """Columns of the header and rows by a streamed count, before the file is loaded.

    Returns
    -------
    bool
        True when a line is longer than ``limits.max_cell_chars`` (its cells are then
        measured once the file is read), False when no cell can be.
    """
    with path.open("rb") as handle:
        head = handle.read(_HEADER_BYTES)
    end = head.find(b"\n")
    if end < 0 and len(head) == _HEADER_BYTES:
        raise _raise(
            name,
            f"a header line longer than {_HEADER_BYTES // 1_000_000} MB",
            f"{limits.max_columns:,} columns",
            "max_columns",
        )
    columns = _header_fields(head[: end if end >= 0 else len(head)])
    if columns > limits.max_columns:
        raise too_many_columns(name, columns, limits)
    import numpy as np

    lines = 0
    counted = False  # the records were counted exactly: within the limit
    longest = 0
    carried = 0  # length of the line still open at the end of the last chunk
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            breaks = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            lines += len(breaks)
            if len(breaks):
                first = carried + int(breaks[0])
                inner = int(np.diff(breaks).max()) - 1 if len(breaks) > 1 else 0
                longest = max(longest, first, inner)
                carried = len(chunk) - int(breaks[-1]) - 1
            else:
                carried += len(chunk)
            longest = max(longest, carried)
            if lines > limits.max_rows + 1 and not counted:
                # line breaks inside quoted cells are no rows: count the records once
                # (to the end of the file, or just past the limit)
                if _csv_records(path, limits.max_rows + 2) > limits.max_rows + 1:
                    raise too_many_rows(name, f"more than {limits.max_rows:,}", limits)
                counted = True
    return longest > limits.max_cell_chars


def long_cells(frame: object, name: str, limits: ReadLimits) -> dict[str, str]:
    """Column -> the refusal for its cell longer than ``limits.max_cell_chars``, if any.

    Only a column the mapping reads is refused (a long note in a column nobody reads
    does no harm): the reader raises the message when it maps the column.
    """
    import numpy as np
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    found: dict[str, str] = {}
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        try:
            lengths = values.str.len()
        except AttributeError:  # an object column without text
            continue
        if not lengths.notna().any():
            continue
        longest = int(lengths.max())
        if longest > limits.max_cell_chars:
            row = int(np.asarray(lengths.fillna(0)).argmax()) + 2  # the header is line 1
            found[str(column).strip()] = str(
                _raise(
                    f"{name}: column {str(column).strip()!r}",
                    f"a cell of {longest:,} characters (row {row})",
                    f"{limits.max_cell_chars:,} characters",
                    "max_cell_chars",
                )
            )
    return found


def check_frame(frame: object, name: str, limits: ReadLimits) -> None:
    """Rows and columns of a frame read from a workbook (its size was bounded unzipped)."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    if frame.shape[1] > limits.max_columns:
        raise too_many_columns(name, frame.shape[1], limits)
    if frame.shape[0] > limits.max_rows:
        raise too_many_rows(name, f"{frame.shape[0]:,}", limits)


__all__ = [
    "DEFAULT_MAX_CELL_CHARS",
    "DEFAULT_MAX_COLUMNS",
    "DEFAULT_MAX_ROWS",
    "DEFAULT_MAX_XLSX_MB",
    "ReadLimits",
    "check_csv",
    "check_frame",
    "check_parquet",
    "check_xlsx",
    "long_cells",
]

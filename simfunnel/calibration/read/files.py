"""Files to tables: CSV (UTF-8, UTF-8 with a BOM, then Latin-1), Parquet and ``.xlsx``.

:func:`read_table` loads a file into a :class:`Table`, checking the size limits of
:mod:`~simfunnel.calibration.read.limits` before it loads.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from simfunnel.calibration.read.checks import (
    columns_text,
)
from simfunnel.calibration.read.limits import (
    ReadLimits,
    check_csv,
    check_frame,
    check_parquet,
    check_xlsx,
    long_cells,
)
from simfunnel.errors import CalibrationError


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
        (:class:`~simfunnel.calibration.read.limits.ReadLimits`), checked before the file is
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

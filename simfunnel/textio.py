"""Reading the text files users give: UTF-8 (with or without a BOM) and safe YAML.

Every scenario, spec and parameter file goes through :func:`read_text` and
:func:`parse_yaml`, so that a binary file, a file in another encoding, an impossible
date or a YAML tag that would build a Python object each give one readable line
instead of a traceback. YAML is only ever read with the safe loader: no file can
make simfunnel run code.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

from simfunnel.errors import SimfunnelError


class TextFileError(ValueError):
    """A file cannot be read as text; the message is one line, without the file name."""


class OutputPathError(SimfunnelError):
    """An output file or folder cannot be written where the user asked."""


class InvalidDateError(yaml.constructor.ConstructorError):
    """A YAML date that does not exist, such as ``2026-13-45``."""


class _SafeLoader(yaml.SafeLoader):
    """The safe loader, with an impossible date a YAML error rather than a ValueError."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidDateError(
                None,
                None,
                f"{node.value!r} is not a valid date ({exc})",
                node.start_mark,
            ) from None


_SafeLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    _SafeLoader.construct_yaml_timestamp,
)


def parse_yaml(text: str) -> Any:
    """Parse YAML with the safe loader (plain data only: no Python objects).

    Raises
    ------
    yaml.YAMLError
        For bad syntax, an impossible date such as ``2026-13-45``, or a tag such as
        ``!!python/object`` that the safe loader refuses.
    """
    return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader subclass: plain data only


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong, and where."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{problem}{where}"
    return lines[0] if lines else "invalid YAML"


def decode_text(data: bytes) -> str:
    """Bytes as text: UTF-8, with or without a byte-order mark.

    Raises
    ------
    TextFileError
        "not a text file" for binary data (a NUL byte), else "not UTF-8 (byte 0x..
        at offset N)".
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if b"\x00" in data[:8192]:
            raise TextFileError("not a text file") from None
        raise TextFileError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise TextFileError("not a text file")
    return text


def read_text(path: str | Path) -> str:
    """A file's text, UTF-8 with or without a BOM.

    Raises
    ------
    TextFileError
        The file cannot be opened, or is not UTF-8 text.
    """
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise TextFileError("is a folder, not a file") from None
    except OSError as exc:
        raise TextFileError(exc.strerror or str(exc)) from None
    return decode_text(data)


def check_output_file(path: str | Path, what: str) -> Path:
    """Check, before any work, that a file can be written at ``path``.

    The folder must exist and be writable, and ``path`` must not be a folder. The
    check opens the file for appending, so an existing file is left as it is, and a
    new one is removed again.

    Raises
    ------
    OutputPathError
        Naming ``what`` (e.g. ``--csv``), the path and what is wrong.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputPathError(f"{what} {path}: is a folder; give a file name")
    if not parent.is_dir():
        reason = "is not a folder" if parent.exists() else "does not exist"
        raise OutputPathError(f"{what} {path}: the folder {str(parent)!r} {reason}")
    existed = target.exists()
    try:
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise OutputPathError(f"{what} {path}: cannot write: {exc.strerror or exc}") from None
    if not existed:
        target.unlink(missing_ok=True)
    return target

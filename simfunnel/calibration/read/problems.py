"""Bad rows and what reading did.

Each check (an unparseable date, a stage before creation, a negative amount, a
duplicate lead id, an empty required value...) names the column, how many rows fail and
an example. When only a few rows fail (at most ``max_bad_share`` of them) they are
skipped, counted and reported; ``strict`` makes any bad row an error; more than that is
always an error (:class:`~simfunnel.errors.CalibrationError`). :class:`ReadReport` is
what reading did: files, mapping, roles, rows skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from simfunnel.errors import CalibrationError

#: Share of rows that may be skipped as bad before the data is refused.
MAX_BAD_SHARE = 0.02


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

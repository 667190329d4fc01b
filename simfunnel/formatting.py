"""Numbers and tables for people: labels with units, one format per kind of quantity.

Every KPI has a human label and a kind (``usd``, ``count``, ``share``, ``hours``,
``months``, ``index``, ``ratio``, ``number``); each kind has one format, used for a value, its
interval and its column in a spreadsheet, so the same quantity always reads the
same way. No format ever falls into scientific notation. Plain Python only: the
command line imports this module for every table it prints.
"""

from __future__ import annotations

import math
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Human label and kind of each KPI (see :data:`simfunnel.metrics.KPI_DOCS`).
KPI_LABELS: dict[str, tuple[str, str]] = {
    "leads": ("Leads", "count"),
    "contacted": ("Leads contacted", "count"),
    "qualified": ("Leads qualified", "count"),
    "opportunities": ("Opportunities", "count"),
    "customers": ("Customers won", "count"),
    "revenue": ("Revenue, first deals", "usd"),
    "lifetime_revenue": ("Revenue over the value horizon", "usd"),
    "marketing_spend": ("Marketing spend", "usd"),
    "sales_cost": ("Sales cost", "usd"),
    "nurture_cost": ("Nurture cost", "usd"),
    "hiring_cost": ("Hiring cost", "usd"),
    "total_cost": ("Total cost", "usd"),
    "cpl": ("Cost per lead", "usd"),
    "cac": ("CAC (cost per customer)", "usd"),
    "conversion_rate": ("Conversion, lead to customer", "share"),
    "contact_rate": ("Contact rate", "share"),
    "return_on_spend": ("Revenue per dollar spent", "ratio"),
    "ltv": ("LTV (lifetime value per customer)", "usd"),
    "ltv_to_cac": ("LTV/CAC", "ratio"),
    "cac_payback_months": ("CAC payback (months)", "months"),
    "profit": ("Profit over the value horizon", "usd"),
    "median_response_hours": ("Median response (hours)", "hours"),
    "p90_response_hours": ("90th pct. response (hours)", "hours"),
    "stale_share": ("Leads gone stale", "share"),
    "unworked_share": ("Leads never worked", "share"),
    "unresolved_share": ("Leads still open when counting stopped", "share"),
    "nurtured_share": ("Leads nurtured", "share"),
    "rep_utilization": ("Rep utilisation", "share"),
    "burnout_index": ("Burnout index (0-1)", "index"),
    "reps_quit": ("Reps who quit", "count"),
    "hires": ("Replacement hires", "count"),
    "backlog_end": ("Backlog at the end (leads)", "count"),
}

#: Spreadsheet number format of each kind (openpyxl / Excel syntax).
EXCEL_FORMATS = {
    "usd": '"$"#,##0',
    "count": "#,##0.0",
    "share": "0.0%",
    "hours": "#,##0.00",
    "index": "0.000",
    "ratio": "0.00",
    "number": "#,##0.00",
    "months": "#,##0.0",
    "change": "+0.0%;-0.0%;0.0%",
}

_UNIT_WORDS = {
    "usd": "USD",
    "hours": "hours",
    "days": "days",
    "minutes": "minutes",
    "weeks": "weeks",
    "months": "months",
    "share": "share",
}


def _kind_from_doc(doc: str) -> str:
    unit = doc[doc.rfind("(") + 1 :].lower() if "(" in doc else ""
    for marker, kind in (
        ("usd", "usd"),
        ("count", "count"),
        ("share", "share"),
        ("hours", "hours"),
        ("0 to 1", "index"),
        ("ratio", "ratio"),
        ("months", "months"),
    ):
        if unit.startswith(marker):
            return kind
    return "number"


def kpi_kind(kpi: str) -> str:
    """The kind of a KPI (``usd``, ``count``, ...), read from its documentation if new."""
    if kpi in KPI_LABELS:
        return KPI_LABELS[kpi][1]
    from simfunnel.metrics import KPI_DOCS

    return _kind_from_doc(KPI_DOCS.get(kpi, ""))


def kpi_label(kpi: str) -> str:
    """The human label of a KPI, with its unit where the value does not show it."""
    if kpi in KPI_LABELS:
        return KPI_LABELS[kpi][0]
    return _humanize(kpi)


def _humanize(field: str) -> str:
    words = field.split("_")
    unit = ""
    if words and words[-1] in _UNIT_WORDS and len(words) > 1:
        unit = f" ({_UNIT_WORDS[words.pop()]})"
    text = " ".join(words)
    return text[:1].upper() + text[1:] + unit


def parameter_label(path: str) -> str:
    """A swept parameter's dotted path as words: ``paid_social: budget per week (USD)``."""
    parts = path.split(".")
    field = _humanize(parts[-1])
    if len(parts) == 1:
        return field
    owner = parts[-2]
    return f"{owner.replace('_', ' ')}: {field[:1].lower() + field[1:]}"


def parameter_kind(path: str) -> str:
    """The kind of a swept parameter, from its unit suffix."""
    return "usd" if path.endswith("_usd") else "number"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def format_number(value: Any, kind: str = "number", *, statistic: bool = False) -> str:
    """One number in the format of its kind; ``-`` when missing.

    Parameters
    ----------
    value
        The number (NaN or None for undefined, such as CAC without customers).
    kind
        ``usd``, ``count``, ``share``, ``hours``, ``index``, ``ratio`` or ``number``.
    statistic
        A mean or an interval bound rather than one run's value: counts then keep
        one decimal (14.9 customers a year on average), so a column reads alike.
    """
    if _missing(value):
        return "-"
    if isinstance(value, bool | str):
        return str(value)
    x = float(value)
    if kind == "usd":
        text = f"{abs(x):,.2f}" if abs(x) < 10 and x != 0 else f"{abs(x):,.0f}"
        return f"-${text}" if x < 0 else f"${text}"
    if kind == "count":
        return f"{x:,.1f}" if statistic else f"{x:,.0f}"
    if kind == "share":
        return f"{100 * x:,.1f}%"
    if kind == "hours":
        return f"{x:,.2f}"
    if kind == "index":
        return f"{x:.3f}"
    if kind == "ratio":
        return f"{x:,.2f}"
    if kind == "months":
        return f"{x:,.1f}"
    if x.is_integer() and abs(x) < 1e15:
        return f"{x:,.0f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.4f}".rstrip("0").rstrip(".") or "0"


def format_plus_minus(low: Any, high: Any, kind: str, mean: Any = None) -> str:
    """The half-width of a symmetric interval: ``± $83,494``.

    Given the ``mean``, an interval that is not symmetric about it (one cut at a
    KPI's bound, a burnout at 0) reads as its two ends, ``0.000 to 0.012``: a
    half-width would suggest a bound below 0.
    """
    if _missing(low) or _missing(high):
        return "-"
    lo, hi = float(low), float(high)
    if lo == hi:  # no spread: in words
        return format_interval(lo, hi, kind)
    if not _missing(mean) and abs((float(mean) - lo) - (hi - float(mean))) > 0.01 * (hi - lo):
        return format_interval(lo, hi, kind)
    return "± " + format_number((hi - lo) / 2, kind, statistic=True)


def format_interval(low: Any, high: Any, kind: str) -> str:
    """``$26,737 to $29,079``; ``all replications 0`` where every replication agrees."""
    if _missing(low) or _missing(high):
        return "-"
    if float(low) == float(high):  # no spread at all: said in words, not "0 to 0"
        return f"all replications {format_number(low, kind)}"
    lo = format_number(low, kind, statistic=True)
    hi = format_number(high, kind, statistic=True)
    return f"{lo} to {hi}"


def format_change(rel: Any) -> str:
    """A relative change as a signed percentage: ``+867.3%``, ``-12.0%``."""
    if _missing(rel):
        return "-"
    return f"{100 * float(rel):+,.1f}%"


def format_difference(value: Any, kind: str) -> str:
    """A signed difference in the KPI's unit: ``+0.587``, ``-$1,200``, ``+60.8 pp``.

    A difference of shares is in percentage points (``pp``), never a bare ``%`` that
    would read as a relative change.
    """
    if _missing(value):
        return "-"
    x = float(value)
    if kind == "share":
        text = f"{100 * abs(x):,.1f} pp"
    else:
        text = format_number(abs(x), kind, statistic=True)
    return text if x == 0 else ("+" if x > 0 else "-") + text


def format_difference_interval(low: Any, high: Any, kind: str) -> str:
    """``+0.451 to +0.547``; ``the same in every replication`` without spread."""
    if _missing(low) or _missing(high):
        return "-"
    if float(low) == float(high):
        return "the same in every replication"
    return f"{format_difference(low, kind)} to {format_difference(high, kind)}"


#: What a table prints beside a difference that stands in for a relative change.
NEAR_ZERO_NOTE = "absolute: the baseline is too near 0 for a percentage"


def format_change_interval(low: Any, high: Any) -> str:
    """``-89.5% to -84.6%``; ``the same in every replication`` without spread."""
    if _missing(low) or _missing(high):
        return "-"
    if float(low) == float(high):
        return "the same in every replication"
    return f"{format_change(low)} to {format_change(high)}"


def terminal_width(default: int = 100) -> int:
    """Columns of the terminal (``$COLUMNS`` first); ``default`` when not a terminal."""
    return shutil.get_terminal_size((default, 24)).columns


@dataclass(frozen=True)
class Column:
    """A table column.

    Attributes
    ----------
    header
        Its heading.
    align
        ``<`` (text) or ``>`` (numbers).
    drop
        0: always shown; otherwise columns with the highest ``drop`` go first when
        the table is wider than the terminal.
    shrink_to
        If set, a text column is first shortened (with an ellipsis) down to this
        many characters, and only then left out.
    """

    header: str
    align: str = ">"
    drop: int = 0
    shrink_to: int = 0


@dataclass(frozen=True)
class Section:
    """A heading row that spans the table, such as a KPI above its strategies."""

    text: str


Row = Sequence[str] | Section


def render_table(
    columns: Sequence[Column], rows: Sequence[Row], width: int | None = None, indent: int = 2
) -> str:
    """Rows as aligned text no wider than ``width`` (default: the terminal's).

    When the table is too wide, headings first wrap onto several lines; then optional
    columns are left out, highest ``drop`` first; then the widest text column is
    shortened with an ellipsis. A note under the table names what was left out.
    """
    width = width or terminal_width()
    keep = list(range(len(columns)))
    cells = [list(r) if not isinstance(r, Section) else r for r in rows]
    body = {
        c: max([0, *(len(r[c]) for r in cells if not isinstance(r, Section))])
        for c in range(len(columns))
    }

    def headings(cols: list[int], wrapped: bool) -> dict[int, list[str]]:
        out = {}
        for c in cols:
            text = columns[c].header
            if wrapped and text:
                size = max(body[c], 12, *(len(word) for word in text.split()))
                out[c] = textwrap.wrap(text, size)
            else:
                out[c] = [text]
        return out

    cap: dict[int, int] = {}

    def widths(heads: dict[int, list[str]]) -> dict[int, int]:
        return {
            c: min(cap.get(c, 10**6), max(body[c], *(len(x) for x in lines)))
            for c, lines in heads.items()
        }

    def total(w: dict[int, int]) -> int:
        return indent + sum(w.values()) + 2 * (len(w) - 1)

    heads = headings(keep, wrapped=False)
    if total(widths(heads)) > width:
        heads = headings(keep, wrapped=True)
    dropped: list[str] = []
    for c in keep:  # shorten what may be shortened before leaving anything out
        excess = total(widths(heads)) - width
        current = widths(heads)[c]
        if excess > 0 and columns[c].shrink_to and current > columns[c].shrink_to:
            cap[c] = max(columns[c].shrink_to, current - excess)
    while total(widths(heads)) > width:
        optional = [c for c in keep if columns[c].drop > 0]
        if not optional:
            break
        worst = max(optional, key=lambda c: (columns[c].drop, c))
        keep.remove(worst)
        dropped.append(columns[worst].header.strip())
        heads = headings(keep, wrapped=True)
    w = widths(heads)
    excess = total(w) - width
    if excess > 0:
        texts = [c for c in keep if columns[c].align == "<"]
        if texts:
            widest = max(texts, key=lambda c: w[c])
            w[widest] = max(8, w[widest] - excess)

    def fit(text: str, size: int) -> str:
        return text if len(text) <= size else text[: size - 1] + "…"

    def line(values: dict[int, str]) -> str:
        parts = [f"{fit(values[c], w[c]):{columns[c].align}{w[c]}}" for c in keep]
        return (" " * indent + "  ".join(parts)).rstrip()

    out = []
    depth = max(len(heads[c]) for c in keep)
    if any(columns[c].header for c in keep):
        for k in range(depth):  # headings sit on the bottom line of the heading rows
            out.append(line({c: ([""] * (depth - len(heads[c])) + heads[c])[k] for c in keep}))
    for r in cells:
        if isinstance(r, Section):
            out.append(fit(r.text, width))
        else:
            out.append(line(dict(enumerate(r))))
    if dropped:
        out.append(
            wrap(
                f"({', '.join(dropped)} left out to fit {width} columns; widen the "
                "terminal or set COLUMNS)",
                width,
            )
        )
    return "\n".join(out)


def known_width(stream: Any = None) -> int | None:
    """The terminal's width (``$COLUMNS`` first) when ``stream`` is a terminal, else None.

    A message written to a pipe or a file is kept on one line, for whatever reads it.
    """
    stream = stream if stream is not None else sys.stdout
    try:
        return terminal_width() if stream.isatty() else None
    except (AttributeError, ValueError):
        return None


def wrap_if_terminal(text: str, stream: Any = None, indent: str = "") -> str:
    """``text`` wrapped to the terminal (:func:`wrap`), or unchanged when there is none."""
    width = known_width(stream)
    return text if width is None else wrap(text, width, indent)


def wrap(text: str, width: int | None = None, indent: str = "") -> str:
    """Prose wrapped to the terminal, paragraph by paragraph (lines kept apart).

    ``indent`` starts every line of a paragraph but its first (a hanging indent).
    Words longer than the width (a path, a URL) are kept whole.
    """
    width = width or terminal_width()
    return "\n".join(
        textwrap.fill(
            line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
        )
        if line
        else ""
        for line in text.split("\n")
    )

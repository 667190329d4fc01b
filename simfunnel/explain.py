"""``simfunnel explain``: every value a scenario uses, where it came from, and why.

The fields that drive cost most stand first (deal size, churn, rep cost, hiring cost,
cost per lead); the rest follow by section of docs/assumptions.md.
"""

from __future__ import annotations

import json as _json
from collections import Counter
from pathlib import Path
from typing import Any

from simfunnel.formatting import Column, Section, render_table, wrap
from simfunnel.origins import COST_DRIVERS, FieldOrigin, field_origins, is_bundled

_ORIGIN_WORDS = {
    "file": "your file",
    "data": "estimated from data",
    "fit": "fitted by simulation",
    "default": "default",
}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) >= 1000 else f"{value:.6g}"
    if isinstance(value, list | tuple):
        text = _json.dumps(value, default=str)
        return text if len(text) <= 18 else f"{text[:15]}..."
    if value is None:
        return "unset"
    return str(value)


def _interval(f: FieldOrigin) -> str:
    if f.interval is None:
        return ""
    return f"{_value(f.interval[0])} to {_value(f.interval[1])}"


def explanation(
    scenario: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What :func:`explain` shows, as a JSON-ready dict."""
    loaded, fields = field_origins(scenario, overrides)
    return _facts(scenario, loaded.name, fields)


def _facts(scenario: Any, name: str, fields: list[FieldOrigin]) -> dict[str, Any]:
    counts = Counter(f.origin for f in fields)
    drivers = [name for name, _ in COST_DRIVERS]
    return {
        "scenario": name,
        "bundled": is_bundled(scenario),
        "assumptions": "docs/assumptions.md",
        "origins": {o: counts.get(o, 0) for o in _ORIGIN_WORDS},
        "cost_drivers": drivers,
        "fields": [f.to_dict() for f in fields],
    }


def explain(
    scenario: str | Path | dict[str, Any],
    *,
    overrides: dict[str, Any] | None = None,
    json: bool = False,
    width: int | None = None,
) -> str:
    """Every effective field of ``scenario`` with its value, origin and default's source.

    Parameters
    ----------
    scenario
        A bundled name, a scenario file or a raw dict.
    overrides
        Dotted paths to values (``--set``); they count as the user's.
    json
        The JSON text of :func:`explanation` instead of tables.
    width
        Columns of the text (default: the terminal's).

    Raises
    ------
    simfunnel.errors.ScenarioError
        The scenario or an override is invalid.
    """
    loaded, fields = field_origins(scenario, overrides)
    facts = _facts(scenario, loaded.name, fields)
    if json:
        return _json.dumps(facts, indent=2, default=str)
    counts = facts["origins"]
    said = ", ".join(f"{n} {_ORIGIN_WORDS[o]}" for o, n in counts.items() if n)
    lines = [
        wrap(
            f"{facts['scenario']}: {len(fields)} fields ({said}). Each default's figure and "
            "published source is in docs/assumptions.md, at the section named.",
            width,
        )
    ]
    if facts["bundled"]:
        lines.append(
            wrap(
                "A bundled scenario: its figures are published benchmarks, not your "
                "company's. Copy it and give your own, the cost drivers first.",
                width,
            )
        )
    drivers = set(facts["cost_drivers"])
    rows: list[Any] = []
    group = None
    for f in fields:
        if f.group != group:
            if group in drivers and f.group not in drivers:
                rows.append(Section("Everything else, by section of docs/assumptions.md"))
            group = f.group
            title = f"What drives cost: {group}" if group in drivers else group
            rows.append(Section(title))
        anchor = "#" + f.section.partition("#")[2]
        rows.append([f.path, _value(f.value), f.origin, anchor, _interval(f)])
    columns = [
        Column("field", "<", shrink_to=36),
        Column("value"),
        Column("origin", "<"),
        Column("docs/assumptions.md", "<", 2),
        Column("95% interval", "<", 1),
    ]
    if not any(f.interval for f in fields):  # nothing estimated: no interval column
        columns.pop()
        rows = [r if isinstance(r, Section) else r[:-1] for r in rows]
    lines.append(render_table(columns, rows, width=width))
    return "\n".join(lines)

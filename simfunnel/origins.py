"""Where each value of a scenario came from: the user's file, the data, a fit, or a default.

A scenario's ``provenance:`` block (what ``simfunnel calibrate`` writes) names the origin
of the fields it lists. A field it does not list (every field of a scenario without the
block, such as those written before it existed) is ``file`` when the file sets it and
``default`` when the schema fills it in; an override (``--set``) is the user's, ``file``.
Every field is cited with the section of docs/assumptions.md that gives its default.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simfunnel.assumptions import TITLES, cite, section_of
from simfunnel.parameters import (
    Scenario,
    bundled_scenarios,
    fix_reference_budget,
    leaf_paths,
    load_scenario,
    read_scenario_dict,
)

#: The fields that drive cost most, in the order a strategist should check them.
COST_DRIVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("deal size", ("sources.*.deal_size.mean_usd", "sources.*.deal_size.sigma")),
    ("churn", ("sources.*.monthly_churn",)),
    ("rep cost", ("team.loaded_cost_per_hour_usd",)),
    ("hiring cost", ("team.hiring_cost_usd",)),
    ("cost per lead", ("sources.*.cost_per_lead_usd",)),
)


@dataclass(frozen=True)
class FieldOrigin:
    """One effective field of a scenario and where its value came from."""

    path: str
    value: Any
    origin: str
    group: str
    section: str
    interval: tuple[float, float] | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval is not None else None
        return out


def _generic(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "sources" and len(parts) > 2:
        parts[1] = "*"
    return ".".join(parts)


def cost_group(path: str) -> str | None:
    """The cost driver a field belongs to (``deal size``...), or None."""
    generic = _generic(path)
    for name, patterns in COST_DRIVERS:
        if generic in patterns:
            return name
    return None


def _source_names(raw: dict[str, Any]) -> list[str]:
    sources = raw.get("sources")
    if not isinstance(sources, list):
        return []
    return [str(s.get("name")) for s in sources if isinstance(s, dict)]


def _named(path: str, names: list[str]) -> str:
    """``sources.0.x`` -> ``sources.<name of source 0>.x`` (an override's path)."""
    parts = path.split(".")
    if parts[0] == "sources" and len(parts) > 2 and parts[1].lstrip("-").isdigit():
        index = int(parts[1])
        if -len(names) <= index < len(names):
            parts[1] = names[index]
    return ".".join(parts)


def field_origins(
    scenario: str | Path | dict[str, Any],
    overrides: dict[str, Any] | None = None,
) -> tuple[Scenario, list[FieldOrigin]]:
    """The validated scenario and every effective field with its value and origin.

    Parameters
    ----------
    scenario
        A bundled name, a scenario file (YAML or JSON) or a raw dict.
    overrides
        Dotted paths to values, as :func:`simfunnel.load_scenario` takes them; they count
        as the user's (``file``).

    Raises
    ------
    simfunnel.errors.ScenarioError
        The scenario or an override is invalid.
    """
    raw = dict(scenario) if isinstance(scenario, dict) else read_scenario_dict(scenario)
    loaded = load_scenario(raw if isinstance(scenario, dict) else scenario, overrides)
    sources = raw.get("sources")
    if isinstance(sources, list):  # B0 is the budget the file wrote: the file's
        raw = {**raw, "sources": [fix_reference_budget(s) for s in sources]}
    written = leaf_paths({k: v for k, v in raw.items() if k != "provenance"})
    names = _source_names(raw)
    overridden = {_named(p, names) for p in (overrides or {})}
    effective = leaf_paths(loaded.model_dump(mode="json", exclude={"provenance"}))
    out: list[FieldOrigin] = []
    for path, value in effective.items():
        if path.rsplit(".", 1)[-1] in ("name", "description"):
            continue
        entry = loaded.provenance.get(path)
        parent = next((p for p in loaded.provenance if path.startswith(f"{p}.")), None)
        if entry is None and parent is not None:
            entry = loaded.provenance[parent]
        interval: tuple[float, float] | None = None
        source: str | None = None
        if any(path == o or path.startswith(f"{o}.") for o in overridden):
            origin, source = "file", "override"
        elif entry is not None:
            origin, interval, source = entry.origin, entry.interval, entry.source
        elif path in written or any(path.startswith(f"{w}.") for w in written):
            origin = "file"
        else:
            origin, source = "default", cite(path)
        out.append(
            FieldOrigin(
                path=path,
                value=value,
                origin=origin,
                group=cost_group(path) or TITLES[section_of(path)],
                section=cite(path),
                interval=interval,
                source=source,
            )
        )
    return loaded, _ordered(out)


def _ordered(fields: list[FieldOrigin]) -> list[FieldOrigin]:
    """Cost drivers first, in :data:`COST_DRIVERS` order; then by section of the page."""
    drivers = [name for name, _ in COST_DRIVERS]
    sections = list(TITLES.values())

    def key(f: FieldOrigin) -> tuple[int, int]:
        if f.group in drivers:
            return (0, drivers.index(f.group))
        return (1, sections.index(f.group) if f.group in sections else len(sections))

    return sorted(fields, key=key)  # stable: file order within a group


def is_bundled(scenario: Any) -> bool:
    """True for the name of a bundled scenario (not a file of the same name)."""
    return (
        isinstance(scenario, str)
        and not Path(scenario).exists()
        and scenario in bundled_scenarios()
    )


# ------------------------------------------------------------ a report's notes

#: How a report's provenance box names a cost figure left at its default, and what it
#: asks the user for: (field, words, unit, request).
_COST_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("sources.*.cost_per_lead_usd", "cost per lead", "$", "give your spend"),
    ("sources.*.deal_size.mean_usd", "deal size", "$", "give your average first-year contract"),
    ("sources.*.monthly_churn", "monthly churn", "%", "give yours"),
    ("team.loaded_cost_per_hour_usd", "a rep's loaded hour", "$", "give your rep cost"),
    ("team.hiring_cost_usd", "hiring a rep", "$", "give your hiring cost"),
)


def _amount(value: Any, unit: str) -> str:
    if unit == "$":
        return f"${float(value):,.0f}"
    return f"{100 * float(value):.3g}%"


def cost_default_notes(fields: list[FieldOrigin]) -> list[str]:
    """One sentence per cost figure left at its default rather than the user's.

    ``"cost per lead is the default $198 for all sources: give your spend"``.
    """
    notes = []
    sources = {f.path.split(".")[1] for f in fields if f.path.startswith("sources.")}
    for pattern, words, unit, request in _COST_FIGURES:
        hits = [f for f in fields if _generic(f.path) == pattern and f.origin == "default"]
        if not hits:
            continue
        values = sorted({_amount(f.value, unit) for f in hits})
        shown = " or ".join(values)
        if pattern.startswith("sources."):
            named = sorted(f.path.split(".")[1] for f in hits)
            whom = "all sources" if set(named) == sources else ", ".join(named)
            notes.append(f"{words} is the default {shown} for {whom}: {request}")
        else:
            notes.append(f"{words} is the default {shown}: {request}")
    return notes


def report_notes(
    scenarios: list[Any], overrides: dict[str, Any] | None = None, most: int = 4
) -> tuple[list[str], list[str]]:
    """What a report's provenance box says of its assumptions: (cost flags, other notes).

    The cost figures each scenario leaves at a default (named with the scenario when
    there are several); then whether the scenarios are bundled benchmarks, and the
    groups of other defaults its numbers rest on (the ``most`` largest, with their size).
    """
    flags: list[str] = []
    notes: list[str] = []
    others: dict[str, set[str]] = {}
    bundled = [s for s in scenarios if is_bundled(s)]
    if bundled:
        which = "the bundled scenario's" if len(scenarios) == 1 else "the bundled scenarios'"
        notes.append(f"{which} figures are published benchmarks, not your company's")
    for scenario in scenarios:
        loaded, fields = field_origins(scenario, overrides)
        prefix = f"{loaded.name}: " if len(scenarios) > 1 else ""
        flags += [prefix + n for n in cost_default_notes(fields) if prefix + n not in flags]
        drivers = {name for name, _ in COST_DRIVERS}
        for f in fields:  # an optional field left unset is no assumption
            if f.origin == "default" and f.group not in drivers and f.value is not None:
                others.setdefault(f.group.lower(), set()).add(_generic(f.path))
    if others:
        counts = Counter({group: len(paths) for group, paths in others.items()})
        top = [f"{group} ({n} fields)" for group, n in counts.most_common(most)]
        rest = len(others) - len(top)
        more = f" and {rest} more groups" if rest > 0 else ""
        notes.append(f"other defaults: {', '.join(top)}{more} (simfunnel explain lists each)")
    return flags, notes

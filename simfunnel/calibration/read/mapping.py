"""Column mappings: which of a user's columns plays which role, and the bundled presets.

A mapping file is YAML::

    leads:                       # role: the column that holds it
      lead_id: Record ID
      source: Original Source
      created_at: Create Date
      qualified_at: Became a Sales Qualified Lead Date
      status: Lead Status
    deals:                       # optional: a second table, joined to the leads
      lead_id: Opportunity ID    # the deals' key column
      match: Converted Opportunity ID   # the leads' column it matches (default: lead_id)
      opportunity_at: Created Date
      closed_at: Close Date
      won: Won
      amount: Amount
    status_values:               # lead status -> open/contacted/qualified/opportunity/won/lost
      Closed - Converted: qualified
      Closed - Not Converted: lost
    deal_status_values:          # deal stage -> open/won/lost
      Closed Won: won
    dates:
      dayfirst: true             # 26-02-2018 19:58 is the 26th of February
      format: "%d-%m-%Y %H:%M"   # optional: one strptime format for every date column

A mapping with no ``leads`` key lists the lead roles at its top level. A preset lists
several candidate names per role (the export's label changes with the CRM's language
settings and version); the first one present in the file is used.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simfunnel.calibration.read.columns import CRM_COLUMNS, REQUIRED_ROLES, ROLES
from simfunnel.errors import CalibrationError
from simfunnel.textio import TextFileError, parse_yaml, read_text, yaml_problem

#: Roles of the deals table (``lead_id`` is its key column; ``match`` is not a role but
#: the leads' column the key matches).
DEAL_ROLES: tuple[str, ...] = (
    "lead_id",
    "opportunity_at",
    "closed_at",
    "won_at",
    "lost_at",
    "won",
    "status",
    "amount",
    "owner",
    "churned_at",
)

#: What a lead status may mean.
STATUS_MEANINGS: tuple[str, ...] = ("open", "contacted", "qualified", "opportunity", "won", "lost")

#: Statuses understood without a value map (compared case-insensitively).
DEFAULT_STATUS_VALUES: dict[str, str] = {
    "open": "open",
    "new": "open",
    "won": "won",
    "closed won": "won",
    "customer": "won",
    "lost": "lost",
    "closed lost": "lost",
    "unqualified": "lost",
    "disqualified": "lost",
}

Column = tuple[str, ...]


@dataclass(frozen=True)
class Mapping:
    """Which columns hold which roles, and how to read their values.

    Attributes
    ----------
    leads, deals
        Role -> candidate column names (the first present in the file is used).
    match
        The leads' column that the deals' ``lead_id`` matches (None: the lead id).
    status_values, deal_status_values
        Raw value -> meaning (case-insensitive), on top of the defaults.
    dayfirst, date_format
        How to read dates: day first (``26-02-2018``), or one strptime format.
    name
        Where the mapping came from (a preset's name, ``crm`` or a file name).
    named
        The entries the user wrote (``leads.source``, ``deals.amount``, ``deals.match``):
        each must name a column of its file. A preset's candidates need not all exist.
    """

    leads: dict[str, Column]
    deals: dict[str, Column] = field(default_factory=dict)
    match: Column | None = None
    status_values: dict[str, str] = field(default_factory=dict)
    deal_status_values: dict[str, str] = field(default_factory=dict)
    dayfirst: bool = False
    date_format: str | None = None
    name: str = "mapping"
    named: frozenset[str] = frozenset()


def _cols(*names: str) -> Column:
    return tuple(names)


#: simfunnel's own CRM export (``calibration.export.to_crm``), or a frame already in the
#: canonical names (what :func:`~simfunnel.calibration.read.lead_frame` returns): every
#: column is its role.
NATIVE = Mapping(leads={c: (c,) for c in ROLES}, name="crm")

# HubSpot contacts export ("Export" on the contacts index, with the lifecycle-stage
# date properties added as columns). Labels as HubSpot shows them in English.
HUBSPOT = Mapping(
    leads={
        "lead_id": _cols("Record ID", "Contact ID"),
        "source": _cols("Original Source", "Original Source Type"),
        "created_at": _cols("Create Date", "Became a Lead Date"),
        "qualified_at": _cols("Became a Sales Qualified Lead Date"),
        "opportunity_at": _cols("Became an Opportunity Date"),
        "won_at": _cols("Became a Customer Date"),
        "status": _cols("Lead Status"),
        "owner": _cols("Contact owner", "Contact Owner", "HubSpot Owner"),
        "score": _cols("HubSpot Score"),
        "attempts": _cols("Number of times contacted", "Number of Sales Activities"),
        "amount": _cols("Recent Deal Amount", "Total Revenue"),
    },
    status_values={
        "new": "open",
        "open": "open",
        "in progress": "open",
        "attempted to contact": "open",
        "connected": "open",
        "open deal": "open",
        "unqualified": "lost",
        "bad timing": "lost",
    },
    name="hubspot",
)

# Salesforce: a Leads report (Reports > New Report > Leads) and an Opportunities report,
# joined on the lead's Converted Opportunity ID. Labels as Salesforce shows them.
SALESFORCE = Mapping(
    leads={
        "lead_id": _cols("Lead ID"),
        "source": _cols("Lead Source"),
        "created_at": _cols("Create Date", "Created Date"),
        "status": _cols("Lead Status"),
        "qualified": _cols("Converted"),
        "qualified_at": _cols("Converted Date"),
        "owner": _cols("Lead Owner"),
    },
    deals={
        "lead_id": _cols("Opportunity ID"),
        "opportunity_at": _cols("Created Date", "Create Date"),
        "closed_at": _cols("Close Date"),
        "won": _cols("Won"),
        "status": _cols("Stage"),
        "amount": _cols("Amount"),
    },
    match=_cols("Converted Opportunity ID"),
    status_values={
        "open - not contacted": "open",
        "working - contacted": "contacted",
        "closed - converted": "qualified",
        "closed - not converted": "lost",
    },
    deal_status_values={"closed won": "won", "closed lost": "lost"},
    name="salesforce",
)

PRESETS: dict[str, Mapping] = {"hubspot": HUBSPOT, "salesforce": SALESFORCE}


def resolve(candidates: dict[str, Column], columns: Iterable[str]) -> dict[str, str]:
    """Role -> the first candidate column present in ``columns`` (roles with none left out)."""
    have = {str(c).strip(): str(c) for c in columns}
    out: dict[str, str] = {}
    for role, names in candidates.items():
        for name in names:
            if name in have:
                out[role] = have[name]
                break
    return out


def detect(columns: Iterable[str]) -> Mapping | None:
    """The native CRM header or the preset whose required columns the header has, if any."""
    names = [str(c).strip() for c in columns]
    if set(REQUIRED_ROLES) <= set(names) and (
        sum(c in names for c in CRM_COLUMNS) >= 10 or set(names) <= set(ROLES)
    ):
        return NATIVE
    for preset in PRESETS.values():
        found = resolve(preset.leads, names)
        if all(role in found for role in REQUIRED_ROLES):
            return preset
    return None


def _column(value: Any, where: str) -> Column:
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise CalibrationError(f"mapping: {where}: must be a column name, got {value!r}")


def _roles(section: Any, allowed: Iterable[str], where: str) -> dict[str, Column]:
    if not isinstance(section, AbcMapping):
        raise CalibrationError(f"mapping: {where}: must map roles to column names")
    allowed = tuple(allowed)
    out: dict[str, Column] = {}
    for role, value in section.items():
        if role not in allowed:
            close = difflib.get_close_matches(str(role), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise CalibrationError(
                f"mapping: {where}.{role}: unknown role ({hint}allowed: {', '.join(allowed)})"
            )
        out[str(role)] = _column(value, f"{where}.{role}")
    return out


def _values(section: Any, allowed: tuple[str, ...], where: str) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, AbcMapping):
        raise CalibrationError(f"mapping: {where}: must map values to meanings")
    out: dict[str, str] = {}
    for raw, meaning in section.items():
        if str(meaning).lower() not in allowed:
            raise CalibrationError(
                f"mapping: {where}.{raw}: must be one of {', '.join(allowed)}, got {meaning!r}"
            )
        if isinstance(raw, bool):  # YAML reads an unquoted Yes/No (or y, on, true) as one
            for text in _YAML_BOOLEANS[raw]:
                out.setdefault(text, str(meaning).lower())
            continue
        out[str(raw).strip().lower()] = str(meaning).lower()
    return out


#: The cell values an unquoted YAML boolean key stands for (``Yes: won`` arrives as True).
_YAML_BOOLEANS: dict[bool, tuple[str, ...]] = {
    True: ("yes", "y", "true", "on", "1"),
    False: ("no", "n", "false", "off", "0"),
}


def _shown(value: Any) -> str:
    """A value for a message, cut short: a YAML list or text, never a page of it."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_date_format(fmt: Any) -> str:
    """``fmt`` if it is a strptime format pandas can use, else one line saying what is wrong.

    Raises
    ------
    CalibrationError
        Not text, or a bad directive (``%Q``), or a stray ``%``.
    """
    if not isinstance(fmt, str) or not fmt.strip():
        raise CalibrationError(
            f"mapping: dates.format: must be a strptime format such as '%d/%m/%Y', "
            f"got {_shown(fmt)}"
        )
    import warnings

    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.to_datetime(pd.Series(["2025-01-02"]), format=fmt, errors="coerce")
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CalibrationError(
            f"mapping: dates.format {_shown(fmt)}: not a strptime format ({first}); "
            "directives are %Y %m %d %H %M %S, e.g. '%d/%m/%Y %H:%M'"
        ) from None
    return fmt


def mapping_from_dict(data: Any, name: str = "mapping") -> Mapping:
    """Validate a mapping read from YAML (see the module docstring for the format).

    Raises
    ------
    CalibrationError
        Naming the key that is wrong.
    """
    if not isinstance(data, AbcMapping):
        raise CalibrationError("mapping: must be a YAML mapping of roles to column names")
    known = {"leads", "deals", "status_values", "deal_status_values", "dates", "preset"}
    if "leads" not in data:
        leads_raw = {k: v for k, v in data.items() if k not in known}
        data = {**{k: v for k, v in data.items() if k in known}, "leads": leads_raw}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalibrationError(f"mapping: unknown key {unknown[0]!r} (allowed: {sorted(known)})")
    base = PRESETS.get(str(data.get("preset"))) if data.get("preset") is not None else None
    if data.get("preset") is not None and base is None:
        raise CalibrationError(
            f"mapping: preset: must be one of {', '.join(PRESETS)}, got {data['preset']!r}"
        )
    leads = _roles(data["leads"] or {}, ROLES, "leads")
    if not isinstance(data.get("deals") or {}, AbcMapping):
        raise CalibrationError(
            f"mapping: deals: must map roles to column names, got {_shown(data['deals'])}"
        )
    deals_raw = dict(data.get("deals") or {})
    match = _column(deals_raw.pop("match"), "deals.match") if "match" in deals_raw else None
    deals = _roles(deals_raw, DEAL_ROLES, "deals")
    if (deals or match is not None) and "lead_id" not in deals:
        raise CalibrationError("mapping: deals: give lead_id, the deals' column of lead ids")
    dates = data.get("dates") or {}
    if not isinstance(dates, AbcMapping) or set(dates) - {"dayfirst", "format"}:
        raise CalibrationError("mapping: dates: only 'dayfirst' (true/false) and 'format'")
    dayfirst = dates.get("dayfirst", False)
    if not isinstance(dayfirst, bool):
        raise CalibrationError(f"mapping: dates.dayfirst: must be true or false, got {dayfirst!r}")
    fmt = dates.get("format")
    if fmt is not None:
        check_date_format(fmt)
    named = frozenset(
        [f"leads.{r}" for r in leads]
        + [f"deals.{r}" for r in deals]
        + (["deals.match"] if match is not None else [])
    )
    status = _values(data.get("status_values"), STATUS_MEANINGS, "status_values")
    deal_status = _values(data.get("deal_status_values"), ("open", "won", "lost"), "deal_status")
    if base is not None:
        return Mapping(
            leads={**base.leads, **leads},
            deals={**base.deals, **deals},
            match=match or base.match,
            status_values={**base.status_values, **status},
            deal_status_values={**base.deal_status_values, **deal_status},
            dayfirst=dayfirst,
            date_format=fmt,
            name=name,
            named=named,
        )
    return Mapping(
        leads=leads,
        deals=deals,
        match=match,
        status_values=status,
        deal_status_values=deal_status,
        dayfirst=dayfirst,
        date_format=fmt,
        name=name,
        named=named,
    )


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping YAML file.

    Raises
    ------
    CalibrationError
        The file cannot be read, is not YAML, or names an unknown role.
    """
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise CalibrationError(f"--mapping {path}: {exc}") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise CalibrationError(f"--mapping {path}: {yaml_problem(exc)}") from None
    return mapping_from_dict(data, name=Path(path).name)


def as_mapping(value: Mapping | dict[str, Any] | str | Path | None) -> Mapping | None:
    """A Mapping from a Mapping, a dict, a preset name or a YAML file path (None stays None)."""
    if value is None or isinstance(value, Mapping):
        return value
    if isinstance(value, dict):
        return mapping_from_dict(value)
    if str(value) in PRESETS:
        return PRESETS[str(value)]
    return load_mapping(value)

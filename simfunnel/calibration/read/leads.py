"""Reading a CRM export into one canonical lead frame.

:func:`~simfunnel.calibration.read.files.read_table` loads a CSV, Parquet or ``.xlsx``
file (CSV text is tried as UTF-8, UTF-8 with a BOM, then Latin-1, and the report says
which was used). :func:`lead_frame` applies a column mapping (a preset, the native CRM
header, or the user's YAML), parses dates and numbers, joins an optional deals table,
checks the rows, and returns a frame with the names of
:mod:`simfunnel.calibration.read.columns` and a
:class:`~simfunnel.calibration.read.problems.ReadReport`.

Bad rows: each check (an unparseable date, a stage before creation, a negative amount, a
duplicate lead id, an empty required value...) names the column, how many rows fail and
an example. When only a few rows fail (at most ``max_bad_share`` of them) they are
skipped, counted and reported; ``strict`` makes any bad row an error; more than that is
always an error (:class:`~simfunnel.errors.CalibrationError`).

The deals table is joined by :mod:`~simfunnel.calibration.read.deals`.
"""

from __future__ import annotations

import pandas as pd

from simfunnel.calibration.read.cells import (
    _example,
    _flags,
    _numbers,
    _parse_dates,
    _status_meanings,
    _text,
)
from simfunnel.calibration.read.checks import (
    clean_sources,
    lead_outcomes,
    missing_column,
    require_columns,
    score_coverage,
)
from simfunnel.calibration.read.columns import CRM_COLUMNS, DATE_ROLES, REQUIRED_ROLES
from simfunnel.calibration.read.deals import _join_deals
from simfunnel.calibration.read.files import Table
from simfunnel.calibration.read.mapping import (
    PRESETS,
    Mapping,
    check_date_format,
    detect,
    resolve,
)
from simfunnel.calibration.read.problems import MAX_BAD_SHARE, ReadReport, _Problems
from simfunnel.errors import CalibrationError


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
        ``frame`` has the columns of :data:`~simfunnel.calibration.read.columns.CRM_COLUMNS`
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
                continue  # an export without dates: conversion only (see estimate.undated)
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

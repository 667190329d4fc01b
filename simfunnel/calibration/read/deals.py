"""The deals table joined onto the leads: opportunity, won and lost dates, amount, owner."""

from __future__ import annotations

from typing import Any

import pandas as pd

from simfunnel.calibration.read.cells import _flags, _numbers, _parse_dates, _text
from simfunnel.calibration.read.checks import (
    missing_column,
    require_columns,
    settle_outcomes,
)
from simfunnel.calibration.read.files import Table
from simfunnel.calibration.read.mapping import (
    Mapping,
    resolve,
)
from simfunnel.calibration.read.problems import ReadReport, _Problems
from simfunnel.errors import CalibrationError


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

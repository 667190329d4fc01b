"""A calibration's evidence: the estimates table's defaults and fitted rows, the provenance.

What :class:`~simfunnel.calibration.pipeline.Calibration` records beside its scenario:
the rows of the fields left at their domain defaults, the simulation-fitted parameters
with their comments, and the scenario's ``provenance:`` block.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from simfunnel.assumptions import cite
from simfunnel.parameters import FieldProvenance, leaf_paths

if TYPE_CHECKING:
    from simfunnel.calibration.pipeline import Calibration
    from simfunnel.parameters import Scenario


#: Scenario fields a calibration may set, per source and for the whole funnel; those the
#: data did not inform are listed in the estimates as domain defaults.
SOURCE_FIELDS: tuple[str, ...] = (
    "leads_per_week",
    "cost_per_lead_usd",
    "quality.ready",
    "opportunity_probability",
    "win_probability",
    "days_to_close",
    "deal_size.mean_usd",
    "deal_size.sigma",
    "monthly_churn",
)
GLOBAL_FIELDS: tuple[str, ...] = (
    "team.reps",
    "process.contact_probability",
    "process.decay.tau_minutes",
    "process.decay.floor",
    "process.routing.score_auc",
)


def _value(node: Any, path: str) -> Any:
    for part in path.split("."):
        node = getattr(node, part)
    return node


def default_rows(scenario: Scenario, table: pd.DataFrame) -> pd.DataFrame:
    """Rows (``from_data`` False) for the fields the data left at their domain defaults."""
    have = set(zip(table["field"], table["source"], strict=True))
    process = scenario.process
    rows = []

    def add(field_name: str, source: str, value: Any) -> None:
        rows.append(
            {
                "field": field_name,
                "source": source,
                "estimate": float(value),
                "low": float("nan"),
                "high": float("nan"),
                "n": 0,
                "method": "default (docs/assumptions.md), not in the data",
                "from_data": False,
            }
        )

    for src in scenario.sources:
        for name in SOURCE_FIELDS:
            if (name, src.name) in have:
                continue
            value = _value(src, name)
            if value is None:  # a per-source override left unset: the process's value
                value = _value(process, name)
            add(name, src.name, value)
    for name in GLOBAL_FIELDS:
        short = name.removeprefix("process.")
        if (name, "all") in have or (short, "all") in have:
            continue
        add(name, "all", _value(scenario, name))
    return pd.DataFrame(rows, columns=table.columns)


def record_provenance(result: Calibration) -> None:
    """The scenario's ``provenance:`` block: where each field it writes came from."""
    from simfunnel.calibration.scenario_file import written_fields

    written = written_fields(result.scenario, result.fitted_paths, result.built)
    block = field_provenance(written, result.comments, result.estimates, result.fitted_paths)
    result.scenario = result.scenario.model_copy(update={"provenance": block})


def add_defaults(result: Calibration) -> None:
    """Rows for the fields left at their domain defaults."""
    defaults_table = default_rows(result.scenario, result.estimates)
    if len(defaults_table):
        result.estimates = pd.concat([result.estimates, defaults_table], ignore_index=True)


def add_fitted(result: Calibration, params: pd.DataFrame) -> None:
    """Put the simulation-fitted parameters into the estimates table and the comments."""
    rows = []
    for p in params.itertuples(index=False):
        source = str(p.source)
        field_path = str(p.parameter)
        n = (
            int(result.frame.shape[0])
            if source == "all"
            else int((result.frame["source"] == source).sum())
        )
        identified = bool(getattr(p, "identified", True))
        note = str(getattr(p, "note", "") or "")
        method = f"{p.method} ({getattr(p, 'moments', '')})".replace(" ()", "")
        if identified and note:  # at a bound of the search
            method += f"; {note}"
        rows.append(
            {
                "field": field_path,
                "source": source,
                "estimate": float(p.estimate),
                "low": float(p.low),
                "high": float(p.high),
                "n": n,
                "method": method,
                "from_data": identified,
            }
        )
        if source == "all":
            path = field_path if "." in field_path else f"process.{field_path}"
        else:
            path = f"sources.{source}.{field_path}"
        if not identified:
            result.comments[path] = f"domain default {p.estimate:.4g}; {p.method}"
            continue
        entry = getattr(p, "entry_stage", None)
        if isinstance(entry, str):
            result.fitted_paths.append(f"sources.{source}.entry_stage")
            result.comments[f"sources.{source}.entry_stage"] = str(p.method)
        result.fitted_paths.append(path.removesuffix(".ready"))
        if path == "process.contact_probability":
            result.fitted_paths.append("process.retry_contact_probability")
        result.comments[path] = (
            f"estimate {p.estimate:.4g} (95% {p.low:.4g} to {p.high:.4g}), {n} rows; {method}"
        )
    if rows:
        result.estimates = pd.concat([result.estimates, pd.DataFrame(rows)], ignore_index=True)
        fitted = {(str(r["source"]), str(r["field"])) for r in rows if r["from_data"]}
        kept = [without_fitted(d, fitted) for d in result.defaults]
        # the fit ran: neither "fitted by simulation" nor "the fit ... was skipped" (the
        # command builds the scenario before it fits) stays among the defaults
        result.defaults = [d for d in kept if d and "by simulation" not in d] + [
            "the parts of the quality mix and stage chances not fitted above"
        ]


def without_fitted(line: str, fitted: set[tuple[str, str]]) -> str:
    """A defaults line ``sources.{a, b}.field (why)`` less the sources fitted since ('' if none)."""
    if not line.startswith("sources.{"):
        return line
    names, _, rest = line.removeprefix("sources.{").partition("}.")
    field_name = rest.split(" ", 1)[0]
    left = [n for n in names.split(", ") if (n, field_name) not in fitted]
    if not left:
        return ""
    return "sources.{" + ", ".join(left) + "}." + rest


def estimate_path(field: str, source: str) -> str:
    """The scenario path of an estimates row: ``sources.web.x``, ``team.reps``, ``process.x``."""
    if source == "all":
        return field if "." in field else f"process.{field}"
    return f"sources.{source}.{field}"


def field_provenance(
    written: dict[str, Any],
    comments: dict[str, str],
    estimates: pd.DataFrame,
    fitted: list[str],
) -> dict[str, FieldProvenance]:
    """Each written field's origin, with the estimate's interval and what it rests on.

    ``fit`` for a field under ``fitted``, ``data`` for one a calibrated comment explains,
    ``default`` for the rest (the $198 cost per lead, a not-identified fit).
    """
    intervals: dict[str, tuple[float, float]] = {}
    for row in estimates.itertuples(index=False):
        low, high = float(row.low), float(row.high)
        if math.isfinite(low) and math.isfinite(high):
            intervals[estimate_path(str(row.field), str(row.source))] = (
                _round4(low),
                _round4(high),
            )
    out: dict[str, FieldProvenance] = {}
    for path in leaf_paths(written):
        if path.rsplit(".", 1)[-1] in ("name", "description"):
            continue
        group = next((f for f in fitted if path == f or path.startswith(f"{f}.")), None)
        note = comments.get(path) or (comments.get(group) if group else None)
        interval = intervals.get(path)
        if group is not None:
            out[path] = FieldProvenance(origin="fit", interval=interval, source=note)
        elif note is not None and not note.startswith("domain default"):
            out[path] = FieldProvenance(origin="data", interval=interval, source=note)
        else:
            out[path] = FieldProvenance(origin="default", source=cite(path))
    return out


def _round4(value: float) -> float:
    """As the scenario file rounds a value (:func:`simfunnel.calibration.scenario._round`)."""
    from simfunnel.calibration.scenario import _round

    return _round(value)

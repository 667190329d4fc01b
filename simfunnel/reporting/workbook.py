"""Spreadsheets of the headline tables, because strategists live in spreadsheets.

Every sheet has human column headings, a number format per kind of quantity (the
same as the command line's, see :mod:`simfunnel.formatting`), frozen headings and
an ``About`` sheet naming what produced it. Written with openpyxl.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simfunnel.formatting import (
    EXCEL_FORMATS,
    kpi_kind,
    kpi_label,
    parameter_kind,
    parameter_label,
)
from simfunnel.version import __version__


@dataclass(frozen=True)
class Cell:
    """A value with its spreadsheet number format."""

    value: Any
    kind: str = "number"


@dataclass
class Sheet:
    """One worksheet: a heading row and rows of plain values or :class:`Cell`."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: an empty cell
        return None
    if isinstance(value, dict | list | tuple):
        return json.dumps(value)
    return value


def write_workbook(sheets: Sequence[Sheet], path: str | Path) -> Path:
    """Write sheets to an .xlsx file (replacing it) and return its path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        first = 1
        if sheet.note:
            ws.cell(row=1, column=1, value=sheet.note).font = Font(italic=True)
            first = 3
        widths = [len(h) for h in sheet.headers]
        for j, header in enumerate(sheet.headers, start=1):
            ws.cell(row=first, column=j, value=header).font = Font(bold=True)
        for i, row in enumerate(sheet.rows, start=first + 1):
            for j, item in enumerate(row, start=1):
                kind = item.kind if isinstance(item, Cell) else None
                value = _plain(item.value if isinstance(item, Cell) else item)
                cell = ws.cell(row=i, column=j, value=value)
                if kind and isinstance(value, int | float) and not isinstance(value, bool):
                    cell.number_format = EXCEL_FORMATS.get(kind, EXCEL_FORMATS["number"])
                widths[j - 1] = max(widths[j - 1], min(60, len(str(value or "")) + 2))
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = max(10, width + 2)
        ws.freeze_panes = ws.cell(row=first + 1, column=1)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    return target


def about_sheet(facts: Mapping[str, Any]) -> Sheet:
    """What produced the workbook: the given facts, simfunnel's version and the date."""
    rows = [[key, _plain(value)] for key, value in facts.items()]
    rows += [
        ["simfunnel version", __version__],
        ["written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")],
    ]
    return Sheet("About", ["", "value"], rows)


_COMPARISON_HEADERS = [
    "KPI",
    "strategy",
    "mean",
    "95% CI low",
    "95% CI high",
    "difference vs baseline",
    "difference 95% CI low",
    "difference 95% CI high",
    "change vs baseline",
    "change 95% CI low",
    "change 95% CI high",
    "significant",
]


def _comparison_row(kpi: str, label: str, baseline: str, values: Mapping[str, Any]) -> list[Any]:
    kind = kpi_kind(kpi)
    row: list[Any] = [kpi_label(kpi), label]
    row += [Cell(values.get(k), kind) for k in ("mean", "ci_low", "ci_high")]
    if label == baseline:
        return row + ["baseline"] + [""] * 6
    row += [Cell(values.get(k), kind) for k in ("diff", "diff_low", "diff_high")]
    row += [Cell(values.get(k), "change") for k in ("rel_change", "rel_low", "rel_high")]
    return [*row, "yes" if values.get("significant") else "no"]


_SIGNIFICANCE = (
    "Means with 95% t intervals; the difference against the baseline with a paired t "
    "interval; the change with a paired interval of the ratio of means. 'significant': "
    "the change's interval excludes 0."
)


def comparison_sheets(table: Any, about: Mapping[str, Any]) -> list[Sheet]:
    """Sheets of a :meth:`~simfunnel.Comparison.table` and what produced it."""
    baseline = str(about["baseline"])
    sheet = Sheet("Comparison", list(_COMPARISON_HEADERS), note=_SIGNIFICANCE)
    for (kpi, label), row in table.iterrows():
        sheet.rows.append(_comparison_row(str(kpi), str(label), baseline, row.to_dict()))
    return [sheet, about_sheet(about)]


_SENSITIVITY_HEADERS = {
    "S1": "first-order Sobol index",
    "S1_conf": "first-order ± (95%)",
    "ST": "total-order Sobol index",
    "ST_conf": "total-order ± (95%)",
    "mu_star": "Morris mu* (KPI units)",
    "mu_star_conf": "mu* ± (95%)",
    "sigma": "Morris sigma (KPI units)",
    "spearman": "Spearman rank correlation",
    "p_value": "p-value",
}


def _sensitivity_header(column: str) -> str:
    return _SENSITIVITY_HEADERS.get(column, column.replace("_", " "))


def sweep_sheets(sensitivity: Any, best: Any, params: Sequence[str]) -> list[Sheet]:
    """Sheets of a sweep's sensitivity table and best points."""
    sens = Sheet("Sensitivity", ["KPI", "parameter"])
    numeric = [c for c in sensitivity.columns if c not in ("kpi", "parameter")]
    sens.headers += [_sensitivity_header(c) for c in numeric]
    for _, r in sensitivity.iterrows():
        sens.rows.append(
            [kpi_label(r["kpi"]), parameter_label(r["parameter"])]
            + [Cell(r[c], "number") for c in numeric]
        )
    return [sens, points_sheet("Best points", best.reset_index(), params)]


def points_sheet(title: str, frame: Any, params: Sequence[str]) -> Sheet:
    """Sweep points (``point``, parameters, KPI means) with labels and formats."""
    records = frame.to_dict(orient="records") if hasattr(frame, "to_dict") else list(frame)
    return _records_sheet(title, records, params)


def _records_sheet(
    title: str, records: Iterable[Mapping[str, Any]], params: Sequence[str]
) -> Sheet:
    records = list(records)
    keys = list(dict.fromkeys(k for r in records for k in r))
    headers, kinds = [], []
    for key in keys:
        if key in params:
            headers.append(parameter_label(key))
            kinds.append(parameter_kind(key))
        elif key.endswith(("_ci_low", "_ci_high")) and key.rsplit("_ci_", 1)[0] in keys:
            base, end = key.rsplit("_ci_", 1)
            headers.append(f"{kpi_label(base)} 95% CI {end}")
            kinds.append(kpi_kind(base))
        elif key.endswith("_sem") and key[:-4] in keys:
            headers.append(f"{kpi_label(key[:-4])}: standard error")
            kinds.append(kpi_kind(key[:-4]))
        elif key == "n_ok":
            headers.append("replications")
            kinds.append("number")
        elif key == "point":
            headers.append("point")
            kinds.append("number")
        else:
            headers.append(kpi_label(key))
            kinds.append(kpi_kind(key))
    sheet = Sheet(title, headers)
    for r in records:
        sheet.rows.append([Cell(r.get(k), kind) for k, kind in zip(keys, kinds, strict=True)])
    return sheet


def _with_intervals(record: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep point with each KPI's 95% interval after its standard error (from ``n_ok``)."""
    from simfunnel.reporting.headline import point_interval

    out: dict[str, Any] = {}
    for key, value in record.items():
        out[key] = value
        base = key.removesuffix("_sem")
        if key.endswith("_sem") and base in record and "n_ok" in record:
            try:
                low, high = point_interval(record, base)
            except (TypeError, ValueError):
                continue
            out[f"{base}_ci_low"], out[f"{base}_ci_high"] = low, high
    return out


def headline_sheets(headline: Mapping[str, Any], facts: Mapping[str, Any]) -> list[Sheet]:
    """Sheets of a report's headline numbers (as its notebook wrote them).

    The page's answer first (``Decision``), then its tables, then ``About`` (see
    :mod:`simfunnel.reporting.report_sheets`).
    """
    from simfunnel.reporting import report_sheets

    kind = headline.get("kind")
    sheets: list[Sheet] = []
    if report_sheets.decision_text(headline):
        sheets.append(report_sheets.decision_sheet(headline))
    if kind == "volume_vs_quality":
        sheets += report_sheets.by_level_sheets(headline)
        baseline = str(headline.get("baseline", ""))
        note = _SIGNIFICANCE
        if headline.get("own_level") is not None:
            note = f"At the scenarios' own team ({headline['own_level']}). {note}"
        sheet = Sheet("Comparison", list(_COMPARISON_HEADERS), note=note)
        differences = headline.get("differences", {})
        for name, kpis in headline.get("scenarios", {}).items():
            for kpi, values in kpis.items():
                merged = {**values, **differences.get(name, {}).get(kpi, {})}
                sheet.rows.append(_comparison_row(kpi, name, baseline, merged))
        sheet.rows.sort(key=lambda r: str(r[0]))
        sheets.append(sheet)
    elif kind == "budget_mix":
        sheets += report_sheets.budget_mix_sheets(headline)
    elif kind == "calibration":
        sheets += report_sheets.calibration_sheets(headline)
    elif kind == "scenario":
        sheet = Sheet("KPIs", ["KPI", "mean", "95% CI low", "95% CI high"])
        for kpi, values in headline.get("kpis", {}).items():
            k = kpi_kind(kpi)
            sheet.rows.append(
                [kpi_label(kpi)] + [Cell(values.get(x), k) for x in ("mean", "ci_low", "ci_high")]
            )
        sheets.append(sheet)
    elif kind == "parameter_sweep":
        params = [p["path"] for p in headline.get("spec", {}).get("parameters", [])]
        for title, key in (("Best points", "best"), ("Pareto front", "pareto_front")):
            records = [_with_intervals(r) for r in headline.get(key, [])]
            sheets.append(_records_sheet(title, records, params))
        sens = headline.get("sensitivity", [])
        numeric = [k for k in (sens[0] if sens else {}) if k not in ("kpi", "parameter")]
        sheet = Sheet("Sensitivity", ["KPI", "parameter", *map(_sensitivity_header, numeric)])
        for r in sens:
            sheet.rows.append(
                [kpi_label(r["kpi"]), parameter_label(r["parameter"])]
                + [Cell(r.get(c), "number") for c in numeric]
            )
        sheets.append(sheet)
    summary = headline.get("summary", {})
    if summary and len(sheets) <= 1:
        sheets.append(Sheet("Summary", ["", "value"], [[k, v] for k, v in summary.items()]))
    return [*sheets, about_sheet(report_sheets.about_facts(headline, facts))]


def across_sheets(
    table: Any,
    parameter: str,
    baseline: str,
    about: Mapping[str, Any],
    verdicts: Mapping[str, str] | None = None,
) -> list[Sheet]:
    """Sheets of an :meth:`~simfunnel.AcrossComparison.table`: one comparison per level.

    The first column is the varied parameter's value (``parameter``, e.g. ``team.reps``);
    the verdicts (where the answer changes) head the sheet.
    """
    level_kind = parameter_kind(parameter)
    note = " ".join([*(verdicts or {}).values(), _SIGNIFICANCE])
    sheet = Sheet(
        "Comparison by level", [parameter_label(parameter), *_COMPARISON_HEADERS], note=note
    )
    for (level, kpi, label), row in table.iterrows():
        values = row.to_dict()
        sheet.rows.append(
            [Cell(level, level_kind), *_comparison_row(str(kpi), str(label), baseline, values)]
        )
    return [sheet, about_sheet({**about, "varied": parameter})]

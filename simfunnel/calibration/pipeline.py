"""``simfunnel.calibrate``: a CRM export in, a calibrated scenario and its evidence out.

>>> import simfunnel
>>> cal = simfunnel.calibrate("leads.csv", mapping="hubspot")  # doctest: +SKIP
>>> cal.scenario.sources[0].leads_per_week  # doctest: +SKIP
>>> cal.estimates  # tidy: field, source, estimate, low, high, n, method, from_data
>>> cal.write("my_scenario.yaml")  # doctest: +SKIP

Reading and checking (:mod:`~simfunnel.calibration.read`), direct estimates
(:mod:`~simfunnel.calibration.estimate`) and the scenario (:mod:`~simfunnel.calibration.
writer`) happen here; the simulation-based fit, the fit check and the back-test live in
:mod:`simfunnel.calibration.fit` and are reached through :class:`Calibration`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simfunnel.calibration import history
from simfunnel.calibration.checks import tidy_estimates
from simfunnel.calibration.limits import (
    DEFAULT_MAX_CELL_CHARS,
    DEFAULT_MAX_COLUMNS,
    DEFAULT_MAX_ROWS,
    DEFAULT_MAX_XLSX_MB,
    ReadLimits,
)
from simfunnel.calibration.mapping import Mapping, as_mapping
from simfunnel.calibration.read import MAX_BAD_SHARE, ReadReport, Table, lead_frame, read_table
from simfunnel.errors import CalibrationError

if TYPE_CHECKING:
    from simfunnel.parameters import Scenario

# scipy (the estimates) and the scenario schema are imported once the data has been
# read and checked, so that bad input is refused without waiting for them.

#: Sources with fewer leads than this are pooled into ``other``.
MIN_LEADS_PER_SOURCE = 30


@dataclass
class Calibration:
    """A calibrated scenario with the estimates and data behind it.

    Attributes
    ----------
    scenario
        The validated scenario (direct estimates over the domain defaults; refined by
        the simulation-based fit when it ran).
    estimates
        Tidy table: ``field, source, estimate, low, high, n, method, from_data``.
    observed
        Observed stage rates per source (``source, stage, leads, reached, rate, low,
        high, leads_per_week``), what the simulation-based fit reproduces.
    frame
        The canonical lead frame the estimates came from.
    report
        What reading did (files, encoding, mapping, rows skipped).
    pooled
        Source names pooled into ``other``.
    """

    scenario: Scenario
    estimates: pd.DataFrame
    observed: pd.DataFrame
    frame: pd.DataFrame
    report: ReadReport
    pooled: list[str] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)
    defaults: list[str] = field(default_factory=list)
    fit: Any = None
    fitted_paths: list[str] = field(default_factory=list)
    built: Scenario | None = None

    def summary_lines(self) -> list[str]:
        """What was read and estimated, one fact a line."""
        lines = self.report.lines()
        if self.pooled:
            pooled = int(self.frame["source"].eq("other").sum())
            count = f"{len(self.pooled)} source{'s' if len(self.pooled) > 1 else ''}"
            lines.append(
                f"pooled into 'other' (fewer than {MIN_LEADS_PER_SOURCE} leads each): "
                f"{count} ({pooled} leads in 'other' now): {self._pooled_names()}"
            )
        lines.append(f"{len(self.fields_from_data)} scenario fields from the data")
        return lines

    def _pooled_names(self, shown: int = 10) -> str:
        """The sources pooled into ``other``: the first ``shown`` and how many more."""
        more = len(self.pooled) - shown
        return ", ".join(self.pooled[:shown]) + (f", ... ({more} more)" if more > 0 else "")

    @property
    def fields_from_data(self) -> list[str]:
        """Scenario fields set from the data (not those left at a domain default)."""
        return sorted(k for k, v in self.comments.items() if not v.startswith("domain default"))

    def fit_lines(self) -> list[str]:
        """The fitted parameters the data cannot move, or that sit at a bound, one a line."""
        if self.fit is None:
            return []
        return list(self._fit_module().flag_lines(self.fit))

    def refine(self, **fit_options: Any) -> Calibration:
        """Fit what the export does not show by simulation (``fit.fit_by_simulation``).

        What :func:`calibrate` does when ``simulate`` is true; apart, so that a caller
        can report what was read before the fit starts. Returns ``self``.
        """
        if self.fit is not None:
            raise CalibrationError("refine: the simulation-based fit has already run")
        fitted, params = self._fit_module().fit_by_simulation(
            self.scenario, self.observed, **fit_options
        )
        self.fit = params
        self.scenario = fitted
        self.estimates = self.estimates[self.estimates["from_data"].astype(bool)]
        _add_fitted(self, tidy_estimates(params, field="parameter"))
        _add_defaults(self)
        return self

    def to_yaml(self) -> str:
        """The scenario as commented YAML, each calibrated field with its evidence."""
        from simfunnel.calibration.writer import scenario_yaml

        header = [f"simfunnel calibrate: {line}" for line in self.report.files]
        if self.pooled:
            header.append("pooled into 'other': " + self._pooled_names())
        return scenario_yaml(
            self.scenario,
            self.comments,
            self.defaults,
            header,
            also=self.fitted_paths,
            skeleton=self.built,
        )

    def write(self, path: str | Path) -> Path:
        """Write the scenario YAML to ``path`` (whole, through a temporary file)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(self.to_yaml(), encoding="utf-8")
        tmp.replace(target)
        return target

    def _fit_module(self) -> Any:
        try:
            return importlib.import_module("simfunnel.calibration.fit")
        except ModuleNotFoundError as exc:  # pragma: no cover - until the fit lands
            raise CalibrationError("the simulation-based fit is not available") from exc

    def fit_check(self, **options: Any) -> Any:
        """Observed against simulated stage rates (see ``simfunnel.calibration.fit.fit_check``)."""
        return self._fit_module().fit_check(self.scenario, self.observed, **options)

    def backtest(self, holdout: float = 0.25, **options: Any) -> Any:
        """Calibrate on the first part of the history, simulate the rest, compare."""
        return self._fit_module().backtest(self.frame, holdout=holdout, **options)


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
                "method": "domain default (domain.md), not in the data",
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


def _table(
    value: pd.DataFrame | str | Path | Table, what: str, limits: ReadLimits | None = None
) -> pd.DataFrame | Table:
    if isinstance(value, str | Path):
        return read_table(value, what, limits=limits)
    return value


def export_date(value: str | pd.Timestamp, frame: pd.DataFrame | None = None) -> pd.Timestamp:
    """``value`` as the export's date and time; a plain date is the end of that day.

    See :func:`simfunnel.calibration.history.export_date`.

    Raises
    ------
    CalibrationError
        Not a date, after today, or before the first lead in ``frame``.
    """
    return history.export_date(value, frame)


def calibrate(
    leads: pd.DataFrame | str | Path,
    deals: pd.DataFrame | str | Path | None = None,
    mapping: Mapping | dict[str, Any] | str | Path | None = None,
    *,
    strict: bool = False,
    min_leads: int = MIN_LEADS_PER_SOURCE,
    max_bad_share: float = MAX_BAD_SHARE,
    simulate: bool = True,
    name: str = "calibrated",
    as_of: str | pd.Timestamp | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_cell_chars: int = DEFAULT_MAX_CELL_CHARS,
    max_xlsx_mb: float = DEFAULT_MAX_XLSX_MB,
    **fit_options: Any,
) -> Calibration:
    """Calibrate a scenario from a lead table (and a deals table).

    Parameters
    ----------
    leads, deals
        DataFrames or file paths (CSV, Parquet, .xlsx).
    mapping
        A :class:`~simfunnel.calibration.mapping.Mapping`, a dict in the YAML format, a
        preset name (``hubspot``, ``salesforce``) or a mapping file; None: detected
        from the header (simfunnel's CRM export or a preset).
    strict
        Refuse any bad row instead of skipping a few.
    min_leads
        Sources with fewer leads are pooled into ``other``.
    simulate
        Also fit the parameters that are not observed directly (quality mix, contact
        and qualification chances) by simulation (``fit.fit_by_simulation``).
    as_of
        When the export was made (a plain date: the end of that day). It ends the
        history: leads still open then are censored there, and the back-test's
        held-out window ends there. Default: the last lead created.
    max_rows, max_columns, max_cell_chars, max_xlsx_mb
        Size limits of a file, checked before it is loaded
        (:mod:`~simfunnel.calibration.limits`): rows, columns, characters in one cell,
        and megabytes an ``.xlsx`` unzips to.

    Raises
    ------
    CalibrationError
        Bad input, in one line naming the column, the rows and an example.
    """
    chosen = as_mapping(mapping)
    limits = ReadLimits(max_rows, max_columns, max_cell_chars, max_xlsx_mb)
    frame, report = lead_frame(
        _table(leads, "leads", limits),
        None if deals is None else _table(deals, "deals", limits),
        chosen,
        strict=strict,
        max_bad_share=max_bad_share,
    )
    if as_of is not None:  # what is dated after it has not happened yet
        frame, lines = history.cut_at(frame, export_date(as_of, frame))
        report.notes += lines
        report.rows_kept = len(frame)
    from simfunnel.calibration.estimate import estimates, observed_rates, pool_sources
    from simfunnel.calibration.writer import build_scenario

    frame, pooled = pool_sources(frame, min_leads)
    table, extras = estimates(frame)
    observed = observed_rates(frame)
    table, extras, observed, lines = history.short_history(frame, table, extras, observed)
    report.notes += lines
    table = tidy_estimates(table)
    scenario, comments, defaults = build_scenario(
        table, extras, frame, name=name, simulate=simulate
    )
    result = Calibration(
        scenario=scenario,
        estimates=table,
        observed=observed,
        frame=frame,
        report=report,
        pooled=pooled,
        comments=comments,
        defaults=defaults,
        built=scenario,
    )
    if simulate:
        return result.refine(**fit_options)
    _add_defaults(result)
    return result


def _add_defaults(result: Calibration) -> None:
    """Rows for the fields left at their domain defaults."""
    defaults_table = default_rows(result.scenario, result.estimates)
    if len(defaults_table):
        result.estimates = pd.concat([result.estimates, defaults_table], ignore_index=True)


def _add_fitted(result: Calibration, params: pd.DataFrame) -> None:
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
        kept = [_without_fitted(d, fitted) for d in result.defaults]
        result.defaults = [d for d in kept if d and "fitted by simulation" not in d] + [
            "the parts of the quality mix and stage chances not fitted above"
        ]


def _without_fitted(line: str, fitted: set[tuple[str, str]]) -> str:
    """A defaults line ``sources.{a, b}.field (why)`` less the sources fitted since ('' if none)."""
    if not line.startswith("sources.{"):
        return line
    names, _, rest = line.removeprefix("sources.{").partition("}.")
    field_name = rest.split(" ", 1)[0]
    left = [n for n in names.split(", ") if (n, field_name) not in fitted]
    if not left:
        return ""
    return "sources.{" + ", ".join(left) + "}." + rest

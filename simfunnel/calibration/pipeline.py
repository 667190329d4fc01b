"""``simfunnel.calibrate``: a CRM export in, a calibrated scenario and its evidence out.

>>> import simfunnel
>>> cal = simfunnel.calibrate("leads.csv", mapping="hubspot")  # doctest: +SKIP
>>> cal.scenario.sources[0].leads_per_week  # doctest: +SKIP
>>> cal.estimates  # tidy: field, source, estimate, low, high, n, method, from_data
>>> cal.write("my_scenario.yaml")  # doctest: +SKIP

The one place that runs the steps in order: reading and checking
(:mod:`~simfunnel.calibration.read`), direct estimates
(:mod:`~simfunnel.calibration.estimate`), the scenario
(:mod:`~simfunnel.calibration.scenario`), then the simulation-based fit, the fit check
and the back-test (:mod:`~simfunnel.calibration.fit`), reached through
:class:`Calibration`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simfunnel.calibration.evidence import add_defaults, add_fitted, record_provenance
from simfunnel.calibration.read import (
    MAX_BAD_SHARE,
    ReadReport,
    Table,
    history,
    lead_frame,
    read_table,
)
from simfunnel.calibration.read.checks import tidy_estimates
from simfunnel.calibration.read.limits import (
    DEFAULT_MAX_CELL_CHARS,
    DEFAULT_MAX_COLUMNS,
    DEFAULT_MAX_ROWS,
    DEFAULT_MAX_XLSX_MB,
    ReadLimits,
)
from simfunnel.calibration.read.mapping import Mapping, as_mapping
from simfunnel.errors import CalibrationError

if TYPE_CHECKING:
    from simfunnel.calibration.estimate.recording import RecordingStart
    from simfunnel.calibration.estimate.volume import Volume
    from simfunnel.calibration.fit import Backtest, FitCheck
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
    volumes
        Per source, the volume the scenario was written from: its baseline, trend and
        campaigns (:class:`~simfunnel.calibration.estimate.volume.Volume`).
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
    recording: RecordingStart | None = None
    outcomes_from: pd.Timestamp | None = None
    history: dict[str, Any] | None = None
    volumes: list[Volume] = field(default_factory=list)

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
        if self.recording is not None:
            lines.append(self.recording.line())
        elif self.outcomes_from is not None:
            lines.append(
                f"conversion, timing and value from the leads created since "
                f"{self.outcomes_from:%Y-%m-%d} (as asked), volume from all of them"
            )
        lines += self.volume_lines()
        fitted = " (before any fit by simulation)" if self.fit is None else ""
        lines.append(f"{self.origins()['data']} scenario fields from the data{fitted}")
        return lines

    def volume_lines(self) -> list[str]:
        """Per source with a trend or campaigns of its own: what the scenario carries.

        Without any trend, one line says that the baselines are the history's means.
        """
        lines = [line for v in self.volumes if (line := v.line()) is not None]
        if self.volumes and not any(v.trend is not None for v in self.volumes):
            lines.insert(
                0,
                "volume: no source has a significant trend (95%); each baseline is its "
                "mean over the history",
            )
        return lines

    def _pooled_names(self, shown: int = 10) -> str:
        """The sources pooled into ``other``: the first ``shown`` and how many more."""
        more = len(self.pooled) - shown
        return ", ".join(self.pooled[:shown]) + (f", ... ({more} more)" if more > 0 else "")

    def origins(self) -> dict[str, int]:
        """How many of the scenario's fields come from each origin (its provenance block).

        The counts ``simfunnel explain`` gives: ``data`` (estimated), ``fit`` (fitted by
        simulation) and ``default``; each field once, a list (a profile) as one.
        """
        counts = {"data": 0, "fit": 0, "default": 0, "file": 0}
        for entry in self.scenario.provenance.values():
            counts[entry.origin] = counts.get(entry.origin, 0) + 1
        return counts

    @property
    def fields_from_data(self) -> list[str]:
        """Scenario fields set from the data (not those left at a domain default)."""
        return sorted(k for k, v in self.comments.items() if not v.startswith("domain default"))

    def fit_lines(self) -> list[str]:
        """The fitted parameters the data cannot move, or that sit at a bound, one a line."""
        if self.fit is None:
            return []
        from simfunnel.calibration.fit import flag_lines

        return list(flag_lines(self.fit))

    def refine(self, **fit_options: Any) -> Calibration:
        """Fit what the export does not show by simulation (``fit.fit_by_simulation``).

        What :func:`calibrate` does when ``simulate`` is true; apart, so that a caller
        can report what was read before the fit starts. Returns ``self``.
        """
        if self.fit is not None:
            raise CalibrationError("refine: the simulation-based fit has already run")
        fit_options.setdefault("history", self.history)
        from simfunnel.calibration.fit import fit_by_simulation

        fitted, params = fit_by_simulation(self.scenario, self.observed, **fit_options)
        self.fit = params
        self.scenario = fitted
        self.estimates = self.estimates[self.estimates["from_data"].astype(bool)]
        add_fitted(self, tidy_estimates(params, field="parameter"))
        add_defaults(self)
        record_provenance(self)
        return self

    def to_yaml(self) -> str:
        """The scenario as commented YAML, each calibrated field with its evidence."""
        from simfunnel.calibration.scenario_file import scenario_yaml

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

    def fit_check(self, **options: Any) -> FitCheck:
        """Observed against simulated stage rates (:func:`~simfunnel.calibration.fit.fit_check`)."""
        from simfunnel.calibration.fit import fit_check

        options.setdefault("history", self.history)
        return fit_check(self.scenario, self.observed, **options)

    def backtest(self, holdout: float = 0.25, **options: Any) -> Backtest:
        """Calibrate on the first part of the history, simulate the rest, compare."""
        from simfunnel.calibration.estimate.undated import is_undated

        if is_undated(self.frame):
            raise CalibrationError(
                "back-test: the export has no creation dates, so no part of its history "
                "can be held out"
            )
        from simfunnel.calibration.fit import backtest

        return backtest(self.frame, holdout=holdout, **options)


def _table(
    value: pd.DataFrame | str | Path | Table, what: str, limits: ReadLimits | None = None
) -> pd.DataFrame | Table:
    if isinstance(value, str | Path):
        return read_table(value, what, limits=limits)
    return value


def export_date(value: str | pd.Timestamp, frame: pd.DataFrame | None = None) -> pd.Timestamp:
    """``value`` as the export's date and time; a plain date is the end of that day.

    See :func:`simfunnel.calibration.read.history.export_date`.

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
    outcomes_from: str | pd.Timestamp | None = "auto",
    period: str | tuple[Any, Any] | None = None,
    leads_per_week: dict[str, float] | list[str] | None = None,
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
        A :class:`~simfunnel.calibration.read.mapping.Mapping`, a dict in the YAML format, a
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
    outcomes_from
        The first creation date whose leads' outcomes were recorded: conversion,
        timing and value are estimated from the leads created since, volume from all.
        ``"auto"`` (default): detected (:func:`~simfunnel.calibration.estimate.recording.
        outcome_recording_start`), else every lead; ``"all"`` or None: every lead; a
        date: from that date.
    period, leads_per_week
        For an export without creation dates only: the period it covers
        (``"2019-01-01..2019-12-31"``; the leads are spread evenly over it), or each
        source's volume (``{"web": 40}`` or ``["web=40"]``). Without either such an
        export raises :class:`~simfunnel.calibration.estimate.undated.UndatedExport`, which
        carries the conversion by source and the score's AUC.
    max_rows, max_columns, max_cell_chars, max_xlsx_mb
        Size limits of a file, checked before it is loaded
        (:mod:`~simfunnel.calibration.read.limits`): rows, columns, characters in one cell,
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
    if as_of is not None and frame["created_at"].isna().all():
        raise CalibrationError(
            "as_of: the export has no creation dates, so there is no history to end; "
            "give the period it covers (period, or each source's leads_per_week)"
        )
    if as_of is not None:  # what is dated after it has not happened yet
        frame, lines = history.cut_at(frame, export_date(as_of, frame))
        report.notes += lines
        report.rows_kept = len(frame)
    from simfunnel.calibration.estimate.censoring import observed_rates
    from simfunnel.calibration.estimate.intervals import pool_sources
    from simfunnel.calibration.estimate.recording import since
    from simfunnel.calibration.estimate.staffing import size_team
    from simfunnel.calibration.estimate.table import estimates
    from simfunnel.calibration.estimate.undated import (
        even_volume,
        is_undated,
        parse_leads_per_week,
        undated_volume,
        with_volume,
    )
    from simfunnel.calibration.scenario import build_scenario, history_window

    frame, pooled = pool_sources(frame, min_leads)
    if is_undated(frame):
        recording, start = None, None
        outcomes = frame
        timed = undated_volume(frame, report, period, leads_per_week)
    else:
        if period is not None or leads_per_week is not None:
            raise CalibrationError(
                "period, leads_per_week: only for an export without creation dates; this "
                "one has them, and its volume comes from them"
            )
        recording, start = _recording(frame, outcomes_from)
        outcomes = since(frame, start)
        timed = frame
    table, extras = estimates(timed, outcomes)
    if timed is not frame:
        table, extras = even_volume(table, extras, period, leads_per_week)
    observed = observed_rates(outcomes)
    if timed is not frame or start is not None:
        observed = with_volume(observed, observed_rates(timed))
    table, extras, observed, lines = history.short_history(timed, table, extras, observed)
    report.notes += lines
    table = tidy_estimates(table)
    scenario, comments, defaults = build_scenario(
        table, extras, timed, name=name, simulate=simulate
    )
    if timed is not frame:
        for key in [k for k in comments if k.endswith("_profile")]:
            comments[key] = "flat: the export has no creation dates"
        comments["run.horizon_days"] = "the period of the volume given (no creation dates)"
        for given in parse_leads_per_week(leads_per_week or {}):
            comments[f"sources.{given}.leads_per_week"] = (
                "given (leads_per_week): the export has no creation dates"
            )
    if "team.reps" not in comments:  # no owner column: a team that is not the bottleneck
        scenario = size_team(scenario, comments, defaults, report.notes)
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
        recording=recording,
        outcomes_from=start,
        history=history_window(timed),
        volumes=[extras[name]["volume"] for name in sorted(extras) if "volume" in extras[name]],
    )
    if simulate:
        return result.refine(**fit_options)
    add_defaults(result)
    record_provenance(result)
    return result


def _recording(
    frame: pd.DataFrame, outcomes_from: str | pd.Timestamp | None
) -> tuple[RecordingStart | None, pd.Timestamp | None]:
    """The detected start of outcome recording, and the start used (None: every lead)."""
    if outcomes_from is None or (isinstance(outcomes_from, str) and outcomes_from == "all"):
        return None, None
    if isinstance(outcomes_from, str) and outcomes_from == "auto":
        from simfunnel.calibration.estimate.recording import outcome_recording_start

        found = outcome_recording_start(frame)
        return found, None if found is None else found.start
    try:
        start = pd.Timestamp(outcomes_from)
    except (ValueError, TypeError):
        start = pd.NaT
    if pd.isna(start):
        raise CalibrationError(
            f"outcomes_from: expected auto, all or a date YYYY-MM-DD, got {outcomes_from!r}"
        )
    created = pd.to_datetime(frame["created_at"])
    if int((created >= start).sum()) == 0:
        raise CalibrationError(
            f"outcomes_from {start:%Y-%m-%d}: no lead was created on or after it "
            f"(the leads run from {created.min():%Y-%m-%d} to {created.max():%Y-%m-%d})"
        )
    return None, pd.Timestamp(start)

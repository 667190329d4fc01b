"""A calibration's results on disk: what ``simfunnel calibrate`` computed, for its report.

The command line calibrates, checks the fit and back-tests once, saves all of it here,
and the calibration report reads it back: the page shows the numbers the command
printed, never a second calibration with other runs.

A results folder holds ``calibration.json`` (what was read, the comments, the verdicts,
the format version), the scenario as written (``scenario.yaml``) and before the fit
(``built.json``), and one Parquet file per table (``frame``, ``estimates``,
``observed``, ``fit``, ``check``, ``backtest``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simfunnel.errors import CalibrationError

if TYPE_CHECKING:
    from simfunnel.calibration.fit import Backtest, FitCheck
    from simfunnel.calibration.pipeline import Calibration

#: Runs behind the fit check's simulated intervals, for the command line and the report.
CHECK_REPLICATIONS = 6
#: Share of the history the report's back-test holds out when none is given.
DEFAULT_HOLDOUT = 0.25

#: Version of the folder's layout; a folder of another version is refused in one line.
FORMAT = 1
_INDEX = "calibration.json"


def _write_table(table: pd.DataFrame, path: Path) -> None:
    plain = table.copy(deep=False)
    plain.attrs = {}
    try:
        plain.to_parquet(path, index=False)
    except (TypeError, ValueError, ArithmeticError):  # mixed object columns: as text
        objects = plain.select_dtypes("object").columns
        plain[objects] = plain[objects].astype("string")
        plain.to_parquet(path, index=False)


def _stamp(value: pd.Timestamp | None) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def save_results(
    cal: Calibration,
    folder: str | Path,
    check: FitCheck | None = None,
    backtest: Backtest | None = None,
) -> Path:
    """Save ``cal`` (and its fit check and back-test) into ``folder``; returns the folder."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pd.DataFrame | None] = {
        "frame": cal.frame,
        "estimates": cal.estimates,
        "observed": cal.observed,
        "fit": cal.fit,
        "check": None if check is None else check.table,
        "backtest": None if backtest is None else backtest.table,
    }
    for name, table in tables.items():
        if table is not None:
            _write_table(table, out / f"{name}.parquet")
    (out / "scenario.yaml").write_text(cal.to_yaml(), encoding="utf-8")
    built = cal.built if cal.built is not None else cal.scenario
    (out / "built.json").write_text(built.model_dump_json(), encoding="utf-8")
    recording = None
    if cal.recording is not None:
        recording = {k: str(v) for k, v in asdict(cal.recording).items()}
    index: dict[str, Any] = {
        "format": FORMAT,
        "report": asdict(cal.report),
        "as_of": cal.frame.attrs.get("as_of"),
        "pooled": cal.pooled,
        "comments": cal.comments,
        "defaults": cal.defaults,
        "fitted_paths": cal.fitted_paths,
        "outcomes_from": _stamp(cal.outcomes_from),
        "recording": recording,
        "volumes": [asdict(v) for v in cal.volumes],
        "history": cal.history,
        "tables": [name for name, table in tables.items() if table is not None],
        "check": None if check is None else {"verdict": check.verdict},
        "backtest": None
        if backtest is None
        else {
            "verdict": backtest.verdict,
            "cutoff": _stamp(backtest.cutoff),
            "end": _stamp(backtest.end),
            "scenario": backtest.scenario.model_dump(mode="json"),
        },
    }
    tmp = out / f".{_INDEX}.tmp"
    tmp.write_text(json.dumps(index, indent=1, default=str), encoding="utf-8")
    tmp.replace(out / _INDEX)  # the index last: a folder with one is complete
    return out


def load_results(folder: str | Path) -> tuple[Calibration, FitCheck | None, Backtest | None]:
    """The calibration, fit check and back-test saved by :func:`save_results`.

    Raises
    ------
    CalibrationError
        Not a results folder, an unfinished one, or one of another format.
    """
    from simfunnel.calibration.estimate.recording import RecordingStart
    from simfunnel.calibration.fit import Backtest, FitCheck
    from simfunnel.calibration.pipeline import Calibration
    from simfunnel.calibration.read import ReadReport
    from simfunnel.parameters import load_scenario

    where = Path(folder)
    path = where / _INDEX
    if not path.is_file():
        raise CalibrationError(
            f"results {folder}: no {_INDEX} (not a calibration results folder, or unfinished)"
        )
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != FORMAT:
        raise CalibrationError(
            f"results {folder}: format {index.get('format')}, this simfunnel reads {FORMAT}; "
            "run simfunnel calibrate again to write it"
        )

    def table(name: str) -> pd.DataFrame | None:
        if name not in index["tables"]:
            return None
        return pd.read_parquet(where / f"{name}.parquet")

    frame = table("frame")
    assert frame is not None
    if index.get("as_of"):
        frame.attrs["as_of"] = index["as_of"]
    recording = None
    if index.get("recording"):
        raw = index["recording"]
        recording = RecordingStart(
            start=pd.Timestamp(raw["start"]),
            first_lead=pd.Timestamp(raw["first_lead"]),
            stage=raw["stage"],
            leads_before=int(raw["leads_before"]),
            rate_before=float(raw["rate_before"]),
            rate_after=float(raw["rate_after"]),
            dated=raw["dated"] == "True",
            stray=int(raw.get("stray", 0)),
        )
    estimates, observed = table("estimates"), table("observed")
    assert estimates is not None and observed is not None
    volumes = [_volume(raw) for raw in index.get("volumes", [])]
    cal = Calibration(
        scenario=load_scenario(where / "scenario.yaml"),
        estimates=estimates,
        observed=observed,
        frame=frame,
        report=ReadReport(**index["report"]),
        pooled=list(index["pooled"]),
        comments=dict(index["comments"]),
        defaults=list(index["defaults"]),
        fit=table("fit"),
        fitted_paths=list(index["fitted_paths"]),
        built=load_scenario(json.loads((where / "built.json").read_text(encoding="utf-8"))),
        recording=recording,
        volumes=volumes,
        history=index.get("history"),
        outcomes_from=None if not index["outcomes_from"] else pd.Timestamp(index["outcomes_from"]),
    )
    check = None
    if index.get("check"):
        check_table = table("check")
        assert check_table is not None
        check = FitCheck(check_table, index["check"]["verdict"])
    back = None
    if index.get("backtest"):
        raw = index["backtest"]
        back_table = table("backtest")
        assert back_table is not None
        back = Backtest(
            back_table,
            pd.Timestamp(raw["cutoff"]),
            pd.Timestamp(raw["end"]),
            load_scenario(raw["scenario"]),
            raw["verdict"],
        )
    return cal, check, back


def _volume(raw: dict[str, Any]) -> Any:
    """A :class:`~simfunnel.calibration.estimate.volume.Volume` from its saved fields."""
    from datetime import date

    from simfunnel.calibration.estimate.volume import Volume
    from simfunnel.calibration.estimate.weekly import Campaign

    def day(value: Any) -> date | None:
        return None if value is None else date.fromisoformat(str(value))

    campaigns = [
        Campaign(**{**c, "start": day(c["start"]), "end": day(c["end"])})
        for c in raw.get("campaigns", [])
    ]
    trend = raw.get("trend")
    return Volume(
        **{
            **raw,
            "reference": day(raw["reference"]),
            "history_start": day(raw.get("history_start")),
            "started": day(raw.get("started")),
            "trend": None if trend is None else tuple(trend),
            "campaigns": campaigns,
        }
    )

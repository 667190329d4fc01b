"""``simfunnel calibrate``: the command behind the CLI's thin wrapper.

Checks the output paths first, then reads, checks and estimates; the scenario file is
written only once all of that has finished, so a bad export leaves nothing behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from simfunnel.calibration.checks import plain_numbers
from simfunnel.calibration.mapping import load_mapping
from simfunnel.calibration.pipeline import calibrate, export_date
from simfunnel.errors import CalibrationError
from simfunnel.textio import check_output_file


def _fit_available() -> bool:
    """Whether the simulation-based fit is installed (found, not yet imported)."""
    return importlib.util.find_spec("simfunnel.calibration.fit") is not None


def _check_args(args: argparse.Namespace) -> None:
    if Path(args.out).suffix.lower() not in {".yaml", ".yml"}:
        raise CalibrationError(f"--out {args.out}: the scenario file name must end in .yaml")
    check_output_file(args.out, "--out")
    if args.holdout is not None and not 0.0 < args.holdout < 1.0:
        raise CalibrationError(f"--holdout: must be between 0 and 1, got {args.holdout:g}")
    if getattr(args, "as_of", None) is not None:
        try:
            export_date(args.as_of)
        except CalibrationError as exc:  # after today is said with the data's range, later
            if "not a date" in str(exc):
                raise CalibrationError(
                    f"--as-of {args.as_of}: not a date (expected YYYY-MM-DD)"
                ) from None
    if args.report is not None:
        folder = Path(args.report)
        if folder.exists() and not folder.is_dir():
            raise CalibrationError(f"--report {args.report}: is a file, not a folder")
        parent = folder.parent if str(folder.parent) else Path(".")
        if not parent.is_dir():
            raise CalibrationError(f"--report {args.report}: no such folder {str(parent)!r}")
        from simfunnel.reporting import report

        if "calibration" not in report.available_notebooks():
            raise CalibrationError("--report: the calibration report notebook is not available")


def say(line: str) -> None:
    """A progress or reading line, on stderr (stdout holds the results); tiny numbers as 0."""
    print(f"calibrate: {plain_numbers(line)}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run ``simfunnel calibrate`` with parsed arguments; returns the exit status."""
    _check_args(args)
    mapping: Any = args.preset
    if args.mapping is not None:
        mapping = load_mapping(args.mapping)
    simulate = bool(args.simulate) and _fit_available()
    as_of = getattr(args, "as_of", None)
    try:
        cal = calibrate(
            args.leads,
            args.deals,
            mapping,
            strict=args.strict,
            simulate=False,  # the fit follows, once what was read has been shown
            name=Path(args.out).stem,
            as_of=as_of,
            max_rows=args.max_rows,
            max_columns=args.max_columns,
            max_cell_chars=args.max_cell_chars,
            max_xlsx_mb=args.max_xlsx_mb,
        )
    except CalibrationError as exc:
        if str(exc).startswith("as_of "):  # name the option as the user typed it
            raise CalibrationError("--as-of " + str(exc).removeprefix("as_of ")) from None
        raise
    for line in cal.summary_lines():
        say(line)
    if args.simulate and not simulate:
        say(
            "the simulation-based fit is not available; quality mix and "
            "contact/qualification chances stay domain defaults"
        )
    if simulate:
        say("fitting the quality mix and the contact chance by simulation...")
        cal.refine(progress=True)
        for line in cal.fit_lines():
            say(line)
    backtest = None
    if args.holdout is not None and args.report is None:
        say(f"back-test on the last {args.holdout:.0%} of the history (a fit, then forecasts)...")
        backtest = cal.backtest(holdout=args.holdout, progress=True)
    cal.write(args.out)
    print(
        f"scenario: {args.out} ({len(cal.scenario.sources)} "
        f"source{'s' if len(cal.scenario.sources) != 1 else ''}, "
        f"{len(cal.fields_from_data)} fields from the data)"
    )
    if backtest is not None:
        print(f"back-test: {plain_numbers(backtest.verdict)}")
    if args.report is not None:
        _report(args, cal)
    return 0


def _report(args: argparse.Namespace, cal: Any) -> None:
    """Run the ``calibration`` report notebook into ``--report`` with what it declares."""
    from simfunnel.reporting import report

    notebooks = report.available_notebooks()
    if "calibration" not in notebooks:
        raise CalibrationError("--report: the calibration report notebook is not available")
    declared = report.notebook_parameters(notebooks["calibration"])

    def where(path: str | None) -> str:
        # a file as an absolute path (the notebook runs elsewhere); a sample by its name
        if not path:
            return ""
        return str(Path(path).resolve()) if Path(path).exists() else path

    given: dict[str, Any] = {
        "leads": where(args.leads),
        "deals": where(args.deals),
        "mapping": str(Path(args.mapping).resolve()) if args.mapping else (args.preset or ""),
        "scenario": str(Path(args.out).resolve()),
        "holdout": args.holdout if args.holdout is not None else 0.25,
        "as_of": getattr(args, "as_of", None) or "",
        # the size limits, for a notebook that declares them (it reads the files again)
        "max_rows": args.max_rows,
        "max_columns": args.max_columns,
        "max_cell_chars": args.max_cell_chars,
        "max_xlsx_mb": args.max_xlsx_mb,
    }
    values = {k: v for k, v in given.items() if k in declared}
    phases = "calibrates again, checks the fit"
    if given["holdout"]:
        phases += f" and back-tests on the last {given['holdout']:.0%}"
    say(f"writing the report into {args.report} (the notebook {phases})...")
    done = report.run_report("calibration", values, args.report, progress={"desc": "report"})
    conclusion = done.headline.get("conclusion")
    if conclusion:
        print(plain_numbers(str(conclusion)))
    print(f"HTML report: {done.html}")

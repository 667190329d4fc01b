"""``simfunnel calibrate``: the CLI side of the command (``simfunnel.cli`` forwards to :func:`run`).

Checks the output paths first, then reads, checks and estimates; the scenario file is
written only once all of that has finished, so a bad export leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from simfunnel.calibration.estimate.undated import UndatedExport, is_undated
from simfunnel.calibration.pipeline import calibrate, export_date
from simfunnel.calibration.read.checks import plain_numbers
from simfunnel.calibration.read.mapping import load_mapping
from simfunnel.calibration.results import CHECK_REPLICATIONS, DEFAULT_HOLDOUT
from simfunnel.errors import CalibrationError
from simfunnel.formatting import wrap_if_terminal as wrap
from simfunnel.textio import check_output_file


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


#: Set by ``--quiet``: no reading lines, no progress bars.
QUIET = {"on": False}


def say(line: str) -> None:
    """A progress or reading line, on stderr (stdout holds the results); tiny numbers as 0."""
    if QUIET["on"]:
        return
    print(
        wrap(f"calibrate: {plain_numbers(line)}", sys.stderr, indent="  "),
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``simfunnel calibrate`` with parsed arguments; returns the exit status."""
    QUIET["on"] = bool(getattr(args, "quiet", False))
    _check_args(args)
    mapping: Any = args.preset
    if args.mapping is not None:
        mapping = load_mapping(args.mapping)
    simulate = bool(args.simulate)
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
            outcomes_from=getattr(args, "outcomes_from", "auto"),
            period=getattr(args, "period", None),
            leads_per_week=getattr(args, "leads_per_week", None),
            max_rows=args.max_rows,
            max_columns=args.max_columns,
            max_cell_chars=args.max_cell_chars,
            max_xlsx_mb=args.max_xlsx_mb,
        )
    except UndatedExport as exc:
        _print_undated(exc.estimates)
        raise CalibrationError(str(exc)) from None
    except CalibrationError as exc:
        if str(exc).startswith("period, leads_per_week:"):
            raise CalibrationError(
                "--period, --leads-per-week" + str(exc).removeprefix("period, leads_per_week")
            ) from None
        for keyword in ("as_of", "outcomes_from", "period", "leads_per_week"):  # as typed
            if str(exc).startswith(keyword + " ") or str(exc).startswith(keyword + ":"):
                flag = "--" + keyword.replace("_", "-")
                raise CalibrationError(flag + str(exc).removeprefix(keyword)) from None
        raise
    for line in cal.summary_lines():
        say(line)
    if simulate:
        say("fitting the quality mix and the contact chance by simulation...")
        cal.refine(progress=not QUIET["on"])
        for line in cal.fit_lines():
            say(line)
    check = None
    if args.report is not None:
        say("checking the fit: the calibrated model against the observed rates...")
        check = cal.fit_check(replications=CHECK_REPLICATIONS)
    holdout = args.holdout
    if holdout is None and args.report is not None:
        holdout = DEFAULT_HOLDOUT
    backtest = None
    if holdout and is_undated(cal.frame):
        say("no back-test: the export has no creation dates, so no part of it can be held out")
    elif holdout:
        say(f"back-test on the last {holdout:.0%} of the history (a fit, then forecasts)...")
        backtest = cal.backtest(holdout=holdout, progress=not QUIET["on"])
    cal.write(args.out)
    print(
        wrap(
            f"scenario: {args.out} ({len(cal.scenario.sources)} "
            f"source{'s' if len(cal.scenario.sources) != 1 else ''}, "
            f"{cal.origins()['data']} fields from the data"
            + (f", {cal.origins()['fit']} fitted by simulation" if cal.fit is not None else "")
            + ")",
            indent="  ",
        )
    )
    if check is not None:
        print(wrap(f"fit check: {check.verdict}", indent="  "))
    if backtest is not None:
        print(wrap(f"back-test: {plain_numbers(backtest.verdict)}", indent="  "))
    if args.report is not None:
        from simfunnel.calibration.results import save_results

        saved = save_results(cal, Path(args.report) / "results", check, backtest)
        _report(args, saved)
    return 0


def _print_undated(table: Any) -> None:
    """What an export without dates tells: conversion by source and the score's AUC."""
    print("from the rows alone (no creation dates):")
    for row in table.itertuples(index=False):
        what = "score AUC" if row.field.endswith("score_auc") else row.field
        what = what.replace("rate.", "lead->").replace("_probability", " chance")
        where = "" if row.source == "all" else f"{row.source}: "
        print(
            f"  {where}{what} {row.estimate:.3g} (95% {row.low:.3g} to {row.high:.3g}), "
            f"{int(row.n)} rows"
        )


def _report(args: argparse.Namespace, results: Path) -> None:
    """Run the ``calibration`` report notebook on the saved ``results`` into ``--report``.

    The notebook reads what this command computed (the calibration, the fit check and
    the back-test) and calibrates nothing again, so the page and the lines printed above
    agree.
    """
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
        "as_of": getattr(args, "as_of", None) or "",
        "results": str(results.resolve()),
        # the size limits, for a notebook that declares them (it reads the files again)
        "max_rows": args.max_rows,
        "max_columns": args.max_columns,
        "max_cell_chars": args.max_cell_chars,
        "max_xlsx_mb": args.max_xlsx_mb,
    }
    values = {k: v for k, v in given.items() if k in declared}
    say(f"writing the report into {args.report} (from the results above)...")
    bar: bool | dict[str, Any] = False if QUIET["on"] else {"desc": "report"}
    done = report.run_report("calibration", values, args.report, progress=bar)
    conclusion = done.headline.get("conclusion")
    if conclusion:
        print(wrap(plain_numbers(str(conclusion))))
    print(f"HTML report: {done.html}")

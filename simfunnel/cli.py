"""The command line: a thin layer over the public API.

Every error simfunnel raises on purpose becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from simfunnel.errors import SimfunnelError
from simfunnel.experiments.backends import BACKENDS, SCHEDULER_ENV
from simfunnel.version import __version__

# Everything heavier (pandas, scipy, SALib, Dask, papermill, even the scenario schema)
# is imported inside the command that needs it, so that ``simfunnel --help`` and
# ``simfunnel list`` answer at once (benchmarks/bench_cli.py measures it).

EXIT_USAGE = 2
#: Exit status after the reader of our output went away (128 + SIGPIPE, as a shell reports).
EXIT_BROKEN_PIPE = 141

EXAMPLES = """\
examples:
  simfunnel list
  simfunnel run quality_heavy --seed 1
  simfunnel explain balanced
  simfunnel compare volume_heavy quality_heavy balanced -n 20
  simfunnel sweep my_sweep.yaml --out results
  simfunnel analyze results --best cac --constraint "burnout_index <= 0.5"
  simfunnel report volume_vs_quality --out reports/vq

'simfunnel COMMAND --help' describes a command's options.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for bad input
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``, or a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {value}")
        return value

    return parse


_seed = _whole_number(0)
_positive = _whole_number(1)


def _add_limit_options(cmd: argparse.ArgumentParser, runs: bool = True) -> None:
    from simfunnel.limits import DEFAULT_MAX_LEADS, DEFAULT_MAX_RUNS

    cmd.add_argument(
        "--max-leads",
        type=_positive,
        default=None,
        metavar="N",
        help=f"refuse a run expected to simulate more leads (default {DEFAULT_MAX_LEADS:,})",
    )
    if runs:
        cmd.add_argument(
            "--max-runs",
            type=_positive,
            default=None,
            metavar="N",
            help=f"refuse more runs than this in all (default {DEFAULT_MAX_RUNS:,})",
        )


def _overrides(assignments: Sequence[str] | None) -> dict[str, Any]:
    from simfunnel.parameters import parse_assignment

    return dict(parse_assignment(a) for a in assignments or [])


def _json_kpis(kpis: dict[str, float]) -> dict[str, float | int | None]:
    """KPIs for JSON: undefined as null, counts as integers."""
    from simfunnel.formatting import kpi_kind

    out: dict[str, float | int | None] = {}
    for key, value in kpis.items():
        if math.isnan(value):
            out[key] = None
        elif kpi_kind(key) == "count":
            out[key] = round(value)
        else:
            out[key] = value
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from simfunnel.limits import check_scenario
    from simfunnel.parameters import load_scenario

    overrides = _overrides(args.set)
    scenario = load_scenario(args.scenario, overrides)
    check_scenario(scenario, args.max_leads)  # before numpy, scipy and pandas load
    if args.export_crm is not None:
        _check_export_path(args.export_crm)

    from simfunnel.formatting import (
        Column,
        format_number,
        kpi_kind,
        kpi_label,
        render_table,
        wrap,
    )
    from simfunnel.metrics import KPI_DOCS
    from simfunnel.simulation import simulate

    result = simulate(scenario, seed=args.seed, max_leads=args.max_leads)
    if args.export_crm is not None:
        from simfunnel.calibration.export import to_crm, write_crm

        crm = to_crm(result)
        write_crm(crm, args.export_crm)
        print(f"CRM export: {args.export_crm} ({len(crm):,} leads)", file=sys.stderr)
    if args.json:
        payload = {
            "scenario": scenario.name,
            "seed": result.seed,
            "overrides": overrides,
            "horizon_days": scenario.run.horizon_days,
            "warmup_days": scenario.run.warmup_days,
            "kpis": _json_kpis(result.kpis),
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(
        wrap(
            f"{scenario.name} (seed {result.seed}, {scenario.run.horizon_days:g} days, "
            f"KPIs after a {scenario.run.warmup_days:g}-day warm-up)"
        )
    )
    rows = [
        [kpi_label(k), format_number(v, kpi_kind(k)), k, KPI_DOCS.get(k, "")]
        for k, v in result.kpis.items()
    ]
    columns = [
        Column("KPI", "<"),
        Column("value"),
        Column("name", "<", 2),
        Column("meaning", "<", 3, shrink_to=30),
    ]
    print(render_table(columns, rows))
    return 0


def _check_export_path(path: str) -> None:
    """Refuse an export file of unknown type, or in a missing folder, before running."""
    from pathlib import Path

    target = Path(path)
    suffixes = (".csv", ".xlsx", ".parquet")  # simfunnel.calibration.export.EXPORT_SUFFIXES
    if target.suffix.lower() not in suffixes:
        raise SimfunnelError(
            f"--export-crm {path}: unknown file type {target.suffix or '(none)'!r}; "
            f"use one of {', '.join(suffixes)}"
        )
    if not target.parent.is_dir():
        raise SimfunnelError(f"--export-crm {path}: no such folder {str(target.parent)!r}")


def _cmd_validate(args: argparse.Namespace) -> int:
    from simfunnel.parameters import load_scenario

    scenario = load_scenario(args.file)
    print(
        f"{args.file}: valid scenario {scenario.name!r} with "
        f"{len(scenario.sources)} source(s) and {scenario.team.reps} reps"
    )
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from simfunnel.explain import explain

    print(explain(args.scenario, overrides=_overrides(args.set), json=args.json))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    import textwrap

    from simfunnel.formatting import terminal_width
    from simfunnel.parameters import bundled_scenarios

    scenarios = bundled_scenarios()
    width = max(len(n) for n in scenarios)
    indent = " " * (width + 2)
    for name, description in scenarios.items():
        text = textwrap.fill(
            f"{name:<{width}}  {description}",
            max(terminal_width(), width + 30),
            subsequent_indent=indent,
        )
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``simfunnel``."""
    parser = _Parser(
        prog="simfunnel",
        description="Sales funnel simulation: more leads, or better ones?",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"simfunnel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run one scenario and print its KPIs")
    run.add_argument("scenario", help="bundled scenario name or YAML/JSON file")
    run.add_argument("--seed", type=_seed, default=None, help="root seed (default: the scenario's)")
    run.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override a field, e.g. team.reps=12 (repeatable)",
    )
    run.add_argument("--json", action="store_true", help="print the KPIs as JSON")
    run.add_argument(
        "--export-crm",
        metavar="FILE",
        default=None,
        help="also write the simulated leads as a CRM export (.csv, .xlsx or .parquet)",
    )
    _add_limit_options(run, runs=False)
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("file")
    validate.set_defaults(func=_cmd_validate)

    explain = sub.add_parser(
        "explain",
        help="every value a scenario uses, where it came from and the default's source",
        description="Every effective field of a scenario with its value and its origin: "
        "file (you wrote it), data (calibrate estimated it), fit (calibrate fitted it by "
        "simulation) or default (the schema filled it in; its figure and source are in "
        "docs/assumptions.md). The fields that drive cost come first.",
    )
    explain.add_argument("scenario", help="bundled scenario name or YAML/JSON file")
    explain.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override a field, e.g. team.reps=12 (repeatable); it counts as yours",
    )
    explain.add_argument("--json", action="store_true", help="print the fields as JSON")
    explain.set_defaults(func=_cmd_explain)

    lst = sub.add_parser("list", help="list the bundled scenarios")
    lst.set_defaults(func=_cmd_list)

    _add_experiment_commands(sub)
    _add_calibrate_command(sub)
    return parser


def _add_calibrate_command(sub: Any) -> None:
    cal = sub.add_parser(
        "calibrate",
        help="calibrate a scenario from a CRM export (leads, and optionally deals)",
        description="Read a CRM export (CSV, Parquet or .xlsx), estimate volumes, stage rates, "
        "time to close, deal sizes and speed-to-lead decay, and write a scenario YAML with the "
        "evidence for each calibrated field in a comment. Nothing is written unless the "
        "calibration finished.",
    )
    cal.add_argument("leads", metavar="LEADS", help="lead table: CSV, Parquet or .xlsx")
    cal.add_argument("--deals", metavar="DEALS", help="deals/opportunities table, joined on an id")
    how = cal.add_mutually_exclusive_group()
    how.add_argument(
        "--mapping", metavar="MAP.yaml", help="YAML column mapping (see docs/calibration.md)"
    )
    how.add_argument("--preset", choices=["hubspot", "salesforce"], help="a CRM's standard export")
    cal.add_argument("--out", required=True, metavar="FILE.yaml", help="scenario file to write")
    cal.add_argument("--report", metavar="DIR", help="write the fit-check report into DIR")
    cal.add_argument(
        "--holdout",
        type=float,
        default=None,
        metavar="SHARE",
        help="back-test: calibrate on the first 1-SHARE of the history, simulate the rest",
    )
    cal.add_argument(
        "--as-of",
        metavar="DATE",
        help="when the export was made (default: the last lead created); ends the history",
    )
    cal.add_argument(
        "--outcomes-from",
        default="auto",
        metavar="auto|all|DATE",
        help="the first creation date whose outcomes were recorded (default auto: detected); "
        "conversion, timing and value come from the leads created since, volume from all",
    )
    cal.add_argument(
        "--period",
        metavar="FIRST..LAST",
        help="for an export without creation dates: the period it covers, e.g. "
        "2019-01-01..2019-12-31 (its leads are spread evenly over it)",
    )
    cal.add_argument(
        "--leads-per-week",
        action="append",
        metavar="SOURCE=N",
        help="for an export without creation dates: a source's leads per week (repeat "
        "for each source)",
    )
    cal.add_argument(
        "--strict",
        action="store_true",
        help="refuse any bad row or won/lost conflict (default: skip a few, settle conflicts)",
    )
    from simfunnel.calibration.read import limits

    size = cal.add_argument_group("size limits, checked before a file is loaded")
    for flag, default, metavar, what in (
        ("--max-rows", limits.DEFAULT_MAX_ROWS, "N", "rows in a file"),
        ("--max-columns", limits.DEFAULT_MAX_COLUMNS, "N", "columns in a file"),
        ("--max-cell-chars", limits.DEFAULT_MAX_CELL_CHARS, "N", "characters in one cell"),
        ("--max-xlsx-mb", limits.DEFAULT_MAX_XLSX_MB, "MB", "megabytes an .xlsx unzips to"),
    ):
        size.add_argument(
            flag,
            type=type(default),
            default=default,
            metavar=metavar,
            help=f"refuse more {what} (default {default:,})".replace(".0)", ")"),
        )
    cal.add_argument(
        "--simulate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit the quality mix and contact/qualification chances by simulation",
    )
    cal.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars and no reading lines on stderr; errors and results only",
    )
    cal.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    if args.report:
        _skip_iri_grammars()
    from simfunnel.cli_calibrate import run

    return run(args)


def _add_backend_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--backend",
        choices=BACKENDS,
        default="processes",
        help="where runs execute (default: processes, all local cores)",
    )
    cmd.add_argument(
        "--workers", type=_positive, default=None, help="worker processes (default: one per core)"
    )
    cmd.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help=f"Dask scheduler, e.g. tcp://host:8786 (or ${SCHEDULER_ENV}); "
        "with --backend dask and no address, a LocalCluster is started",
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_experiment_commands(sub: Any) -> None:
    rep = sub.add_parser("replicate", help="replications of one scenario with 95%% intervals")
    rep.add_argument("scenario")
    rep.add_argument("-n", type=int, default=10, help="replications (first batch)")
    rep.add_argument("--seed", type=_seed, default=None)
    rep.add_argument("--set", action="append", metavar="PATH=VALUE")
    rep.add_argument("--kpi", default=None, help="sequential stopping: the KPI to pin down")
    rep.add_argument(
        "--precision",
        type=float,
        default=None,
        help="sequential stopping: target relative half-width, e.g. 0.05",
    )
    rep.add_argument(
        "--max-n",
        type=_positive,
        default=None,
        help="sequential stopping: most replications (default 200)",
    )
    rep.add_argument("--csv", metavar="FILE", help="also write one row per replication")
    _add_backend_options(rep)
    _add_limit_options(rep)
    rep.set_defaults(func=_cmd_replicate)

    cmp_ = sub.add_parser("compare", help="paired comparison of scenarios (common random numbers)")
    cmp_.add_argument("scenarios", nargs="+")
    cmp_.add_argument("-n", type=int, default=20, help="replications per scenario")
    cmp_.add_argument("--baseline", default=None, help="default: the first scenario")
    cmp_.add_argument("--seed", type=_seed, default=None)
    cmp_.add_argument(
        "--set", action="append", metavar="PATH=VALUE", help="override applied to every scenario"
    )
    cmp_.add_argument("--kpis", default=None, help="comma-separated KPIs to show")
    cmp_.add_argument(
        "--vary",
        metavar="PATH=V1,V2,...",
        help="compare at each of these values of one parameter, e.g. team.reps=6,9,12,16, "
        "and say where the answer changes",
    )
    out = cmp_.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the comparison as JSON")
    out.add_argument("--csv", metavar="FILE", help="write the comparison table as CSV")
    cmp_.add_argument(
        "--xlsx", metavar="FILE", help="also write the comparison as a spreadsheet (.xlsx)"
    )
    _add_backend_options(cmp_)
    _add_limit_options(cmp_)
    cmp_.set_defaults(func=_cmd_compare)

    sw = sub.add_parser("sweep", help="run a parameter sweep into a results store")
    sw.add_argument("spec", help="sweep spec, YAML or JSON")
    sw.add_argument("--out", required=True, help="results directory (new, or with --resume)")
    sw.add_argument("--resume", action="store_true", help="run only the points not yet stored")
    sw.add_argument("--retry-failed", action="store_true", help="with --resume: rerun failures")
    _add_backend_options(sw)
    _add_limit_options(sw)
    sw.set_defaults(func=_cmd_sweep)

    an = sub.add_parser("analyze", help="sensitivity, best points and Pareto front of a sweep")
    an.add_argument("store", help="results directory of a sweep")
    an.add_argument("--best", default="cac", help="KPI to optimise (default: cac)")
    an.add_argument("--maximize", action="store_true", help="maximise --best instead")
    an.add_argument(
        "--constraint", action="append", default=[], help="e.g. 'burnout_index <= 0.3' (repeatable)"
    )
    an.add_argument("--top", type=_positive, default=5, help="best points to show")
    an.add_argument(
        "--xlsx", metavar="FILE", help="also write sensitivity and best points as a spreadsheet"
    )
    an.set_defaults(func=_cmd_analyze)

    _add_optimize_command(sub)

    from simfunnel.limits import DEFAULT_MAX_RUNS as MAX_RUNS

    rp = sub.add_parser("report", help="run a notebook through papermill into an HTML report")
    rp.add_argument("notebook", nargs="?", help="notebook name (see --list) or .ipynb path")
    rp.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter (value read as YAML)",
    )
    rp.add_argument(
        "-f",
        "--parameters-file",
        metavar="FILE",
        help="YAML: one set of parameters, a list of sets, or a grid (batch)",
    )
    rp.add_argument("--out", help="folder for the executed notebook, HTML and JSON")
    rp.add_argument("--list", action="store_true", help="list the notebooks and parameters")
    rp.add_argument("--quiet", action="store_true", help="no progress bars")
    rp.add_argument(
        "--kernel-per-report",
        action="store_true",
        help="a batch starts a fresh kernel for every report instead of resetting one "
        "(slower; for a notebook that changes module state)",
    )
    rp.add_argument(
        "--max-runs",
        type=_positive,
        default=None,
        metavar="N",
        help=f"refuse reports of more simulations than this in all (default {MAX_RUNS:,})",
    )
    rp.set_defaults(func=_cmd_report)


def _add_optimize_command(sub: Any) -> None:
    opt = sub.add_parser(
        "optimize", help="search the budget split and settings that best meet an objective"
    )
    opt.add_argument("spec", help="optimisation spec, YAML or JSON")
    opt.add_argument("--out", required=True, help="study folder (new, or with --resume)")
    opt.add_argument("--resume", action="store_true", help="continue the study stored in --out")
    opt.add_argument("--trials", type=int, default=None, help="trial budget (overrides the spec)")
    opt.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="RULE",
        help="e.g. 'burnout_index <= 0.35', added to the spec's (repeatable)",
    )
    opt.add_argument("--json", action="store_true", help="print the answer as JSON")
    opt.add_argument(
        "--allow-default-costs",
        action="store_true",
        help="optimise although a budget source's cost per lead is a default (the answer "
        "says so); refused otherwise",
    )
    _add_backend_options(opt)
    _add_limit_options(opt)
    opt.set_defaults(func=_cmd_optimize)


def _cmd_optimize(args: argparse.Namespace) -> int:
    from simfunnel.optimization import optimize
    from simfunnel.optimization.spec import constraints_with, read_spec_dict

    raw = read_spec_dict(args.spec)
    if args.trials is not None:
        raw["trials"] = args.trials
    if args.constraint:
        raw["constraints"] = constraints_with(raw.get("constraints"), args.constraint)
    try:
        result = optimize(
            raw,
            args.out,
            backend=args.backend,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            progress=not args.quiet,
            max_leads=args.max_leads,
            max_runs=args.max_runs,
            allow_default_costs=args.allow_default_costs,
        )
    except KeyboardInterrupt:
        print(
            f"simfunnel: interrupted; every completed trial is stored in {args.out}; "
            "continue with --resume",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    from simfunnel.formatting import wrap_if_terminal as wrap

    print(wrap(result.sentence()))
    for warning in result.warnings:
        print(wrap(f"warning: {warning}", indent="  "))
    sims = result.simulations
    print(
        wrap(
            f"{len(result.trials)} trials ({result.search.failed} failed in this run), "
            f"{sims['total']:,} simulations; study in {result.path}"
        )
    )
    return 0


def _kpi_list(text: str | None, default: tuple[str, ...]) -> list[str]:
    from simfunnel.metrics import KPI_DOCS

    if not text:
        return list(default)
    kpis = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kpis if k not in KPI_DOCS]
    if unknown:
        raise SimfunnelError(f"--kpis: unknown KPI {unknown[0]!r}")
    return kpis


def _cmd_replicate(args: argparse.Namespace) -> int:
    from simfunnel.experiments.replications import replicate, summarize
    from simfunnel.formatting import (
        Column,
        format_number,
        format_plus_minus,
        kpi_kind,
        kpi_label,
        render_table,
        wrap,
    )
    from simfunnel.metrics import KPI_DOCS

    if args.max_n is not None and args.precision is None:
        raise SimfunnelError("--max-n: only with sequential stopping (--kpi and --precision)")
    if args.csv:
        from simfunnel.textio import check_output_file

        check_output_file(args.csv, "--csv")
    runs = replicate(
        args.scenario,
        args.n,
        args.seed,
        overrides=_overrides(args.set),
        target_kpi=args.kpi,
        precision=args.precision,
        max_n=200 if args.max_n is None else args.max_n,
        backend=args.backend,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
        max_leads=args.max_leads,
        max_runs=args.max_runs,
    )
    if args.csv:
        runs.to_csv(args.csv, index=False)
    table = summarize(runs.drop(columns=["scenario"]))
    print(wrap(f"{runs['scenario'].iloc[0]}: {len(runs)} replications, means with 95% t intervals"))
    rows = []
    for kpi in KPI_DOCS:
        row = table.loc[kpi]
        kind = kpi_kind(kpi)
        rows.append(
            [
                kpi_label(kpi),
                format_number(row["mean"], kind, statistic=True),
                format_plus_minus(row.ci_low, row.ci_high, kind, row["mean"]),
                _pct(row.rel_half_width),
                kpi,
            ]
        )
    columns = [
        Column("KPI", "<"),
        Column("mean"),
        Column("95% CI"),
        Column("± % of mean"),
        Column("name", "<", 1),
    ]
    print(render_table(columns, rows))
    return 0


def _pct(x: float) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else f"{100 * x:.1f}%"


def _cmd_compare(args: argparse.Namespace) -> int:
    from simfunnel.experiments.comparison import HEADLINE_KPIS, compare
    from simfunnel.parameters import load_scenario

    if args.csv:
        from simfunnel.textio import check_output_file

        check_output_file(args.csv, "--csv")
    if args.xlsx:
        _check_xlsx_path(args.xlsx)
    if args.vary and len(args.scenarios) > 1:
        return _compare_across(args)
    kpis = _kpi_list(args.kpis, HEADLINE_KPIS)
    overrides = _overrides(args.set)
    scenarios: list[Any] = list(args.scenarios)
    if args.vary:  # one strategy across the levels: each level is a strategy, paired
        from simfunnel.experiments.across import levels_of

        scenarios, own = levels_of(args.scenarios[0], _parse_vary(args.vary), overrides)
        overrides = {}
        if args.baseline is None:
            args.baseline = own
    result = compare(
        scenarios,
        args.n,
        args.seed,
        baseline=args.baseline,
        overrides=overrides,
        backend=args.backend,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
        max_leads=args.max_leads,
        max_runs=args.max_runs,
    )
    seed = args.seed if args.seed is not None else load_scenario(args.scenarios[0]).run.seed
    table = result.table(kpis)
    about = {
        "scenarios": result.scenarios,
        "baseline": result.baseline,
        "replications": args.n,
        "seed": seed,
        "overrides": overrides,
        "confidence": result.confidence,
    }
    if args.xlsx:
        from simfunnel.reporting.workbook import comparison_sheets, write_workbook

        write_workbook(comparison_sheets(table, about), args.xlsx)
    if args.json:
        # how much common random numbers tighten each difference: the paired interval's
        # half-width over the one two independent samples would give
        table = table.assign(
            paired_to_unpaired=table["paired_half_width"]
            / table["unpaired_half_width"].where(table["unpaired_half_width"] > 0)
        )
        records = []
        for (kpi, label), row in table.iterrows():
            record: dict[str, Any] = {"kpi": kpi, "scenario": label}
            for key, value in row.items():
                if key in ("n", "n_pairs"):
                    record[str(key)] = int(value)
                elif key in ("significant", "baseline_near_zero"):
                    record[str(key)] = bool(value)
                else:
                    record[str(key)] = None if math.isnan(float(value)) else float(value)
            records.append(record)
        print(json.dumps({**about, "rows": records}, indent=2))
        return 0
    if args.csv:
        table.to_csv(args.csv)
    print(_comparison_text(table, result.baseline, about))
    for path in (args.csv, args.xlsx):
        if path:
            print(f"table written to {path}")
    return 0


def _comparison_text(table: Any, baseline: str, about: dict[str, Any]) -> str:
    from simfunnel.formatting import (
        Column,
        Section,
        format_change,
        format_change_interval,
        format_difference,
        format_difference_interval,
        format_number,
        format_plus_minus,
        kpi_kind,
        kpi_label,
        render_table,
        wrap,
    )

    rows: list[Any] = []
    absolute = False
    for kpi in dict.fromkeys(table.index.get_level_values("kpi")):
        kind = kpi_kind(kpi)
        rows.append(Section(kpi_label(kpi)))
        for label, row in table.loc[kpi].iterrows():
            mean = format_number(row["mean"], kind, statistic=True)
            ci = format_plus_minus(row.ci_low, row.ci_high, kind, row["mean"])
            if label == baseline:
                rows.append([f"  {label}", mean, ci, "baseline", ""])
            elif bool(row.get("baseline_near_zero", False)):
                # against a baseline near 0 a percentage says nothing: the difference
                mark = " *" if row.significant else "  "
                band = format_difference_interval(row.diff_low, row.diff_high, kind)
                rows.append(
                    [
                        f"  {label}",
                        mean,
                        ci,
                        format_difference(row["diff"], kind) + mark,
                        f"{band} (absolute)",
                    ]
                )
                absolute = True
            else:
                mark = " *" if row.significant else "  "
                change = format_change(row.rel_change) + mark
                rows.append(
                    [
                        f"  {label}",
                        mean,
                        ci,
                        change,
                        format_change_interval(row.rel_low, row.rel_high),
                    ]
                )
    columns = [
        Column("strategy", "<"),
        Column("mean"),
        Column("95% CI", ">", 1),
        Column("vs baseline"),
        Column("95% CI of change", "<"),
    ]
    seed, n = about["seed"], about["replications"]
    overrides = about["overrides"]
    given = (
        f"; overrides {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else ""
    )
    head = (
        f"{n} replications of each strategy with common random numbers (seed {seed}{given}); "
        f"baseline {baseline}.\nMeans with 95% t intervals; the change against the baseline "
        "with a paired 95% interval; * where that interval excludes 0 (significant)."
    )
    text = wrap(head) + "\n\n" + render_table(columns, rows)
    if absolute:
        text += "\n" + wrap(
            "(absolute): the baseline is too near 0 for a percentage, so the change is the "
            "difference itself, with its paired 95% interval (percentage points for shares)."
        )
    return text


def _check_xlsx_path(path: str) -> None:
    """Refuse a spreadsheet path that cannot be written, before any run."""
    from pathlib import Path

    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise SimfunnelError(f"--xlsx {path}: the file name must end in .xlsx")
    if not target.parent.is_dir():
        raise SimfunnelError(f"--xlsx {path}: no such folder {str(target.parent)!r}")
    if target.is_dir():
        raise SimfunnelError(f"--xlsx {path}: is a folder")


def _parse_vary(text: str) -> dict[str, list[Any]]:
    path, sep, values = text.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise SimfunnelError(f"--vary {text!r}: expected PATH=V1,V2,... e.g. team.reps=6,9,12")
    import yaml

    levels = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    return {path.strip(): levels}


def _compare_across(args: argparse.Namespace) -> int:
    from simfunnel.experiments.across import ACROSS_KPIS, compare_across

    vary = _parse_vary(args.vary)
    kpis = _kpi_list(args.kpis, ACROSS_KPIS)
    result = compare_across(
        args.scenarios,
        vary,
        args.n,
        args.seed,
        baseline=args.baseline,
        overrides=_overrides(args.set),
        backend=args.backend,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
        max_leads=args.max_leads,
        max_runs=args.max_runs,
    )
    verdicts: dict[str, str] = {k: result.verdict(k) for k in ("cac", "ltv_to_cac") if k in kpis}
    table = result.table(kpis)
    about = {
        "scenarios": result.scenarios,
        "baseline": result.scenarios[0],
        "levels": list(result.levels),
        "replications": args.n,
        "seed": args.seed,
        "overrides": _overrides(args.set),
        "confidence": result.confidence,
    }
    if args.xlsx:
        from simfunnel.reporting.workbook import across_sheets, write_workbook

        sheets = across_sheets(table, result.parameter, result.scenarios[0], about, verdicts)
        write_workbook(sheets, args.xlsx)
    if args.json:
        records = table.reset_index().replace({math.nan: None}).to_dict(orient="records")
        print(
            json.dumps(
                {"parameter": result.parameter, **about, "verdicts": verdicts, "rows": records},
                indent=2,
                default=str,
            )
        )
        if args.xlsx:
            print(f"table written to {args.xlsx}", file=sys.stderr)
        return 0
    if args.csv:
        table.to_csv(args.csv)
    from simfunnel.formatting import (
        Column,
        Section,
        format_number,
        format_plus_minus,
        kpi_kind,
        kpi_label,
        render_table,
        terminal_width,
        wrap,
    )

    words = "reps" if result.parameter == "team.reps" else result.parameter
    print(
        wrap(
            f"{args.n} replications of each strategy at each {words} value, with common "
            "random numbers; means with 95% intervals."
        )
    )
    for sentence in verdicts.values():
        print()
        print(wrap(sentence))
    print()
    rows: list[Any] = []
    for kpi in kpis:
        kind = kpi_kind(kpi)
        rows.append(Section(kpi_label(kpi)))
        for label in result.scenarios:
            cells = [f"  {label}"]
            for level in result.levels:
                row = table.loc[(level, kpi, label)]
                mean = format_number(row["mean"], kind, statistic=True)
                band = format_plus_minus(row["ci_low"], row["ci_high"], kind, row["mean"])
                cells.append(f"{mean} {band if band.startswith('±') else f'({band})'}")
            rows.append(cells)
    heads = [
        f"{level} {words}" if words == "reps" else f"{words} = {level}" for level in result.levels
    ]
    columns = [Column("strategy", "<")] + [Column(head) for head in heads]
    wide = render_table(columns, rows, width=10**6)
    if max(map(len, wide.splitlines())) <= terminal_width():
        print(wide)
    else:  # too wide for the terminal: one table per level, names in full
        for k, head in enumerate(heads):
            print(f"At {head}:")
            sub = [r if isinstance(r, Section) else [r[0], r[k + 1]] for r in rows]
            print(render_table([Column("strategy", "<"), Column(head)], sub))
            if k < len(heads) - 1:
                print()
    for path in (args.csv, args.xlsx):
        if path:
            print(f"table written to {path}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from simfunnel.experiments.sweep import run_sweep

    if args.retry_failed and not args.resume:
        raise SimfunnelError(
            "--retry-failed: only with --resume (it reruns a stored sweep's failures)"
        )
    try:
        summary = run_sweep(
            args.spec,
            args.out,
            backend=args.backend,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
            max_leads=args.max_leads,
            max_runs=args.max_runs,
        )
    except KeyboardInterrupt:
        print(
            f"simfunnel: interrupted; every completed point is stored in {args.out}; "
            "continue with --resume",
            file=sys.stderr,
        )
        return 130
    print(summary.describe())
    if summary.failed:
        print(
            f"{summary.failed} point(s) failed: their errors are in the store's 'error' "
            "column; rerun them with --resume --retry-failed",
            file=sys.stderr,
        )
    return 0


def _skip_iri_grammars() -> None:
    """Spare a report command jsonschema's IRI format check, about 2 s of its start.

    papermill and nbconvert validate notebooks with nbformat, whose jsonschema loads
    the optional ``rfc3987_syntax`` if installed and compiles some forty grammars for
    an "iri" format that the notebook schema never uses. Marking the module absent
    in this process (and only here) leaves that one check out.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _cmd_report(args: argparse.Namespace) -> int:
    _skip_iri_grammars()
    import textwrap

    from simfunnel.formatting import known_width
    from simfunnel.formatting import wrap_if_terminal as wrap
    from simfunnel.reporting import report

    if args.list:
        for name, path in report.available_notebooks().items():
            print(name)
            for param in report.notebook_parameters(path).values():
                helptext = f"  # {param['help']}" if param["help"] else ""
                text = f"{param['name']}: {param['inferred_type_name']} = {param['default']}"
                width = known_width()
                print(
                    f"    {text}{helptext}"
                    if width is None
                    else textwrap.fill(
                        text + helptext,
                        width,
                        initial_indent="    ",
                        subsequent_indent="        ",
                        break_on_hyphens=False,
                    )
                )
        return 0
    if not args.notebook or not args.out:
        raise SimfunnelError("report: give a NOTEBOOK and --out DIR (or --list)")
    given = {name: report.parse_value(value) for name, value in args.parameter}
    sets = [given]
    if args.parameters_file:
        data = report.read_parameters_file(args.parameters_file)
        sets = [{**s, **given} for s in report.parameter_sets(data)]
    if len(sets) == 1:
        done = report.run_report(
            args.notebook, sets[0], args.out, progress=not args.quiet, max_runs=args.max_runs
        )
        conclusion = done.headline.get("conclusion")
        if conclusion:
            print(wrap(conclusion))
        print(f"executed notebook: {done.notebook}")
        print(f"headline numbers:  {done.headline_json}")
        if done.xlsx:
            print(f"spreadsheet:       {done.xlsx}")
        print(f"HTML report:       {done.html}")
        return 0
    index = report.run_batch(
        args.notebook,
        sets,
        args.out,
        progress=not args.quiet,
        kernel_per_report=args.kernel_per_report,
        max_runs=args.max_runs,
    )
    print(f"{len(sets)} reports; index: {index}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from simfunnel.experiments.analysis import (
        best_points,
        describe_constraints,
        point_means,
        sensitivity,
        stored_spec,
    )
    from simfunnel.experiments.store import ResultsStore
    from simfunnel.formatting import wrap

    if args.xlsx:
        _check_xlsx_path(args.xlsx)
    store = ResultsStore.open(args.store)
    spec = stored_spec(store)
    means = point_means(store.load(), spec)
    sens = sensitivity(args.store)
    best = best_points(
        means, args.best, minimize=not args.maximize, constraints=args.constraint, top=args.top
    )
    params = [p.path for p in spec.parameters]
    print(_sensitivity_text(sens, spec.design.kind, len(means)))
    print()
    word = "Most" if args.maximize else "Least"
    rule = describe_constraints(args.constraint)
    print(
        wrap(f"{word} {args.best} with {rule} (means of {spec.replications} replications a point):")
    )
    if len(best):
        print(_best_text(best, params, args.best, args.constraint, list(spec.kpis)))
    else:
        print("  no point meets the constraints")
    if args.xlsx:
        from simfunnel.reporting.workbook import sweep_sheets, write_workbook

        write_workbook(sweep_sheets(sens, best, params), args.xlsx)
        print(f"tables written to {args.xlsx}")
    return 0


def _sensitivity_text(sens: Any, kind: str, points: int) -> str:
    from simfunnel.formatting import (
        Column,
        format_number,
        kpi_kind,
        kpi_label,
        parameter_label,
        render_table,
        wrap,
    )

    rows = []
    if "ST" in sens.columns:
        what = "Sobol indices: share of the KPI's variance due to each parameter"
        heads = [Column("first order"), Column("± 95%", ">", 1), Column("total"), Column("± 95%")]
        for _, r in sens.iterrows():
            rows.append([f"{r.S1:.2f}", f"± {r.S1_conf:.2f}", f"{r.ST:.2f}", f"± {r.ST_conf:.2f}"])
    elif "mu_star" in sens.columns:
        what = "Morris screening: mean absolute effect (mu*) and its spread (sigma), KPI units"
        heads = [Column("mu*"), Column("± 95%", ">", 1), Column("sigma")]
        for _, r in sens.iterrows():
            k = kpi_kind(r.kpi)
            rows.append(
                [
                    format_number(r.mu_star, k, statistic=True),
                    "± " + format_number(r.mu_star_conf, k, statistic=True),
                    format_number(r.sigma, k, statistic=True),
                ]
            )
    else:
        what = "Spearman rank correlation of each KPI's point means with each parameter"
        heads = [Column("correlation"), Column("p-value", ">", 1)]
        for _, r in sens.iterrows():
            p = "-" if math.isnan(r.p_value) else f"{r.p_value:.3f}"
            rho = "-" if math.isnan(r.spearman) else f"{r.spearman:+.2f}"
            rows.append([rho, "< 0.001" if p == "0.000" else p])
    full = [
        [kpi_label(r.kpi), parameter_label(r.parameter), *cells]
        for (_, r), cells in zip(sens.iterrows(), rows, strict=True)
    ]
    columns = [Column("KPI", "<"), Column("parameter", "<"), *heads]
    head = wrap(f"Sensitivity ({kind} design, {points} points). {what}:")
    return head + "\n" + render_table(columns, full)


def _best_text(
    best: Any, params: list[str], objective: str, constraints: list[str], kpis: list[str]
) -> str:
    from simfunnel.experiments.analysis import constraint_list
    from simfunnel.formatting import (
        Column,
        format_number,
        kpi_kind,
        kpi_label,
        parameter_kind,
        parameter_label,
        render_table,
    )

    bound = [k for k, _, _ in constraint_list(constraints)]
    shown = list(dict.fromkeys([objective, *bound, *[k for k in kpis if k in best.columns]]))
    columns = [Column("point", ">")]
    columns += [Column(parameter_label(p)) for p in params]
    columns += [
        Column(kpi_label(k), ">", 0 if k == objective or k in bound else 2 + i)
        for i, k in enumerate(shown)
    ]
    rows = []
    for point, r in best.iterrows():
        cells = [str(point)]
        for p in params:
            value = r[p]
            is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            cells.append(format_number(value, parameter_kind(p)) if is_number else str(value))
        cells += [format_number(r[k], kpi_kind(k), statistic=True) for k in shown]
        rows.append(cells)
    return render_table(columns, rows)


def _redeliver_interrupts() -> Callable[[], None]:
    """A Ctrl-C that lands in a finalizer or weakref callback is raised again, not lost.

    Python reports an exception raised there as "Exception ignored in ..." with a
    traceback, and goes on as if Ctrl-C had never been pressed. This hook instead
    interrupts the main thread again a moment later, in ordinary code, so that the
    command ends with its one line and status 130; other such exceptions are reported
    as before. Returns the function that stops re-delivering (once the command ends).
    """
    import _thread
    import threading

    previous = sys.unraisablehook
    active = [True]

    def fire() -> None:
        if active[0]:
            _thread.interrupt_main()

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            if active[0]:
                timer = threading.Timer(0.01, fire)
                timer.daemon = True
                timer.start()
            return
        previous(unraisable)

    def stop() -> None:
        active[0] = False

    sys.unraisablehook = hook
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simfunnel`` command."""
    stop_redelivering = _redeliver_interrupts()
    try:
        return _main(argv)
    finally:
        stop_redelivering()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `simfunnel`: say how to use it
        sys.stderr.write(parser.format_help())
        return EXIT_USAGE
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a broken pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # The reader (`| head`, a closed pager) went away: stop quietly. Point stdout
        # at /dev/null so that the interpreter's final flush cannot complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except SimfunnelError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for line in problems:
            print(f"simfunnel: error: {line}", file=sys.stderr)
        return int(getattr(exc, "exit_status", EXIT_USAGE))
    except KeyboardInterrupt:
        print("simfunnel: interrupted", file=sys.stderr)
        return 130

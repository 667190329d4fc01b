"""The command line: a thin layer over the public API.

Every error simfunnel raises on purpose becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
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
  simfunnel compare volume_heavy quality_heavy balanced -n 20
  simfunnel sweep my_sweep.yaml --out results
  simfunnel analyze results --best cac --constraint "burnout_index <= 0.5"
  simfunnel report volume_vs_quality --out reports/vq

'simfunnel COMMAND --help' describes a command's options.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for bad input
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _overrides(assignments: Sequence[str] | None) -> dict[str, Any]:
    from simfunnel.parameters import parse_assignment

    return dict(parse_assignment(a) for a in assignments or [])


def format_value(value: float) -> str:
    """A KPI value for a table: thousands separated, NaN as a dash."""
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3f}"


def _cmd_run(args: argparse.Namespace) -> int:
    from simfunnel.metrics import KPI_DOCS
    from simfunnel.parameters import load_scenario
    from simfunnel.simulation import simulate

    scenario = load_scenario(args.scenario, _overrides(args.set))
    result = simulate(scenario, seed=args.seed)
    if args.json:
        payload = {
            "scenario": scenario.name,
            "seed": result.seed,
            "kpis": {k: (None if math.isnan(v) else v) for k, v in result.kpis.items()},
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(
        f"{scenario.name} (seed {result.seed}, {scenario.run.horizon_days:g} days, "
        f"KPIs after a {scenario.run.warmup_days:g}-day warm-up)"
    )
    width = max(len(k) for k in result.kpis)
    for key, value in result.kpis.items():
        print(f"  {key:<{width}}  {format_value(value):>14}   {KPI_DOCS[key]}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from simfunnel.parameters import read_scenario_dict, scenario_from_dict

    raw = read_scenario_dict(args.file)
    scenario = scenario_from_dict(raw)
    print(
        f"{args.file}: valid scenario {scenario.name!r} with "
        f"{len(scenario.sources)} source(s) and {scenario.team.reps} reps"
    )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from simfunnel.parameters import bundled_scenarios

    scenarios = bundled_scenarios()
    width = max(len(n) for n in scenarios)
    for name, description in scenarios.items():
        print(f"{name:<{width}}  {description}")
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
    run.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    run.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override a field, e.g. team.reps=12 (repeatable)",
    )
    run.add_argument("--json", action="store_true", help="print the KPIs as JSON")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("file")
    validate.set_defaults(func=_cmd_validate)

    lst = sub.add_parser("list", help="list the bundled scenarios")
    lst.set_defaults(func=_cmd_list)

    _add_experiment_commands(sub)
    return parser


def _add_backend_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--backend",
        choices=BACKENDS,
        default="processes",
        help="where runs execute (default: processes, all local cores)",
    )
    cmd.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core)"
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
    rep.add_argument("--seed", type=int, default=None)
    rep.add_argument("--set", action="append", metavar="PATH=VALUE")
    rep.add_argument("--kpi", default=None, help="sequential stopping: the KPI to pin down")
    rep.add_argument(
        "--precision",
        type=float,
        default=None,
        help="sequential stopping: target relative half-width, e.g. 0.05",
    )
    rep.add_argument("--max-n", type=int, default=200)
    rep.add_argument("--csv", metavar="FILE", help="also write one row per replication")
    _add_backend_options(rep)
    rep.set_defaults(func=_cmd_replicate)

    cmp_ = sub.add_parser("compare", help="paired comparison of scenarios (common random numbers)")
    cmp_.add_argument("scenarios", nargs="+")
    cmp_.add_argument("-n", type=int, default=20, help="replications per scenario")
    cmp_.add_argument("--baseline", default=None, help="default: the first scenario")
    cmp_.add_argument("--seed", type=int, default=None)
    cmp_.add_argument(
        "--set", action="append", metavar="PATH=VALUE", help="override applied to every scenario"
    )
    cmp_.add_argument("--kpis", default=None, help="comma-separated KPIs to show")
    out = cmp_.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the comparison as JSON")
    out.add_argument("--csv", metavar="FILE", help="write the comparison table as CSV")
    _add_backend_options(cmp_)
    cmp_.set_defaults(func=_cmd_compare)

    sw = sub.add_parser("sweep", help="run a parameter sweep into a results store")
    sw.add_argument("spec", help="sweep spec, YAML or JSON")
    sw.add_argument("--out", required=True, help="results directory (new, or with --resume)")
    sw.add_argument("--resume", action="store_true", help="run only the points not yet stored")
    sw.add_argument("--retry-failed", action="store_true", help="with --resume: rerun failures")
    _add_backend_options(sw)
    sw.set_defaults(func=_cmd_sweep)

    an = sub.add_parser("analyze", help="sensitivity, best points and Pareto front of a sweep")
    an.add_argument("store", help="results directory of a sweep")
    an.add_argument("--best", default="cac", help="KPI to optimise (default: cac)")
    an.add_argument("--maximize", action="store_true", help="maximise --best instead")
    an.add_argument(
        "--constraint", action="append", default=[], help="e.g. 'burnout_index <= 0.3' (repeatable)"
    )
    an.add_argument("--top", type=int, default=5)
    an.set_defaults(func=_cmd_analyze)

    _add_optimize_command(sub)

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
    _add_backend_options(opt)
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
    print(result.sentence())
    for warning in result.warnings:
        print(f"warning: {warning}")
    sims = result.simulations
    print(
        f"{len(result.trials)} trials ({result.search.failed} failed in this run), "
        f"{sims['total']:,} simulations; study in {result.path}"
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
    from simfunnel.metrics import KPI_DOCS

    runs = replicate(
        args.scenario,
        args.n,
        args.seed,
        overrides=_overrides(args.set),
        target_kpi=args.kpi,
        precision=args.precision,
        max_n=args.max_n,
        backend=args.backend,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
    )
    if args.csv:
        runs.to_csv(args.csv, index=False)
    table = summarize(runs.drop(columns=["scenario"]))
    print(f"{runs['scenario'].iloc[0]}: {len(runs)} replications, 95% t intervals")
    print(f"  {'kpi':<22} {'mean':>14} {'95% CI':>31} {'rel. half-width':>16}")
    for kpi in KPI_DOCS:
        row = table.loc[kpi]
        ci = f"[{format_value(row.ci_low)}, {format_value(row.ci_high)}]"
        print(
            f"  {kpi:<22} {format_value(row['mean']):>14} {ci:>31} {_pct(row.rel_half_width):>16}"
        )
    return 0


def _pct(x: float) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else f"{100 * x:+.1f}%".lstrip("+")


def _cmd_compare(args: argparse.Namespace) -> int:
    from simfunnel.experiments.comparison import HEADLINE_KPIS, compare

    kpis = _kpi_list(args.kpis, HEADLINE_KPIS)
    result = compare(
        args.scenarios,
        args.n,
        args.seed,
        baseline=args.baseline,
        overrides=_overrides(args.set),
        backend=args.backend,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
    )
    table = result.table(kpis)
    if args.json:
        records = table.reset_index().replace({math.nan: None}).to_dict(orient="records")
        print(
            json.dumps(
                {
                    "baseline": result.baseline,
                    "replications": args.n,
                    "confidence": result.confidence,
                    "rows": records,
                },
                indent=2,
            )
        )
        return 0
    if args.csv:
        table.to_csv(args.csv)
    print(
        f"{args.n} replications each with common random numbers; baseline "
        f"{result.baseline}; 95% intervals; * = paired difference significant"
    )
    head = (
        f"  {'kpi':<22} {'scenario':<16} {'mean':>12} {'95% CI':>27} "
        f"{'vs baseline':>12} {'95% CI of difference':>27} {'change':>8}"
    )
    print(head)
    for (kpi, label), row in table.iterrows():
        ci = f"[{format_value(row.ci_low)}, {format_value(row.ci_high)}]"
        line = f"  {kpi:<22} {label:<16} {format_value(row['mean']):>12} {ci:>27}"
        if label != result.baseline:
            dci = f"[{format_value(row.diff_low)}, {format_value(row.diff_high)}]"
            mark = " *" if row.significant else ""
            line += f" {format_value(row['diff']):>12} {dci:>27} {_pct(row.rel_change):>8}{mark}"
        print(line)
    if args.csv:
        print(f"table written to {args.csv}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from simfunnel.experiments.sweep import run_sweep

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


def _cmd_report(args: argparse.Namespace) -> int:
    import yaml

    from simfunnel.reporting import report

    if args.list:
        for name, path in report.available_notebooks().items():
            print(name)
            for param in report.notebook_parameters(path).values():
                helptext = f"  # {param['help']}" if param["help"] else ""
                print(
                    f"    {param['name']}: {param['inferred_type_name']} = "
                    f"{param['default']}{helptext}"
                )
        return 0
    if not args.notebook or not args.out:
        raise SimfunnelError("report: give a NOTEBOOK and --out DIR (or --list)")
    given: dict[str, Any] = {}
    for name, value in args.parameter:
        try:
            given[name] = yaml.safe_load(value)
        except yaml.YAMLError:
            given[name] = value
    sets = [given]
    if args.parameters_file:
        try:
            with open(args.parameters_file, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except OSError as exc:
            raise SimfunnelError(f"-f {args.parameters_file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise SimfunnelError(f"-f {args.parameters_file}: cannot parse: {first}") from None
        sets = [{**s, **given} for s in report.parameter_sets(data)]
    if len(sets) == 1:
        done = report.run_report(args.notebook, sets[0], args.out)
        conclusion = done.headline.get("conclusion")
        if conclusion:
            print(conclusion)
        print(f"executed notebook: {done.notebook}")
        print(f"headline numbers:  {done.headline_json}")
        print(f"HTML report:       {done.html}")
        return 0
    index = report.run_batch(args.notebook, sets, args.out)
    print(f"{len(sets)} reports; index: {index}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    import pandas as pd

    from simfunnel.experiments.analysis import best_points, point_means, sensitivity
    from simfunnel.experiments.spec import SweepSpec
    from simfunnel.experiments.store import ResultsStore

    store = ResultsStore.open(args.store)
    spec = SweepSpec.model_validate(store.metadata()["spec"])
    means = point_means(store.load(), spec)
    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.float_format", "{:,.4g}".format
    ):
        print(f"sensitivity ({spec.design.kind} design, {len(means)} points):")
        print(sensitivity(args.store).to_string(index=False))
        print()
        rule = " and ".join(args.constraint) or "no constraint"
        word = "most" if args.maximize else "least"
        print(f"{word} {args.best} with {rule}:")
        best = best_points(
            means, args.best, minimize=not args.maximize, constraints=args.constraint, top=args.top
        )
        print(best.to_string() if len(best) else "  no point meets the constraints")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simfunnel`` command."""
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

"""The command line: a thin layer over the public API.

Every error simfunnel raises on purpose becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from simfunnel.errors import SimfunnelError
from simfunnel.metrics import KPI_DOCS
from simfunnel.parameters import (
    bundled_scenarios,
    load_scenario,
    parse_assignment,
    read_scenario_dict,
    scenario_from_dict,
)
from simfunnel.simulation import simulate

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for bad input
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _overrides(assignments: Sequence[str] | None) -> dict[str, Any]:
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
    raw = read_scenario_dict(args.file)
    scenario = scenario_from_dict(raw)
    print(
        f"{args.file}: valid scenario {scenario.name!r} with "
        f"{len(scenario.sources)} source(s) and {scenario.team.reps} reps"
    )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    scenarios = bundled_scenarios()
    width = max(len(n) for n in scenarios)
    for name, description in scenarios.items():
        print(f"{name:<{width}}  {description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``simfunnel``."""
    parser = _Parser(
        prog="simfunnel", description="Sales funnel simulation: more leads, or better ones?"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


#: Later layers (experiments, reports) add their subcommands here.
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simfunnel`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SimfunnelError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for line in problems:
            print(f"simfunnel: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("simfunnel: interrupted", file=sys.stderr)
        return 130

"""How many simulations a report runs, as a function of its parameters.

Each bundled notebook declares here how its parameters set the number of model runs
it makes, so that a report, or a batch over a large parameter grid, is counted and
refused above ``--max-runs`` (as sweeps and optimisations are, with the same limit
and default, :data:`simfunnel.limits.DEFAULT_MAX_RUNS`) before its kernel runs a
cell. A count is an upper bound where the notebook may run fewer (the team sizes of
``volume_vs_quality`` include the scenarios' own, perhaps already listed). A notebook
given by path, or one not declared here, is not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simfunnel.errors import SimfunnelError
from simfunnel.limits import check_runs

Counter = Callable[[dict[str, Any]], int]


def _scenario(p: dict[str, Any]) -> int:
    return int(p["replications"])


def _volume_vs_quality(p: dict[str, Any]) -> int:
    sizes = len(set(p["team_sizes"])) + 1  # the scenarios' own team is added
    return len(p["scenarios"]) * sizes * int(p["replications"])


def _parameter_sweep(p: dict[str, Any]) -> int:
    from simfunnel.experiments.designs import design_size
    from simfunnel.experiments.spec import load_spec

    spec = load_spec(p["spec_path"] or p["spec"])
    return design_size(spec) * spec.replications


def _budget_mix(p: dict[str, Any]) -> int:
    from simfunnel.optimization.search import search_runs
    from simfunnel.optimization.spec import load_optimize_spec

    spec = load_optimize_spec(p["spec"] or p["example"])
    studies = 1 + (len(p["team_sizes"]) if spec.budget is not None else 0)
    return studies * search_runs(spec)[0]


def _calibration(p: dict[str, Any]) -> int:
    """The calibration report's runs, at most; none when it reads saved results.

    The fit (its budget of evaluations, each ``replications`` runs, and the run that
    sizes a team the export does not show), the fit check, and with a holdout a second
    fit and the back-test's forecasts.
    """
    if p.get("results"):
        return 0
    fit = int(p["max_evaluations"]) * int(p["replications"]) + 1
    runs = fit + int(p["check_replications"])
    if float(p["holdout"]) > 0:
        runs += fit + int(p["backtest_replications"])
    return runs


#: Runs of each bundled notebook, from its parameters (defaults filled in).
RUNS: dict[str, Counter] = {
    "scenario": _scenario,
    "volume_vs_quality": _volume_vs_quality,
    "parameter_sweep": _parameter_sweep,
    "budget_mix": _budget_mix,
    "calibration": _calibration,
}


def _defaults(declared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name, info in declared.items():
        try:
            out[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError, TypeError):
            continue
    return out


def report_runs(path: Path, declared: dict[str, dict[str, Any]], params: dict[str, Any]) -> int:
    """The runs of one report of the bundled notebook ``path``; 0 if it is not counted."""
    from simfunnel.reporting.report import available_notebooks

    counter = RUNS.get(path.stem)
    bundled = available_notebooks().get(path.stem)
    if counter is None or bundled is None or bundled.resolve() != path.resolve():
        return 0
    try:
        return counter({**_defaults(declared), **params})
    except SimfunnelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0  # a parameter of the wrong shape: the notebook says so itself


def check_report_runs(
    path: Path,
    declared: dict[str, dict[str, Any]],
    sets: list[dict[str, Any]],
    max_runs: int | None = None,
) -> int:
    """Refuse reports that would run more than ``max_runs`` simulations; their count.

    Raises
    ------
    LimitError
        Stating the count, how it comes about, and the limit.
    SpecError
        A spec parameter (``parameter_sweep``, ``budget_mix``) is invalid.
    """
    counts = [report_runs(path, declared, params) for params in sets]
    total = sum(counts)
    if len(sets) == 1:
        what = f"one {path.stem} report"
    else:
        what = f"{len(sets):,} {path.stem} reports, up to {max(counts):,} runs each"
    check_runs(total, what, max_runs)
    return total

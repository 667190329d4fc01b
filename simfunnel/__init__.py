"""simfunnel: should we buy more leads, or better ones.

A SimPy discrete-event model of a sales funnel, with the experiments and reports
built on it. The public API:

>>> import simfunnel
>>> result = simfunnel.simulate("quality_heavy", seed=1)
>>> result.kpis["cac"] > 0
True

The names below are imported on first use, so that ``import simfunnel`` (and the
command line's ``--help``) does not pay for scipy, pandas, SALib or Dask up front.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from simfunnel.errors import ScenarioError, SimfunnelError, SpecError, StoreError
from simfunnel.version import __version__

if TYPE_CHECKING:
    from simfunnel.calibration.pipeline import Calibration, calibrate
    from simfunnel.experiments.across import AcrossComparison, compare_across
    from simfunnel.experiments.analysis import (
        best_points,
        pareto_front,
        point_means,
        sensitivity,
    )
    from simfunnel.experiments.backends import make_backend
    from simfunnel.experiments.comparison import Comparison, compare
    from simfunnel.experiments.replications import replicate, summarize
    from simfunnel.experiments.spec import SweepSpec, load_spec
    from simfunnel.experiments.store import load_results
    from simfunnel.experiments.sweep import SweepSummary, run_sweep
    from simfunnel.explain import explain
    from simfunnel.metrics import KPI_DOCS, KPI_NAMES
    from simfunnel.optimization import (
        OptimizationResult,
        OptimizeSpec,
        load_optimize_spec,
        optimize,
    )
    from simfunnel.origins import field_origins
    from simfunnel.parameters import Scenario, bundled_scenarios, load_scenario
    from simfunnel.queueing import erlang_a, erlang_c, textbook_scenario
    from simfunnel.simulation import SimulationResult, simulate

#: Where each lazily imported public name lives.
_LAZY = {
    "Calibration": "simfunnel.calibration.pipeline",
    "calibrate": "simfunnel.calibration.pipeline",
    "AcrossComparison": "simfunnel.experiments.across",
    "compare_across": "simfunnel.experiments.across",
    "best_points": "simfunnel.experiments.analysis",
    "pareto_front": "simfunnel.experiments.analysis",
    "point_means": "simfunnel.experiments.analysis",
    "sensitivity": "simfunnel.experiments.analysis",
    "make_backend": "simfunnel.experiments.backends",
    "Comparison": "simfunnel.experiments.comparison",
    "compare": "simfunnel.experiments.comparison",
    "replicate": "simfunnel.experiments.replications",
    "summarize": "simfunnel.experiments.replications",
    "SweepSpec": "simfunnel.experiments.spec",
    "load_spec": "simfunnel.experiments.spec",
    "load_results": "simfunnel.experiments.store",
    "SweepSummary": "simfunnel.experiments.sweep",
    "run_sweep": "simfunnel.experiments.sweep",
    "explain": "simfunnel.explain",
    "field_origins": "simfunnel.origins",
    "KPI_DOCS": "simfunnel.metrics",
    "KPI_NAMES": "simfunnel.metrics",
    "OptimizationResult": "simfunnel.optimization",
    "OptimizeSpec": "simfunnel.optimization",
    "load_optimize_spec": "simfunnel.optimization",
    "optimize": "simfunnel.optimization",
    "Scenario": "simfunnel.parameters",
    "bundled_scenarios": "simfunnel.parameters",
    "load_scenario": "simfunnel.parameters",
    "erlang_a": "simfunnel.queueing",
    "erlang_c": "simfunnel.queueing",
    "textbook_scenario": "simfunnel.queueing",
    "SimulationResult": "simfunnel.simulation",
    "simulate": "simfunnel.simulation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simfunnel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "KPI_DOCS",
    "KPI_NAMES",
    "AcrossComparison",
    "Calibration",
    "Comparison",
    "OptimizationResult",
    "OptimizeSpec",
    "Scenario",
    "ScenarioError",
    "SimfunnelError",
    "SimulationResult",
    "SpecError",
    "StoreError",
    "SweepSpec",
    "SweepSummary",
    "__version__",
    "best_points",
    "bundled_scenarios",
    "calibrate",
    "compare",
    "compare_across",
    "erlang_a",
    "erlang_c",
    "explain",
    "field_origins",
    "load_optimize_spec",
    "load_results",
    "load_scenario",
    "load_spec",
    "make_backend",
    "optimize",
    "pareto_front",
    "point_means",
    "replicate",
    "run_sweep",
    "sensitivity",
    "simulate",
    "summarize",
    "textbook_scenario",
]

"""simfunnel: should we buy more leads, or better ones.

A SimPy discrete-event model of a sales funnel, with the experiments and reports
built on it. The public API:

>>> import simfunnel
>>> result = simfunnel.simulate("quality_heavy", seed=1)
>>> result.kpis["cac"] > 0
True
"""

from simfunnel.errors import ScenarioError, SimfunnelError, SpecError, StoreError
from simfunnel.experiments.analysis import best_points, pareto_front, point_means, sensitivity
from simfunnel.experiments.backends import make_backend
from simfunnel.experiments.comparison import Comparison, compare
from simfunnel.experiments.replications import replicate, summarize
from simfunnel.experiments.spec import SweepSpec, load_spec
from simfunnel.experiments.store import load_results
from simfunnel.experiments.sweep import SweepSummary, run_sweep
from simfunnel.metrics import KPI_DOCS, KPI_NAMES
from simfunnel.optimization import (
    OptimizationResult,
    OptimizeSpec,
    load_optimize_spec,
    optimize,
)
from simfunnel.parameters import Scenario, bundled_scenarios, load_scenario
from simfunnel.queueing import erlang_a, erlang_c, textbook_scenario
from simfunnel.simulation import SimulationResult, simulate
from simfunnel.version import __version__

__all__ = [
    "KPI_DOCS",
    "KPI_NAMES",
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
    "compare",
    "erlang_a",
    "erlang_c",
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

"""simfunnel: should we buy more leads, or better ones.

A SimPy discrete-event model of a sales funnel, with the experiments and reports
built on it. The public API:

>>> import simfunnel
>>> result = simfunnel.simulate("quality_heavy", seed=1)
>>> result.kpis["cac"] > 0
True
"""

from simfunnel.errors import ScenarioError, SimfunnelError, SpecError, StoreError
from simfunnel.metrics import KPI_DOCS, KPI_NAMES
from simfunnel.parameters import Scenario, bundled_scenarios, load_scenario
from simfunnel.queueing import erlang_a, erlang_c, textbook_scenario
from simfunnel.simulation import SimulationResult, simulate

__version__ = "0.1.0"

__all__ = [
    "KPI_DOCS",
    "KPI_NAMES",
    "Scenario",
    "ScenarioError",
    "SimfunnelError",
    "SimulationResult",
    "SpecError",
    "StoreError",
    "__version__",
    "bundled_scenarios",
    "erlang_a",
    "erlang_c",
    "load_scenario",
    "simulate",
    "textbook_scenario",
]

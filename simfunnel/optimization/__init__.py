"""Budget-split and team optimisation: Optuna's search on the simulation, noise-aware choice.

- :mod:`~simfunnel.optimization.spec`: what may change, what is wanted, constraints;
- :mod:`~simfunnel.optimization.simplex`: a budget split as a point of the unit cube;
- :mod:`~simfunnel.optimization.search`: Optuna's ask-and-tell loop on the backends;
- :mod:`~simfunnel.optimization.select`: re-runs of the best candidates, ranking and
  selection with common random numbers;
- :mod:`~simfunnel.optimization.answer`: the answer in words;
- :mod:`~simfunnel.optimization.result`: :func:`optimize` and its result;
- :mod:`~simfunnel.optimization.team`: the optimum re-found at several team sizes.

Optuna is imported only when a search runs, so ``import simfunnel`` stays quick.
"""

from simfunnel.optimization.result import OptimizationResult, optimize
from simfunnel.optimization.spec import OptimizeSpec, load_optimize_spec
from simfunnel.optimization.team import optimize_by_team_size

__all__ = [
    "OptimizationResult",
    "OptimizeSpec",
    "load_optimize_spec",
    "optimize",
    "optimize_by_team_size",
]

"""The unit of work sent to a backend: one point's replications, as a picklable task."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simfunnel.parameters import load_scenario
from simfunnel.simulation import simulate

#: A model other than the funnel: ``model(params, seed) -> {output: value}``.
ModelFunction = Callable[[dict[str, Any], int], dict[str, float]]


@dataclass(frozen=True)
class PointTask:
    """Replications of one point: a base scenario with overrides, or a custom model.

    Attributes
    ----------
    point
        Identifier of the point (a sweep's point index, or a scenario label).
    params
        Dotted-path overrides applied to ``scenario`` (or the custom model's inputs).
    seeds, replications
        The replication seeds and their indices, in the same order.
    scenario
        The base scenario as a plain dict (JSON-ready), for the funnel model.
    model
        A picklable custom model; when given, ``scenario`` is not used.
    max_leads
        The lead limit of each funnel run (see :mod:`simfunnel.limits`).
    """

    point: Any
    params: dict[str, Any]
    seeds: tuple[int, ...]
    replications: tuple[int, ...]
    scenario: dict[str, Any] | None = None
    model: ModelFunction | None = field(default=None, compare=False)
    max_leads: int | None = None


def run_point(task: PointTask) -> list[dict[str, Any]]:
    """Run every replication of ``task``; one row per replication with its KPIs."""
    rows: list[dict[str, Any]] = []
    if task.model is None:
        assert task.scenario is not None
        scenario = load_scenario(task.scenario, task.params)
    for replication, seed in zip(task.replications, task.seeds, strict=True):
        start = time.perf_counter()
        if task.model is None:
            outputs = simulate(scenario, seed=seed, max_leads=task.max_leads).kpis
        else:
            outputs = {k: float(v) for k, v in task.model(dict(task.params), seed).items()}
        rows.append(
            {
                "replication": replication,
                "seed": seed,
                **outputs,
                "elapsed_seconds": time.perf_counter() - start,
            }
        )
    return rows

"""One run of a scenario: :func:`simulate` and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from simfunnel import metrics
from simfunnel.limits import check_scenario
from simfunnel.model import FunnelModel, Records
from simfunnel.parameters import Scenario, load_scenario
from simfunnel.streams import check_seed


@dataclass(frozen=True)
class SimulationResult:
    """The outcome of one run.

    Attributes
    ----------
    scenario
        The validated scenario that was run.
    seed
        The root seed of the run.
    records
        The raw columnar records (:class:`simfunnel.model.Records`).
    """

    scenario: Scenario
    seed: int
    records: Records = field(repr=False)

    @cached_property
    def kpis(self) -> dict[str, float]:
        """Headline KPIs (see :data:`simfunnel.metrics.KPI_DOCS`), by ``run.accounting``."""
        return metrics.kpis(self.records, self.scenario)

    @cached_property
    def window_kpis(self) -> dict[str, float]:
        """The KPIs of the calendar window: what had happened by the horizon."""
        return metrics.kpis(self.records, self.scenario, "window")

    @cached_property
    def leads(self) -> pd.DataFrame:
        """One row per lead."""
        return metrics.leads_frame(self.records)

    @cached_property
    def reps(self) -> pd.DataFrame:
        """One row per rep per week."""
        return metrics.rep_weeks_frame(self.records)

    @cached_property
    def rep_days(self) -> pd.DataFrame:
        """One row per rep per day."""
        return metrics.rep_days_frame(self.records)

    def funnel(self, accounting: str | None = None) -> pd.DataFrame:
        """The funnel by source, with stage-to-stage rates."""
        return metrics.funnel_by_source(self.records, self.scenario, accounting)

    def costs(self, accounting: str | None = None) -> pd.DataFrame:
        """Costs, CPL, CAC and LTV by source."""
        return metrics.costs_by_source(self.records, self.scenario, accounting)

    def contact_attempts(self, accounting: str | None = None) -> pd.DataFrame:
        """Won leads by the attempt on which they were first reached."""
        return metrics.contact_attempts(self.records, self.scenario, accounting)


def simulate(
    scenario: Scenario | str | Path | dict[str, Any],
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    max_leads: int | None = None,
) -> SimulationResult:
    """Run one replication of a scenario.

    Parameters
    ----------
    scenario
        A Scenario, a bundled scenario's name, a file path or a dict.
    seed
        Root seed; defaults to the scenario's ``run.seed``.
    overrides
        Dotted-path overrides, e.g. ``{"team.reps": 12}``.
    max_leads
        Refuse a run expected to simulate more leads than this (or to need their
        memory), before allocating anything; default
        :data:`simfunnel.limits.DEFAULT_MAX_LEADS`.

    Returns
    -------
    SimulationResult
        With ``.kpis``, ``.leads``, ``.reps`` and ``.scenario``.

    Raises
    ------
    ScenarioError
        An invalid scenario or override.
    LimitError
        The run would exceed ``max_leads``.
    """
    if seed is not None:
        check_seed(seed)
    sc = (
        load_scenario(scenario, overrides)
        if overrides or not isinstance(scenario, Scenario)
        else scenario
    )
    check_scenario(sc, max_leads)
    model = FunnelModel(sc, seed)
    return SimulationResult(scenario=sc, seed=model.seed, records=model.run())

"""The optimisation specification: decision variables, objectives, constraints, effort.

Kept apart from the scenario, like a sweep spec. A spec names its base scenario and
overrides, the **decision variables** (a budget split with a fixed weekly total over
chosen sources, and any other scenario field by dotted path with a range or levels),
one or more **objectives** (any KPI of :data:`simfunnel.metrics.KPI_DOCS`, with a
direction), **constraints** on any KPI, and how hard to search and select.

Constraints are written in a form papermill parameters can carry, a mapping of bounds
by KPI (``{burnout_index: {max: 0.35}}``), or as strings such as
``"burnout_index <= 0.35"`` (parsed by a regular expression, never evaluated).

The whole spec is checked before anything runs: every source and KPI exists, the
share bounds can sum to 1, integer parameters have whole-number bounds, and every
range end and level gives a valid scenario.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simfunnel.errors import ScenarioError, SpecError
from simfunnel.experiments.analysis import constraint_list
from simfunnel.experiments.spec import Parameter, read_spec_file, spec_scenario
from simfunnel.metrics import KPI_DOCS
from simfunnel.parameters import Scenario, validation_problems

Direction = Literal["minimize", "maximize"]
SamplerName = Literal["auto", "tpe", "random", "nsga2", "cmaes"]

#: KPIs that are better when larger; the default direction of an objective.
MAXIMIZE: frozenset[str] = frozenset(
    {
        "leads",
        "contacted",
        "qualified",
        "opportunities",
        "customers",
        "revenue",
        "conversion_rate",
        "contact_rate",
        "return_on_spend",
        "ltv",
        "ltv_to_cac",
        "lifetime_revenue",
        "profit",
    }
)
#: KPIs that are better when smaller.
MINIMIZE: frozenset[str] = frozenset(
    {
        "marketing_spend",
        "sales_cost",
        "nurture_cost",
        "hiring_cost",
        "total_cost",
        "cpl",
        "cac",
        "cac_payback_months",
        "median_response_hours",
        "p90_response_hours",
        "stale_share",
        "unworked_share",
        "burnout_index",
        "reps_quit",
        "hires",
        "backlog_end",
    }
)

_DIRECTION_WORDS = {
    "min": "minimize",
    "minimize": "minimize",
    "minimise": "minimize",
    "max": "maximize",
    "maximize": "maximize",
    "maximise": "maximize",
}


def default_direction(kpi: str) -> Direction:
    """The natural direction of a KPI: down for costs and strain, up for output and value.

    Raises
    ------
    SpecError
        For a KPI whose better direction depends on the question (utilisation, the
        nurtured share): give it explicitly.
    """
    if kpi in MAXIMIZE:
        return "maximize"
    if kpi in MINIMIZE:
        return "minimize"
    raise SpecError(
        f"objective {kpi}: no default direction for this KPI; write {{{kpi}: minimize}} "
        f"or {{{kpi}: maximize}}"
    )


def check_kpi(kpi: str, where: str) -> str:
    """``kpi`` if it is a KPI of :data:`KPI_DOCS`, else a one-line :class:`SpecError`."""
    if kpi not in KPI_DOCS:
        raise SpecError(f"{where}: unknown KPI {kpi!r} (known: {', '.join(KPI_DOCS)})")
    return kpi


class Objective(BaseModel):
    """One objective: a KPI and whether to minimise or maximise its mean."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: str
    direction: Direction

    @property
    def minimize(self) -> bool:
        """True when smaller is better."""
        return self.direction == "minimize"


class Constraint(BaseModel):
    """A bound on a KPI's mean: ``kpi <= value`` (``max``) or ``kpi >= value`` (``min``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: str
    op: Literal["<=", ">="]
    value: float

    def violation(self, mean: float) -> float:
        """How far ``mean`` is on the wrong side (<= 0 when met); NaN counts as violated."""
        if not math.isfinite(mean):
            return math.inf
        return mean - self.value if self.op == "<=" else self.value - mean

    def describe(self) -> str:
        """``burnout_index <= 0.35``."""
        return f"{self.kpi} {self.op} {self.value:g}"


class BudgetSplit(BaseModel):
    """A weekly budget split over chosen sources with a fixed total.

    ``min_share`` and ``max_share`` are one share for every source, or a mapping of
    shares by source (sources left out get 0 and 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    total_per_week_usd: float = Field(gt=0, le=1e9, description="USD per week, whole dollars")
    sources: tuple[str, ...] = Field(min_length=2)
    min_share: float | dict[str, float] = 0.0
    max_share: float | dict[str, float] = 1.0

    @field_validator("total_per_week_usd")
    @classmethod
    def _whole_dollars(cls, value: float) -> float:
        if not float(value).is_integer():
            raise ValueError(f"must be a whole number of dollars, got {value:g}")
        return value

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({s for s in value if value.count(s) > 1})
        if repeated:
            raise ValueError(f"sources repeat: {', '.join(repeated)}")
        return value

    def _shares(self, field: str, default: float) -> list[float]:
        given = getattr(self, field)
        if isinstance(given, dict):
            unknown = [s for s in given if s not in self.sources]
            if unknown:
                raise SpecError(
                    f"budget.{field}: {unknown[0]!r} is not one of the budget's sources "
                    f"({', '.join(self.sources)})"
                )
            return [float(given.get(s, default)) for s in self.sources]
        return [float(given)] * len(self.sources)

    def bounds(self) -> tuple[list[float], list[float]]:
        """Minimum and maximum share of each source, in source order.

        Raises
        ------
        SpecError
            A share outside [0, 1], a minimum above its maximum, or bounds whose
            shares cannot add up to 1.
        """
        lows, highs = self._shares("min_share", 0.0), self._shares("max_share", 1.0)
        for source, lo, hi in zip(self.sources, lows, highs, strict=True):
            if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
                raise SpecError(
                    f"budget: the shares of {source} must lie in [0, 1], got min {lo:g}, max {hi:g}"
                )
            if lo > hi:
                raise SpecError(
                    f"budget: the minimum share of {source} ({lo:g}) is above its maximum ({hi:g})"
                )
        if sum(lows) > 1.0 + 1e-9:
            raise SpecError(
                f"budget.min_share: the minimum shares add up to {sum(lows):g}, above 1; "
                "no split of the total can meet them"
            )
        if sum(highs) < 1.0 - 1e-9:
            raise SpecError(
                f"budget.max_share: the maximum shares add up to {sum(highs):g}, below 1; "
                "no split can spend the whole total"
            )
        return lows, highs

    def dollar_bounds(self) -> tuple[list[int], list[int]]:
        """Whole-dollar bounds of each source: ceil(min share x total), floor(max share x total)."""
        lows, highs = self.bounds()
        total = int(self.total_per_week_usd)
        lo = [math.ceil(round(s * total, 6)) for s in lows]
        hi = [math.floor(round(s * total, 6)) for s in highs]
        for source, a, b in zip(self.sources, lo, hi, strict=True):
            if a > b:
                raise SpecError(
                    f"budget: in whole dollars the share bounds of {source} leave no amount "
                    f"(from ${a:,} to ${b:,})"
                )
        if sum(lo) > total or sum(hi) < total:
            raise SpecError("budget: in whole dollars the share bounds cannot add up to the total")
        return lo, hi


class Selection(BaseModel):
    """How the final choice is made: the top candidates re-run with more replications."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top: int = Field(5, ge=1, le=100, description="candidates re-evaluated")
    replications: int = Field(20, ge=2, le=100_000, description="fresh common seeds")
    confidence: float = Field(0.95, gt=0.5, lt=1)


class OptimizeSpec(BaseModel):
    """A complete optimisation: what may change, what is wanted, how hard to look."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str | dict[str, Any] = Field(description="bundled name, file path or inline dict")
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every trial")
    budget: BudgetSplit | None = None
    parameters: tuple[Parameter, ...] = ()
    # Checked by objectives() and constraint_list(), for messages that name the KPI.
    objective: Any = Field("cac", description="a KPI, {kpi: direction}, or a list of them")
    constraints: Any = Field(
        default_factory=dict, description="{kpi: {max: x, min: y}} or ['kpi <= x', ...]"
    )
    replications: int = Field(5, ge=1, le=100_000, description="per trial, common seeds")
    trials: int = Field(60, ge=1, le=1_000_000, description="the trial budget")
    batch_size: int = Field(
        8, ge=1, le=10_000, description="trials asked at once and run in parallel"
    )
    sampler: SamplerName = "auto"
    seed: int = Field(1, ge=0)
    selection: Selection = Selection()

    # ---------------------------------------------------------- normalised views

    def objectives(self) -> list[Objective]:
        """The objectives as (KPI, direction), checked against :data:`KPI_DOCS`."""
        items = self.objective if isinstance(self.objective, list) else [self.objective]
        out: list[Objective] = []
        for item in items:
            if isinstance(item, str):
                kpi = check_kpi(item.strip(), "objective")
                out.append(Objective(kpi=kpi, direction=default_direction(kpi)))
                continue
            if not isinstance(item, dict):
                raise SpecError(
                    f"objective: expected a KPI name or {{kpi: direction}}, got {item!r}"
                )
            for kpi, word in item.items():
                check_kpi(kpi, "objective")
                direction = _DIRECTION_WORDS.get(str(word).strip().lower())
                if direction is None:
                    raise SpecError(
                        f"objective {kpi}: direction must be minimize or maximize, got {word!r}"
                    )
                out.append(Objective.model_validate({"kpi": kpi, "direction": direction}))
        if not out:
            raise SpecError("objective: give at least one KPI")
        kpis = [o.kpi for o in out]
        repeated = sorted({k for k in kpis if kpis.count(k) > 1})
        if repeated:
            raise SpecError(f"objective: {repeated[0]} is given twice")
        return out

    def constraint_list(self) -> list[Constraint]:
        """The constraints, each a KPI, ``<=`` or ``>=``, and a bound."""
        given = self.constraints
        if isinstance(given, str):
            given = [given] if given.strip() else []
        if given is None:
            given = {}
        if isinstance(given, list | tuple):
            for rule in given:
                if not isinstance(rule, str):
                    raise SpecError(f"constraint {rule!r}: expected a rule such as 'kpi <= value'")
        elif not isinstance(given, dict):
            raise SpecError(
                f"constraints: expected {{kpi: {{max: x}}}} or a list of rules, got {given!r}"
            )
        if isinstance(given, dict):
            for kpi, bounds in given.items():
                check_kpi(kpi, "constraint")
                if isinstance(bounds, dict):
                    for key, value in bounds.items():
                        if key not in ("min", "max"):
                            raise SpecError(
                                f"constraint {kpi}: expected min and/or max, got {key!r}"
                            )
                        if isinstance(value, bool) or not isinstance(value, int | float):
                            raise SpecError(
                                f"constraint {kpi}: {key} must be a number, got {value!r}"
                            )
        try:
            parsed = constraint_list(given)
        except SpecError as exc:
            raise SpecError(str(exc).replace("(or >=, <, >, ==)", "(or >=)")) from None
        out = []
        for kpi, op, value in parsed:
            check_kpi(kpi, "constraint")
            if op == "==":
                raise SpecError(f"constraint {kpi} == {value:g}: use <= or >= (a noisy KPI)")
            if not math.isfinite(value):
                raise SpecError(f"constraint {kpi}: the bound must be a finite number")
            out.append(Constraint(kpi=kpi, op="<=" if op in ("<=", "<") else ">=", value=value))
        return out

    def kpis(self) -> list[str]:
        """Every KPI the optimisation reads: objectives, then constraints."""
        names = [o.kpi for o in self.objectives()] + [c.kpi for c in self.constraint_list()]
        return list(dict.fromkeys(names))

    def resolved_sampler(self) -> str:
        """``auto``: NSGA-II for several objectives, TPE for one."""
        if self.sampler != "auto":
            return self.sampler
        return "nsga2" if len(self.objectives()) > 1 else "tpe"

    def decision_paths(self) -> list[str]:
        """The scenario fields a trial sets: budget sources, then the parameters."""
        budget = [budget_path(s) for s in self.budget.sources] if self.budget else []
        return budget + [p.path for p in self.parameters]


def budget_path(source: str) -> str:
    """The dotted path of a source's weekly budget."""
    return f"sources.{source}.budget_per_week_usd"


# ------------------------------------------------------------------- loading


def _problems(exc: ValidationError) -> str:
    return "; ".join(validation_problems(exc, root="spec"))


def read_spec_dict(source: str | Path) -> dict[str, Any]:
    """Read a spec file (YAML or JSON) as a plain dict, one-line errors."""
    return read_spec_file(source, "optimisation spec")


def load_optimize_spec(source: str | Path | dict[str, Any] | OptimizeSpec) -> OptimizeSpec:
    """Read and check an optimisation spec from a file, a dict, or an OptimizeSpec.

    Raises
    ------
    SpecError
        One line naming the first problem, before anything runs.
    """
    if isinstance(source, OptimizeSpec):
        spec = source
    else:
        raw = source if isinstance(source, dict) else read_spec_dict(source)
        try:
            spec = OptimizeSpec.model_validate(raw)
        except ValidationError as exc:
            raise SpecError(_problems(exc)) from None
    check_spec(spec)
    return spec


def default_cost_sources(spec: OptimizeSpec) -> list[str]:
    """Budget sources whose cost per lead is a default, not the user's figure.

    Read from the scenario's ``provenance:`` block (``simfunnel calibrate`` records the
    cost per lead it could not see as ``default``); a scenario without the block is the
    user's own, and a spec override of the cost counts as given.
    """
    if spec.budget is None:
        return []
    base = base_scenario(spec)
    out = []
    for source in spec.budget.sources:
        path = f"sources.{source}.cost_per_lead_usd"
        entry = base.provenance.get(path)
        if entry is not None and entry.origin == "default" and path not in spec.overrides:
            out.append(source)
    return out


def base_scenario(spec: OptimizeSpec) -> Scenario:
    """The spec's base scenario with its overrides, validated."""
    return spec_scenario(spec.scenario, spec.overrides)


def value_at(raw: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a raw scenario dict (sources by name), or None."""
    node: Any = raw
    for part in dotted.split("."):
        if isinstance(node, list):
            named = [item for item in node if isinstance(item, dict) and item.get("name") == part]
            if named:
                node = named[0]
            elif part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def parameter_is_integer(p: Parameter, base_raw: dict[str, Any]) -> bool:
    """Whether a ranged parameter takes whole numbers: said so, or an integer field."""
    if p.integer is not None:
        return p.integer
    current = value_at(base_raw, p.path)
    field_is_int = isinstance(current, int) and not isinstance(current, bool)
    return field_is_int or p.is_integer


def check_spec(spec: OptimizeSpec) -> None:
    """Every name exists and every bound is usable; raises one-line :class:`SpecError`."""
    spec.objectives()
    spec.constraint_list()
    if spec.budget is None and not spec.parameters:
        raise SpecError("spec: nothing to optimise; give a budget split and/or parameters")
    base = base_scenario(spec)
    raw = base.model_dump(mode="json")
    names = base.source_names
    if spec.budget is not None:
        for source in spec.budget.sources:
            if source not in names:
                raise SpecError(
                    f"budget.sources: unknown source {source!r} (the scenario has: "
                    f"{', '.join(names)})"
                )
            src = base.sources[names.index(source)]
            if src.budget_per_week_usd is None:
                raise SpecError(
                    f"budget.sources: {source} is given by leads_per_week; give it a "
                    "budget_per_week_usd in the scenario to optimise its budget"
                )
        spec.budget.dollar_bounds()
    paths = [p.path for p in spec.parameters]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise SpecError(f"parameters: {repeated[0]} is given twice")
    budget_paths = set(spec.decision_paths()[: len(spec.budget.sources) if spec.budget else 0])
    for p in spec.parameters:
        if p.path in budget_paths:
            raise SpecError(f"parameter {p.path}: already set by the budget split")
        if p.range is not None and parameter_is_integer(p, raw):
            fractional = [v for v in p.range if not float(v).is_integer()]
            if fractional:
                raise SpecError(
                    f"parameter {p.path}: takes whole numbers, so its range needs whole-number "
                    f"bounds, got {list(p.range)}"
                )
        values: tuple[Any, ...] = p.levels if p.levels is not None else tuple(p.range or ())
        for value in values:
            v = int(value) if p.range is not None and parameter_is_integer(p, raw) else value
            try:
                base.with_overrides({p.path: v})
            except ScenarioError as exc:
                raise SpecError(
                    f"parameter {p.path}: value {v!r} is not valid: {exc.problems[0]}"
                ) from None
    if spec.resolved_sampler() == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise SpecError("sampler: cmaes needs the 'cmaes' package (pip install cmaes)")
    if spec.resolved_sampler() == "cmaes" and len(spec.objectives()) > 1:
        raise SpecError("sampler: cmaes handles one objective; use nsga2 for several")


def spec_fingerprint(spec: OptimizeSpec) -> str:
    """The spec as canonical JSON: two specs are the same study when these agree."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)


def constraints_with(given: Any, extra: list[str]) -> list[str]:
    """The spec's constraints (either form) as strings, followed by ``extra``."""
    if given is None or given == {} or given == "":
        return list(extra)
    if isinstance(given, str):
        return [given, *extra]
    if isinstance(given, dict):
        return [f"{k} {op} {v!r}" for k, op, v in constraint_list(given)] + list(extra)
    if isinstance(given, list):
        return [str(g) for g in given] + list(extra)
    raise SpecError(f"constraints: expected a mapping or a list of rules, got {given!r}")

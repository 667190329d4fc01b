"""The sweep specification: what to vary, how to sample it, what to measure.

Kept apart from the scenario. A spec names its base scenario, the parameters by
dotted path with a range or levels, the design, replications per point, and the
KPIs to analyse. It is checked whole before anything runs: every path exists and
every level and both ends of every range give a valid scenario.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simfunnel.errors import ScenarioError, SpecError
from simfunnel.metrics import KPI_NAMES
from simfunnel.parameters import Scenario, load_scenario, validation_problems
from simfunnel.textio import TextFileError, parse_yaml, read_text, yaml_problem

Number = int | float
Level = int | float | str | bool


class Parameter(BaseModel):
    """One dimension of a sweep: a dotted path with a ``range`` or ``levels``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    path: str = Field(min_length=1, description="dotted path, e.g. team.reps")
    range: tuple[Number, Number] | None = Field(None, description="[low, high], numeric")
    levels: tuple[Level, ...] | None = Field(None, min_length=1)
    integer: bool | None = Field(
        None,
        description="round to whole numbers (default: "
        "true when both ends of the range are integers)",
    )

    @model_validator(mode="after")
    def _one_of(self) -> Parameter:
        if (self.range is None) == (self.levels is None):
            raise ValueError("give exactly one of range and levels")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range: low must be below high, got {list(self.range)}")
        if self.levels is not None and len(set(map(repr, self.levels))) != len(self.levels):
            raise ValueError(f"levels must not repeat, got {list(self.levels)}")
        return self

    @property
    def is_integer(self) -> bool:
        """Whether values are rounded to whole numbers."""
        if self.integer is not None:
            return self.integer
        return self.range is not None and all(isinstance(v, int) for v in self.range)

    @property
    def is_numeric(self) -> bool:
        """True for a range, or levels that are all numbers."""
        if self.range is not None:
            return True
        assert self.levels is not None
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.levels)


class Design(BaseModel):
    """How points are chosen.

    ``grid``: every combination of levels (a range gives ``levels`` evenly spaced
    values); ``lhs``: ``samples`` Latin hypercube points; ``sobol``: Saltelli
    sampling with ``samples`` base samples (``samples * (D + 2)`` points), for
    first- and total-order indices; ``morris``: ``samples`` trajectories on a
    ``levels``-level grid (``samples * (D + 1)`` points).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["grid", "lhs", "sobol", "morris"] = "grid"
    samples: int = Field(16, ge=1, le=1_000_000)
    levels: int = Field(4, ge=2, le=1000)


class SweepSpec(BaseModel):
    """A complete sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    scenario: str | dict[str, Any] = Field(description="bundled name, file path or inline dict")
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every point")
    parameters: tuple[Parameter, ...] = Field(min_length=1)
    design: Design = Design()
    replications: int = Field(5, ge=1, le=100_000)
    seed: int = Field(1, ge=0)
    kpis: tuple[str, ...] = ("cac", "revenue", "burnout_index", "customers", "stale_share")

    @model_validator(mode="after")
    def _checks(self) -> SweepSpec:
        paths = [p.path for p in self.parameters]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            raise ValueError(f"parameters repeat a path: {', '.join(repeated)}")
        if self.design.kind in ("sobol", "morris"):
            for p in self.parameters:
                if not p.is_numeric:
                    raise ValueError(
                        f"parameter {p.path}: {self.design.kind} needs numeric "
                        f"ranges or levels, got {list(p.levels or ())}"
                    )
        return self


def _spec_problems(exc: ValidationError, raw: dict[str, Any]) -> str:
    """The spec's problems in one line, each parameter named by its path."""
    params = raw.get("parameters")
    paths = (
        [p.get("path") if isinstance(p, dict) else None for p in params]
        if isinstance(params, list)
        else []
    )

    def name(match: re.Match[str]) -> str:
        i = int(match.group(1))
        path = paths[i] if i < len(paths) and paths[i] else f"#{i + 1}"
        return f"parameter {path}" + (": " if match.group(2) == "." else ":")

    return "; ".join(
        re.sub(r"^parameters\[(\d+)\]([.:])", name, line)
        for line in validation_problems(exc, root="spec")
    )


def load_spec(source: str | Path | dict[str, Any] | SweepSpec) -> SweepSpec:
    """Read and check a sweep spec from a YAML/JSON file, a dict, or a SweepSpec.

    Raises
    ------
    SpecError
        One line naming the first problem: the parameter, its value and what is allowed.
    """
    if isinstance(source, SweepSpec):
        spec = source
    else:
        raw = source if isinstance(source, dict) else read_spec_file(source, "sweep spec")
        try:
            spec = SweepSpec.model_validate(raw)
        except ValidationError as exc:
            raise SpecError(_spec_problems(exc, raw)) from None
    check_against_scenario(spec)
    return spec


def read_spec_file(source: str | Path, what: str) -> dict[str, Any]:
    """A spec file (YAML or JSON) as a plain dict; ``what`` names it in one-line errors."""
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"{what}: no such file {str(path)!r}")
    try:
        raw = parse_yaml(read_text(path))
    except TextFileError as exc:
        raise SpecError(f"{what}: {str(path)!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{what}: cannot parse {str(path)!r}: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{what}: {str(path)!r} does not hold a mapping of fields")
    return raw


def base_scenario(spec: SweepSpec) -> Scenario:
    """The spec's base scenario with its overrides, validated."""
    return spec_scenario(spec.scenario, spec.overrides)


def spec_scenario(scenario: str | dict[str, Any], overrides: dict[str, Any]) -> Scenario:
    """A spec's scenario with its overrides; its first problem as a one-line SpecError."""
    try:
        return load_scenario(scenario, overrides)
    except ScenarioError as exc:
        raise SpecError(f"scenario: {exc.problems[0]}") from None


def check_against_scenario(spec: SweepSpec) -> None:
    """Every KPI exists, every path exists, and every level and range end is valid."""
    unknown = [k for k in spec.kpis if k not in KPI_NAMES]
    if unknown:
        raise SpecError(f"kpis: unknown KPI {unknown[0]!r} (known: {', '.join(KPI_NAMES)})")
    base = base_scenario(spec)
    for p in spec.parameters:
        values: tuple[Any, ...] = p.levels if p.levels is not None else p.range  # type: ignore[assignment]
        for value in values:
            v = round(value) if p.is_integer and isinstance(value, float) else value
            try:
                base.with_overrides({p.path: v})
            except ScenarioError as exc:
                raise SpecError(
                    f"parameter {p.path}: value {v!r} is not valid: {exc.problems[0]}"
                ) from None

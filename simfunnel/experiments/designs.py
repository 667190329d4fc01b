"""Sampling designs: full factorial grid, Latin hypercube, Sobol (Saltelli), Morris.

A design turns a :class:`~simfunnel.experiments.spec.SweepSpec` into a list of
points, each a dict of dotted path to value, plus (for Sobol and Morris) the unit
sample matrix SALib's analysis needs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

from simfunnel.experiments.spec import Parameter, SweepSpec


@dataclass(frozen=True)
class DesignPoints:
    """The points of a design.

    Attributes
    ----------
    points
        One dict of dotted path to value per point, in design order.
    matrix
        The numeric sample matrix (points x parameters) before rounding, for SALib.
    """

    points: list[dict[str, Any]]
    matrix: np.ndarray | None = None


def salib_problem(spec: SweepSpec) -> dict[str, Any]:
    """The SALib problem of a spec's numeric parameters."""
    bounds = []
    for p in spec.parameters:
        if p.range is not None:
            bounds.append([float(p.range[0]), float(p.range[1])])
        else:
            levels = [float(v) for v in p.levels or ()]
            bounds.append([min(levels), max(levels)])
    return {
        "num_vars": len(spec.parameters),
        "names": [p.path for p in spec.parameters],
        "bounds": bounds,
    }


def _grid_values(p: Parameter, n_levels: int) -> list[Any]:
    if p.levels is not None:
        return list(p.levels)
    assert p.range is not None
    values = np.linspace(float(p.range[0]), float(p.range[1]), n_levels)
    if p.is_integer:
        return sorted({round(float(v)) for v in values})
    return [float(v) for v in values]


def _from_unit(p: Parameter, u: float) -> Any:
    """Map u in [0, 1) to the parameter's value: a range linearly, levels by index."""
    if p.levels is not None:
        return p.levels[min(int(u * len(p.levels)), len(p.levels) - 1)]
    assert p.range is not None
    value = float(p.range[0]) + u * (float(p.range[1]) - float(p.range[0]))
    return round(value) if p.is_integer else value


def _from_numeric(p: Parameter, x: float) -> Any:
    """A SALib sample value for the parameter: rounded, or snapped to the nearest level."""
    if p.levels is not None:
        return min(p.levels, key=lambda v: abs(float(v) - x))
    return round(x) if p.is_integer else float(x)


def design_size(spec: SweepSpec) -> int:
    """The number of points of the spec's design, counted without building it."""
    params = spec.parameters
    kind = spec.design.kind
    if kind == "grid":
        size = 1
        for p in params:
            if p.levels is not None:
                size *= len(p.levels)
            elif p.is_integer:
                assert p.range is not None
                span = round(float(p.range[1])) - round(float(p.range[0])) + 1
                size *= min(spec.design.levels, span)
            else:
                size *= spec.design.levels
        return size
    if kind == "lhs":
        return spec.design.samples
    if kind == "sobol":
        return spec.design.samples * (len(params) + 2)
    return spec.design.samples * (len(params) + 1)


def extreme_overrides(spec: SweepSpec) -> list[dict[str, Any]]:
    """One override per parameter level or range end, for checks before a sweep runs."""
    out = []
    for p in spec.parameters:
        values = p.levels if p.levels is not None else p.range
        for value in values or ():
            v = round(value) if p.is_integer and isinstance(value, float) else value
            out.append({p.path: v})
    return out


def build_design(spec: SweepSpec) -> DesignPoints:
    """The points of the spec's design (deterministic given the spec's seed)."""
    params = spec.parameters
    kind = spec.design.kind
    if kind == "grid":
        axes = [_grid_values(p, spec.design.levels) for p in params]
        points = [
            dict(zip([p.path for p in params], combo, strict=True))
            for combo in itertools.product(*axes)
        ]
        return DesignPoints(points)
    if kind == "lhs":
        unit = qmc.LatinHypercube(d=len(params), seed=spec.seed).random(spec.design.samples)
        points = [
            {p.path: _from_unit(p, float(u)) for p, u in zip(params, row, strict=True)}
            for row in unit
        ]
        return DesignPoints(points, unit)
    problem = salib_problem(spec)
    if kind == "sobol":
        from SALib.sample import sobol

        matrix = sobol.sample(problem, spec.design.samples, calc_second_order=False, seed=spec.seed)
    else:
        from SALib.sample import morris

        matrix = morris.sample(
            problem, spec.design.samples, num_levels=spec.design.levels, seed=spec.seed
        )
    points = [
        {p.path: _from_numeric(p, float(x)) for p, x in zip(params, row, strict=True)}
        for row in matrix
    ]
    return DesignPoints(points, np.asarray(matrix))

"""The budget split's parametrisation: exact sums, bounds, corners, coverage."""

import itertools

import numpy as np
import optuna
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from simfunnel.errors import SpecError
from simfunnel.optimization.search import decision_from_params, distributions
from simfunnel.optimization.simplex import cube_from_split, cube_names, split_from_cube
from simfunnel.optimization.spec import BudgetSplit, load_optimize_spec


@st.composite
def bounded_splits(draw):
    k = draw(st.integers(2, 6))
    total = draw(st.integers(k, 200_000))
    lows = [draw(st.floats(0, 1.0 / k)) for _ in range(k)]
    highs = [draw(st.floats(max(lo, 1.0 / k), 1.0)) for lo in lows]
    budget = BudgetSplit(
        total_per_week_usd=total,
        sources=tuple(f"s{i}" for i in range(k)),
        min_share={f"s{i}": lo for i, lo in enumerate(lows)},
        max_share={f"s{i}": hi for i, hi in enumerate(highs)},
    )
    coords = draw(st.lists(st.floats(0, 1), min_size=k - 1, max_size=k - 1))
    return budget, coords


@given(bounded_splits())
def test_every_point_of_the_cube_is_a_valid_split(case):
    budget, coords = case
    try:
        low, high = budget.dollar_bounds()
    except SpecError:  # e.g. $3 with shares of at most 50% each: refused up front
        assume(False)
    total = int(budget.total_per_week_usd)
    amounts = split_from_cube(coords, total, low, high)
    assert all(isinstance(a, int) for a in amounts)
    assert sum(amounts) == total  # exactly, in whole dollars
    shares_lo, shares_hi = budget.bounds()
    for a, lo, hi, slo, shi in zip(amounts, low, high, shares_lo, shares_hi, strict=True):
        assert lo <= a <= hi
        assert slo * total - 1e-6 <= a <= shi * total + 1e-6


def _vertices(total, low, high):
    """Vertices of {low <= x <= high, sum x = total}: all coordinates at a bound but one."""
    k = len(low)
    found = set()
    for free in range(k):
        others = [i for i in range(k) if i != free]
        for pick in itertools.product((0, 1), repeat=k - 1):
            x = [0] * k
            for i, p in zip(others, pick, strict=True):
                x[i] = high[i] if p else low[i]
            x[free] = total - sum(x[i] for i in others)
            if low[free] <= x[free] <= high[free]:
                found.add(tuple(x))
    return found


@pytest.mark.parametrize(
    ("total", "low", "high"),
    [
        (30_000, [0, 0, 0], [30_000] * 3),
        (30_000, [0, 0, 0, 0], [30_000] * 4),
        (30_000, [3_000, 0, 6_000], [30_000] * 3),
        (30_000, [3_000, 0, 6_000], [15_000, 15_000, 15_000]),
        (10_000, [1_000, 1_000, 0, 2_000], [5_000, 4_000, 6_000, 3_000]),
    ],
)
def test_corners_of_the_cube_give_vertices_and_every_vertex_is_reached(total, low, high):
    k = len(low)
    vertices = _vertices(total, low, high)
    reached = {
        tuple(split_from_cube(list(c), total, low, high))
        for c in itertools.product((0.0, 1.0), repeat=k - 1)
    }
    assert reached <= vertices
    if high == [total] * k:  # minimums only: a shifted simplex, its K corners from the cube's
        corners = {
            tuple(low[i] + (total - sum(low) if i == j else 0) for i in range(k)) for j in range(k)
        }
        assert reached == vertices == corners
    for vertex in vertices:  # with maximums too, some vertices need an inner coordinate
        coords = cube_from_split(list(vertex), total, low, high)
        assert all(0.0 <= c <= 1.0 for c in coords)
        assert tuple(split_from_cube(coords, total, low, high)) == vertex


def test_inverse_map_round_trips():
    low, high = [0, 2_000, 0], [20_000, 20_000, 9_000]
    for amounts in (
        [8_000, 13_000, 9_000],
        [20_000, 2_000, 8_000],
        [1_000, 20_000, 9_000],
        [2_000, 19_000, 9_000],
    ):
        coords = cube_from_split(amounts, 30_000, low, high)
        assert split_from_cube(coords, 30_000, low, high) == amounts


def test_optuna_samples_cover_the_simplex_corners_included():
    spec = load_optimize_spec(
        {
            "scenario": "balanced",
            "budget": {
                "total_per_week_usd": 30_000,
                "sources": ["referral", "organic_search", "paid_social"],
                "max_share": {"paid_social": 0.5},
                "min_share": {"referral": 0.1},
            },
        }
    )
    space = distributions(spec)
    assert list(space) == cube_names(3)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    shares = []
    for _ in range(1000):
        trial = study.ask(space)
        decision = decision_from_params(spec, trial.params)
        amounts = np.array(list(decision.values()), dtype=float)
        assert amounts.sum() == 30_000
        shares.append(amounts / 30_000)
        study.tell(trial, 0.0)
    s = np.array(shares)
    assert s[:, 0].min() >= 0.1 and s[:, 2].max() <= 0.5
    # every vertex of the bounded simplex is approached within 8 points of share
    vertices = np.array([(1.0, 0.0, 0.0), (0.1, 0.9, 0.0), (0.1, 0.4, 0.5), (0.5, 0.0, 0.5)])
    for vertex in vertices:
        assert np.abs(s - vertex).max(axis=1).min() <= 0.08, vertex
    # the sticky edges put sources exactly on their bounds, and one corner exactly
    assert (s[:, 2] == 0).sum() >= 5 and (s[:, 0] == 0.1).sum() >= 5
    assert (s[:, 0] == 1.0).sum() >= 3
    # and the interior is covered: every cell of a coarse grid over the region is visited
    cells = {(int(a * 5), int(c * 5)) for a, _, c in s if 0 < c < 0.5 and 0.1 < a < 1}
    assert len(cells) >= 9

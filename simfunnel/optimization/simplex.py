"""A budget split as a point of the unit cube: every point is a valid split.

A split of a weekly total T over K sources, each source k held between a minimum
L_k and a maximum H_k (whole dollars, from the share bounds), lives on a bounded
simplex. The sampler instead draws K - 1 free coordinates v_1 .. v_{K-1} in [0, 1]
(Optuna floats named ``budget_split_1`` ...), and :func:`split_from_cube` turns
them into dollars by **bounded stick-breaking**, in whole dollars throughout:

1. Each coordinate first sticks to its ends: v' = clip((v - e) / (1 - 2e), 0, 1)
   with e = 0.02, so the outer 2% of each coordinate maps onto the bound itself.
   Faces and corners of the simplex (a source at exactly its minimum, all the
   budget in one source) are then reached with positive probability, not only in
   the limit.
2. With R dollars still to place, source k may take between
   lo_k = max(L_k, R - sum_{j>k} H_j) and hi_k = min(H_k, R - sum_{j>k} L_j): what
   it takes leaves the later sources a feasible remainder. It takes
   a_k = lo_k + round(w_k (hi_k - lo_k)), with w_k = 1 - (1 - v'_k)^(1 / (K - k)),
   the quantile of a Beta(1, K - k) law. Without bounds, uniform coordinates then
   give splits uniform on the simplex (the Dirichlet(1, ..., 1) law).
3. The last source takes the remainder.

So every point of the cube gives amounts that are whole dollars, add up exactly to
T, and respect every source's bounds, and every valid split is reached (each a_k
can take any value of its feasible range). Every corner of the cube gives a vertex
of the bounded simplex; with minimum shares only, the K corners of the simplex are
exactly the images of the cube's corners, and with maximum shares too, the vertices
that hold a source strictly between its bounds come from an inner coordinate.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Share of each coordinate's range, at either end, that maps onto the bound.
STICKY_EDGE = 0.02


def cube_names(n_sources: int) -> list[str]:
    """Names of the free coordinates of a split over ``n_sources`` sources."""
    return [f"budget_split_{k + 1}" for k in range(n_sources - 1)]


def _sticky(v: float) -> float:
    return min(1.0, max(0.0, (v - STICKY_EDGE) / (1.0 - 2.0 * STICKY_EDGE)))


def split_from_cube(
    coords: Sequence[float], total: int, low: Sequence[int], high: Sequence[int]
) -> list[int]:
    """Whole-dollar amounts by source from K - 1 coordinates in [0, 1].

    Parameters
    ----------
    coords
        The free coordinates v_1 .. v_{K-1}, each in [0, 1].
    total
        The weekly total, whole dollars.
    low, high
        Each source's minimum and maximum, whole dollars; ``sum(low) <= total <=
        sum(high)``.

    Returns
    -------
    list of int
        Amounts in source order, adding up to ``total``.
    """
    k_sources = len(low)
    if len(coords) != k_sources - 1 or len(high) != k_sources:
        raise ValueError("a split over K sources takes K - 1 coordinates and K bounds")
    if sum(low) > total or sum(high) < total:
        raise ValueError("the bounds cannot add up to the total")
    amounts: list[int] = []
    remaining = total
    for k, v in enumerate(coords):
        later_low = sum(low[k + 1 :])
        later_high = sum(high[k + 1 :])
        lo = max(low[k], remaining - later_high)
        hi = min(high[k], remaining - later_low)
        w = 1.0 - (1.0 - _sticky(float(v))) ** (1.0 / (k_sources - 1 - k))
        amount = lo + round(w * (hi - lo))
        amounts.append(amount)
        remaining -= amount
    amounts.append(remaining)
    return amounts


def cube_from_split(
    amounts: Sequence[int], total: int, low: Sequence[int], high: Sequence[int]
) -> list[float]:
    """Coordinates that give ``amounts`` back (up to whole-dollar rounding).

    Used to enqueue a known split (the current one) as a trial.
    """
    k_sources = len(low)
    coords: list[float] = []
    remaining = total
    for k in range(k_sources - 1):
        later_low = sum(low[k + 1 :])
        later_high = sum(high[k + 1 :])
        lo = max(low[k], remaining - later_high)
        hi = min(high[k], remaining - later_low)
        amount = min(max(int(amounts[k]), lo), hi)
        w = (amount - lo) / (hi - lo) if hi > lo else 0.0
        sticky = 1.0 - (1.0 - w) ** (k_sources - 1 - k)
        coords.append(STICKY_EDGE + sticky * (1.0 - 2.0 * STICKY_EDGE))
        remaining -= amount
    return coords

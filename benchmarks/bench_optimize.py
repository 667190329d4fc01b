"""Optimiser benchmark: simulations to come within 2% of a dense grid's best CAC.

On the bundled ``balanced`` scenario, the weekly $30,000 of its four sources is split
freely and the team may have 8 to 16 reps. A dense grid (every split in steps of
25% of the total, times reps 8, 10, 12, 14, 16: 175 points) is run with a few
replications per point, and its best point by mean CAC is taken. The optimiser then
runs with growing trial budgets; each recommendation, and the grid's best, are
evaluated again on the same fresh replications (common random numbers), and the
script reports the first budget whose recommendation comes within 2% of the grid's
best, with the simulations each used. Finally, trials per second on 2 workers.

Usage: ``python benchmarks/bench_optimize.py [--horizon 365] [--grid-replications 2]``
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from simfunnel.experiments.backends import Done, make_backend
from simfunnel.experiments.runner import PointTask, run_point
from simfunnel.optimization import optimize
from simfunnel.parameters import load_scenario
from simfunnel.streams import replication_seed

SOURCES = ["paid_social", "paid_search", "organic_search", "referral"]
TOTAL = 30_000
REPS = (8, 10, 12, 14, 16)


def grid_points(step: int = 4) -> list[dict[str, Any]]:
    points = []
    for parts in itertools.product(range(step + 1), repeat=len(SOURCES)):
        if sum(parts) != step:
            continue
        for reps in REPS:
            point: dict[str, Any] = {
                f"sources.{s}.budget_per_week_usd": TOTAL * k // step
                for s, k in zip(SOURCES, parts, strict=True)
            }
            point["team.reps"] = reps
            points.append(point)
    return points


def evaluate(pool: Any, base: dict, points: list[dict], seeds: list[int], first: int) -> np.ndarray:
    """Mean CAC of each point over ``seeds`` (replication indices from ``first``)."""
    reps = tuple(range(first, first + len(seeds)))
    tasks = [PointTask(i, p, tuple(seeds), reps, base) for i, p in enumerate(points)]
    means = np.full(len(points), np.nan)
    for task, outcome in pool.map(run_point, tasks):
        assert isinstance(outcome, Done), outcome
        values = np.array([row["cac"] for row in outcome.value], dtype=float)
        means[int(task.point)] = np.nanmean(values)
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=365)
    parser.add_argument("--grid-replications", type=int, default=2)
    parser.add_argument("--eval-replications", type=int, default=20)
    parser.add_argument("--budgets", default="8,16,32,64")
    args = parser.parse_args()
    overrides = {"run.horizon_days": args.horizon, "run.warmup_days": 28}
    base = load_scenario("balanced", overrides).model_dump(mode="json")
    work = Path(tempfile.mkdtemp(prefix="simfunnel-bench-opt-"))
    root = 7
    try:
        with make_backend("processes", 2) as pool:
            points = grid_points()
            grid_seeds = [replication_seed(root, r) for r in range(args.grid_replications)]
            t0 = time.perf_counter()
            grid = evaluate(pool, base, points, grid_seeds, 0)
            grid_seconds = time.perf_counter() - t0
            grid_sims = len(points) * args.grid_replications
            best_grid = points[int(np.nanargmin(grid))]
            print(
                f"dense grid: {len(points)} points x {args.grid_replications} replications "
                f"= {grid_sims} simulations in {grid_seconds:.0f} s; best mean CAC "
                f"${np.nanmin(grid):,.0f} at {best_grid}"
            )
            eval_seeds = [replication_seed(root, 1000 + r) for r in range(args.eval_replications)]
            candidates = [best_grid]
            runs = []
            for budget in [int(b) for b in args.budgets.split(",")]:
                spec = {
                    "scenario": "balanced",
                    "overrides": overrides,
                    "budget": {"total_per_week_usd": TOTAL, "sources": SOURCES},
                    "parameters": [{"path": "team.reps", "range": [8, 16]}],
                    "objective": "cac",
                    "replications": args.grid_replications,
                    "trials": budget,
                    "batch_size": 4,
                    "seed": root,
                    "selection": {"top": 4, "replications": 8},
                }
                t0 = time.perf_counter()
                result = optimize(spec, work / f"opt-{budget}", backend=pool, progress=False)
                seconds = time.perf_counter() - t0
                assert result.decision is not None
                candidates.append(result.decision)
                runs.append((budget, result, seconds))
            truth = evaluate(pool, base, candidates, eval_seeds, 1000)
            print(
                f"evaluation: {args.eval_replications} fresh common replications each; "
                f"grid best CAC ${truth[0]:,.0f}"
            )
            reached = None
            for (budget, result, seconds), cac in zip(runs, truth[1:], strict=True):
                gap = cac / truth[0] - 1
                sims = result.simulations["total"]
                rate = result.search.trials / result.search.seconds
                print(
                    f"optimiser, {budget:>3} trials: {sims:>4} simulations, CAC ${cac:,.0f} "
                    f"({100 * gap:+.1f}% against the grid's best), {seconds:.0f} s, "
                    f"{rate:.2f} trials/s on 2 workers"
                )
                if reached is None and gap <= 0.02:
                    reached = (budget, sims)
            if reached:
                print(
                    f"within 2% of the grid's best: {reached[0]} trials, {reached[1]} "
                    f"simulations, against the grid's {grid_sims}"
                )
            else:
                print("no trial budget came within 2% of the grid's best")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

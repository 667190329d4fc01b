"""Experiments benchmark: sweep efficiency on 2 workers, and the optimiser's runs per second.

Sweep: one sweep of quality_heavy over 60 days (``--points`` x ``--replications``
runs) runs serially and on a pool of 2 worker processes, in interleaved rounds
(medians). The comparison is fair: both write the same store (the same files and
fsyncs), both run warm (a warm-up sweep first; the pool is started once, before
the rounds, and its start-up reported apart). Efficiency = serial time / (2 x
parallel time); target >= 90%. On a machine shared with other jobs the wall times
say more about the other jobs than about the sweep, so the same sweeps are also
counted in CPU seconds (this process and its workers): serial CPU / parallel CPU
is the efficiency the sweep would reach on two idle cores, its ceiling. The
serial time without the store is printed too, to show what the store costs.

Optimisation workload: the optimiser on the bundled balanced scenario over 90
days (budget split over its four sources, 8 to 16 reps) on the same 2 workers;
prints simulations per second and trials per second, so that a trial budget can
be planned from them.

``--dask`` adds the old Dask LocalCluster comparison.

Usage: ``python benchmarks/bench_experiments.py [--points 24] [--replications 5]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import cpu_seconds, interleaved, label, median

from simfunnel.experiments.backends import make_backend
from simfunnel.experiments.designs import build_design
from simfunnel.experiments.runner import PointTask, run_point
from simfunnel.experiments.spec import base_scenario, load_spec
from simfunnel.experiments.store import load_results
from simfunnel.experiments.sweep import run_sweep
from simfunnel.optimization import optimize
from simfunnel.streams import replication_seed


def spec(points: int, replications: int) -> dict:
    return {
        "scenario": "quality_heavy",
        "overrides": {"run.horizon_days": 60, "run.warmup_days": 7},
        "parameters": [
            {"path": "team.reps", "range": [4, 13]},
            {"path": "sources.referral.budget_per_week_usd", "range": [2000, 16000]},
        ],
        "design": {"kind": "lhs", "samples": points},
        "replications": replications,
        "seed": 1,
    }


def optimise_spec(trials: int) -> dict:
    return {
        "scenario": "balanced",
        "overrides": {"run.horizon_days": 90, "run.warmup_days": 14},
        "budget": {
            "total_per_week_usd": 30_000,
            "sources": ["paid_social", "paid_search", "organic_search", "referral"],
        },
        "parameters": [{"path": "team.reps", "range": [8, 16]}],
        "objective": "cac",
        "replications": 2,
        "trials": trials,
        "batch_size": 4,
        "seed": 7,
        "selection": {"top": 3, "replications": 4},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args()
    print(f"machine: {label()}")
    work = Path(tempfile.mkdtemp(prefix="simfunnel-bench-"))
    counter = iter(range(10**6))

    def sweep(backend: Any) -> Path:
        out = work / f"sweep{next(counter)}"
        summary = run_sweep(s, out, backend=backend, progress=False)
        assert summary.failed == 0
        return out

    try:
        s = spec(args.points, args.replications)
        runs = args.points * args.replications
        with make_backend("processes", 2) as pool:
            warm = spec(4, 2)
            run_sweep(warm, work / "warm-serial", backend="serial", progress=False)
            t0 = time.perf_counter()
            run_sweep(warm, work / "warm-pool", backend=pool, progress=False)
            t_start = time.perf_counter() - t0
            # the same runs without the store: what the simulations alone cost
            sweep_spec = load_spec(s)
            base = base_scenario(sweep_spec).model_dump(mode="json")
            seeds = tuple(replication_seed(1, r) for r in range(args.replications))
            tasks = [
                PointTask(i, point, seeds, tuple(range(len(seeds))), base)
                for i, point in enumerate(build_design(sweep_spec).points)
            ]

            def bare() -> None:
                for task in tasks:
                    run_point(task)

            contenders = {"serial": lambda: sweep("serial"), "pool": lambda: sweep(pool)}
            times = interleaved(contenders, args.rounds)
            # CPU seconds of the same sweeps, this process and its workers together:
            # immune to other jobs, this gives the ceiling of the efficiency on idle cores
            cpu = interleaved(contenders, args.rounds, cpu_seconds)
            t_bare = median(interleaved({"bare": bare}, args.rounds)["bare"])
            t_serial, t_pool = median(times["serial"]), median(times["pool"])
            c_serial, c_pool = median(cpu["serial"]), median(cpu["pool"])
            same = load_results(work / "sweep0").drop(columns=["elapsed_seconds", "run_id"])
            same = same.equals(
                load_results(work / "sweep1").drop(columns=["elapsed_seconds", "run_id"])
            )
            print(
                f"sweep: {args.points} points x {args.replications} replications = {runs} runs "
                f"(quality_heavy, 60 days); {args.rounds} interleaved rounds, medians"
            )
            print(f"  serial, with the store    {t_serial:6.1f} s  {runs / t_serial:6.1f} runs/s")
            print(f"  2 worker processes        {t_pool:6.1f} s  {runs / t_pool:6.1f} runs/s")
            print(
                f"  parallel efficiency       {100 * t_serial / (2 * t_pool):.0f}% by wall time "
                "(target >= 90%; same store writes, warm)"
            )
            print(
                f"  CPU seconds               serial {c_serial:.1f}, parallel {c_pool:.1f} (parent "
                f"and workers): efficiency ceiling {100 * c_serial / c_pool:.0f}% on idle cores"
            )
            print(
                f"  serial, simulations alone {t_bare:6.1f} s  {runs / t_bare:6.1f} runs/s "
                f"(the store costs {1000 * (t_serial - t_bare) / runs:+.1f} ms a run)"
            )
            print(
                f"  warm-up sweep on the pool, starting its workers: {t_start:.1f} s (outside "
                f"the rounds); identical results serial and parallel: {same}"
            )

            # the optimisation workload on the same pool
            optimize(optimise_spec(4), work / "opt-warm", backend=pool, progress=False)
            t0 = time.perf_counter()
            result = optimize(
                optimise_spec(args.trials), work / "opt", backend=pool, progress=False
            )
            seconds = time.perf_counter() - t0
            sims = result.simulations["total"]
            print(
                f"optimisation workload: balanced, 90 days, 2 workers: {sims} simulations "
                f"({args.trials} trials x 2 replications, then the re-runs of the best) in "
                f"{seconds:.1f} s = {sims / seconds:.1f} simulations/s, "
                f"{result.search.trials / result.search.seconds:.2f} trials/s in the search"
            )
        if args.dask:
            t0 = time.perf_counter()
            with make_backend("dask", workers=2) as cluster:
                t_dask_start = time.perf_counter() - t0
                t0 = time.perf_counter()
                sweep(cluster)
                t_dask = time.perf_counter() - t0
            print(
                f"  dask LocalCluster, 2 workers {t_dask:6.1f} s {runs / t_dask:6.1f} runs/s "
                f"(start-up {t_dask_start:.1f} s)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Experiments benchmark: one sweep, serial against 2 processes and a Dask LocalCluster.

A sweep of 200 points x 10 replications of a small scenario (quality_heavy over 60
days) runs serially and on the ``processes`` backend with 2 workers, in the same
script; prints runs per second for each and the parallel efficiency (target >= 85%
on 2 cores), then the per-run overhead of the ``dask`` backend (LocalCluster, 2
workers) against ``processes``, and the parent's peak memory for 50 and 200 points
(it should not grow with the number of points).

Usage: ``python benchmarks/bench_experiments.py [--points 200] [--replications 10]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from simfunnel.experiments.backends import make_backend
from simfunnel.experiments.store import load_results
from simfunnel.experiments.sweep import run_sweep


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


def timed(spec_: dict, out: Path, backend: Any, workers: int | None) -> float:
    t0 = time.perf_counter()
    summary = run_sweep(spec_, out, backend=backend, workers=workers, progress=False)
    assert summary.failed == 0
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--replications", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="simfunnel-bench-"))
    try:
        s = spec(args.points, args.replications)
        runs = args.points * args.replications
        t_serial = timed(s, work / "serial", "serial", None)
        t_proc = timed(s, work / "processes", "processes", 2)
        t0 = time.perf_counter()
        with make_backend("dask", workers=2) as cluster:
            t_start = time.perf_counter() - t0
            t_dask = timed(s, work / "dask", cluster, None)
        same = all(
            load_results(work / b)
            .drop(columns=["elapsed_seconds", "run_id"])
            .equals(load_results(work / "serial").drop(columns=["elapsed_seconds", "run_id"]))
            for b in ("processes", "dask")
        )
        efficiency = t_serial / (2 * t_proc)
        print(
            f"sweep: {args.points} points x {args.replications} replications = {runs} runs "
            "(quality_heavy, 60 days)"
        )
        print(f"  serial               {t_serial:7.1f} s  {runs / t_serial:7.1f} runs/s")
        print(
            f"  processes, 2 workers {t_proc:7.1f} s  {runs / t_proc:7.1f} runs/s  "
            f"parallel efficiency {100 * efficiency:.0f}% (target >= 85%)"
        )
        print(
            f"  dask LocalCluster, 2 {t_dask:7.1f} s  {runs / t_dask:7.1f} runs/s  "
            f"overhead vs processes {1000 * (t_dask - t_proc) / args.points:+.1f} ms per "
            f"point, {1000 * (t_dask - t_proc) / runs:+.2f} ms per run (wall); "
            f"LocalCluster start-up {t_start:.1f} s"
        )
        print(f"  identical results on all three backends: {same}")
        peaks = []
        for n in (50, 200):
            # every point the same size (only the win probability varies), so that the
            # peak measures what the sweep holds, not its largest single run
            same_size = {
                **spec(n, 1),
                "parameters": [{"path": "process.win_probability", "range": [0.2, 0.4]}],
            }
            tracemalloc.start()
            run_sweep(same_size, work / f"mem{n}", backend="serial", progress=False)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        print(
            f"  parent peak memory, serial, 1 replication: 50 points {peaks[0] / 2**20:.1f} "
            f"MiB, 200 points {peaks[1] / 2**20:.1f} MiB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

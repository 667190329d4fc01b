"""Engine benchmark: simfunnel against an idiomatic SimPy model of the same queue.

The M/M/c+M reduction (20 reps, 18 leads an hour, exponential work with mean 1 hour,
exponential patience with mean 2 hours, 200,000 leads) runs through simfunnel and,
in the same process, through a minimal idiomatic SimPy model (a Resource, one
process per customer, AnyOf for reneging). Prints leads per second for both, their
ratio, the abandonment share against Erlang A, peak memory per lead, and the time
of a one-year run of each bundled scenario.

Usage: ``python benchmarks/bench_engine.py [--leads N]``
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc

import numpy as np
import simpy

import simfunnel
from simfunnel.queueing import erlang_a, textbook_scenario

LAM, SERVERS, WORK, PATIENCE = 18.0, 20, 1.0, 2.0


def idiomatic_simpy(n_leads: int, seed: int) -> tuple[float, int]:
    """The textbook SimPy model: returns (abandonment share, leads)."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    reps = simpy.Resource(env, capacity=SERVERS)
    abandoned = [0]

    def lead(env):
        with reps.request() as req:
            patience = env.timeout(rng.exponential(PATIENCE))
            result = yield req | patience
            if req not in result:
                abandoned[0] += 1
                return
            yield env.timeout(rng.exponential(WORK))

    def source(env):
        for _ in range(n_leads):
            yield env.timeout(rng.exponential(1.0 / LAM))
            env.process(lead(env))

    env.process(source(env))
    env.run()
    return abandoned[0] / n_leads, n_leads


def t_interval(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    arr = np.asarray(values)
    half = stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr))
    return float(arr.mean() - half), float(arr.mean() + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    args = parser.parse_args()
    days = args.leads / LAM / 24.0
    scenario = textbook_scenario(LAM, SERVERS, WORK, PATIENCE, horizon_days=days, warmup_days=2)

    # warm both up once (imports, caches)
    simfunnel.simulate(textbook_scenario(LAM, SERVERS, WORK, PATIENCE, horizon_days=10))
    idiomatic_simpy(5_000, 0)

    t0 = time.perf_counter()
    result = simfunnel.simulate(scenario)
    t_sf = time.perf_counter() - t0
    n_sf = len(result.records.leads["arrival_hours"])
    t0 = time.perf_counter()
    _, n_id = idiomatic_simpy(args.leads, 1)
    t_id = time.perf_counter() - t0
    rate_sf, rate_id = n_sf / t_sf, n_id / t_id

    # accuracy: 10 shorter replications against Erlang A
    shares = [
        simfunnel.simulate(scenario, seed=s, overrides={"run.horizon_days": days / 10}).kpis[
            "stale_share"
        ]
        for s in range(10)
    ]
    lo, hi = t_interval(shares)
    exact = erlang_a(LAM, SERVERS, WORK, PATIENCE).p_abandon

    tracemalloc.start()
    simfunnel.simulate(scenario)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"M/M/c+M reduction: {SERVERS} reps, {LAM:g} leads/h, work 1 h, patience 2 h")
    print(f"  simfunnel        {n_sf:>8,} leads in {t_sf:6.2f} s = {rate_sf:>9,.0f} leads/s")
    print(f"  idiomatic SimPy  {n_id:>8,} leads in {t_id:6.2f} s = {rate_id:>9,.0f} leads/s")
    print(f"  ratio            {rate_sf / rate_id:.2f}x (target >= 3x)")
    print(
        f"  abandonment      Erlang A {exact:.4f}; simfunnel 95% CI [{lo:.4f}, {hi:.4f}] "
        f"({'inside' if lo <= exact <= hi else 'OUTSIDE'})"
    )
    print(
        f"  peak memory      {peak / 2**20:.1f} MiB = {peak / n_sf:.0f} bytes per lead "
        f"(target < 1024)"
    )
    print("one-year run of each bundled scenario (one core):")
    for name in simfunnel.bundled_scenarios():
        t0 = time.perf_counter()
        r = simfunnel.simulate(name)
        _ = r.kpis
        dt = time.perf_counter() - t0
        print(f"  {name:<14} {dt:5.2f} s  ({int(r.kpis['leads']):,} leads in the KPI window)")


if __name__ == "__main__":
    main()

"""Engine benchmark: simfunnel against idiomatic SimPy, and against its reference path.

All in one process, in interleaved rounds, reporting medians of CPU time (process
time: on a shared machine, other jobs inflate wall time far more; see ``machine.py``):

- the M/M/c+M reduction (20 reps, 18 leads an hour, exponential work with mean 1
  hour, exponential patience with mean 2 hours, 200,000 leads) through the engine,
  through the reference hot path (:mod:`simfunnel.model_reference`) and through a
  minimal idiomatic SimPy model (a Resource, one process per customer, AnyOf for
  reneging, ``random.expovariate`` draws); target: engine >= 5x idiomatic;
- a one-year run of each bundled scenario, engine against reference (target >= 1.4x);
- the fixed cost of a run (pre-draw and set-up, records) beside the simulation;
- the cost per lead of volume_heavy at 1x and 8x volume (budgets and team times 8,
  CPL held flat so the leads grow 8x); target: within 15%;
- the abandonment share against Erlang A, and peak memory per lead.

The fixed cost is also measured against the former code (the commit before the
hot path's rewrite, ``--former``), checked out with ``git worktree`` into a temporary
folder: both trees run the same script in fresh processes, in interleaved rounds.
Without git or that commit the comparison is skipped, and says so.

Usage: ``python benchmarks/bench_engine.py [--leads N] [--rounds R] [--former COMMIT]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import simpy
from machine import interleaved, label, median

import simfunnel
from simfunnel.model import FunnelModel
from simfunnel.model_reference import ReferenceFunnelModel
from simfunnel.parameters import Scenario, load_scenario
from simfunnel.queueing import erlang_a, textbook_scenario

LAM, SERVERS, WORK, PATIENCE = 18.0, 20, 1.0, 2.0
CPU = time.process_time
ROOT = Path(__file__).resolve().parent.parent
#: The last commit before the hot path was rewritten (records as they are today).
FORMER = "765b95e"

# Set-up (which frees the previous run's model, as a loop of runs does) and records
# of the M/M/c+M reduction, in whichever tree this runs in: the former code assembles
# its records inside run(), after the clock stops, so both are timed that way.
FIXED_COST_SCRIPT = """
import json, sys, time
from simfunnel.model import FunnelModel
from simfunnel.queueing import textbook_scenario
leads, rounds = int(sys.argv[1]), int(sys.argv[2])
scenario = textbook_scenario(18.0, 20, 1.0, 2.0, horizon_days=leads / 18.0 / 24.0, warmup_days=2)
model = FunnelModel(scenario)
model.run()
setup, records = [], []
for _ in range(rounds):
    t0 = time.process_time()
    model = FunnelModel(scenario)
    t1 = time.process_time()
    model.env.run(until=model._end)
    t2 = time.process_time()
    model.run()  # the clock has stopped: records only
    t3 = time.process_time()
    setup.append(t1 - t0)
    records.append(t3 - t2)
print(json.dumps({"setup": setup, "records": records}))
"""


def idiomatic_simpy(n_leads: int, seed: int) -> tuple[float, int]:
    """The textbook SimPy model: returns (abandonment share, leads)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    reps = simpy.Resource(env, capacity=SERVERS)
    abandoned = [0]

    def lead(env):
        with reps.request() as req:
            patience = env.timeout(rng.expovariate(1.0 / PATIENCE))
            result = yield req | patience
            if req not in result:
                abandoned[0] += 1
                return
            yield env.timeout(rng.expovariate(1.0 / WORK))

    def source(env):
        for _ in range(n_leads):
            yield env.timeout(rng.expovariate(LAM))
            env.process(lead(env))

    env.process(source(env))
    env.run()
    return abandoned[0] / n_leads, n_leads


def t_interval(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    arr = np.asarray(values)
    half = stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr))
    return float(arr.mean() - half), float(arr.mean() + half)


def scaled(name: str, k: int) -> Scenario:
    """A bundled scenario at ``k`` times its volume: budgets and reps times k, CPL flat."""
    base = load_scenario(name)
    overrides: dict[str, object] = {"team.reps": base.team.reps * k}
    for i, source in enumerate(base.sources):
        if source.budget_per_week_usd is not None:
            overrides[f"sources.{i}.budget_per_week_usd"] = source.budget_per_week_usd * k
            overrides[f"sources.{i}.cpl_elasticity"] = 0.0
        else:
            overrides[f"sources.{i}.leads_per_week"] = source.effective_leads_per_week * k
    return load_scenario(name, overrides)


def leads_of(model_class: type, scenario: Scenario) -> int:
    model = model_class(scenario)
    model.run()
    return int(model.n_leads)


def fixed_cost_against(former: str, leads: int, rounds: int) -> None:
    """Fixed cost of a run, this tree against the ``former`` commit, in fresh processes."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        print(f"  fixed cost against {former}: skipped (no git repository here)")
        return
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{former}^{{commit}}"], capture_output=True
    )
    if found.returncode:
        print(f"  fixed cost against {former}: skipped (commit not in this clone)")
        return
    folder = Path(tempfile.mkdtemp(prefix="simfunnel-former-")) / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), former],
        check=True,
        capture_output=True,
    )
    try:
        trees = {"former": folder, "now": ROOT}
        times: dict[str, dict[str, list[float]]] = {k: {"setup": [], "records": []} for k in trees}
        for _ in range(rounds):
            for name, tree in trees.items():
                out = subprocess.run(
                    [sys.executable, "-c", FIXED_COST_SCRIPT, str(leads), "3"],
                    cwd=tree,
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    check=True,
                    capture_output=True,
                    text=True,
                )
                for key, values in json.loads(out.stdout).items():
                    times[name][key].extend(values)
        fixed = {k: median(v["setup"]) + median(v["records"]) for k, v in times.items()}
        for name in trees:
            print(
                f"  {name:<6} (set-up {median(times[name]['setup']):.3f} s, records "
                f"{median(times[name]['records']):.3f} s) = {fixed[name]:.3f} s"
            )
        print(
            f"  fixed cost now {fixed['now'] / fixed['former']:.2f}x the former code's "
            f"({former}; target <= 0.5x); {rounds} interleaved rounds of 3, medians"
        )
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
            capture_output=True,
        )
        shutil.rmtree(folder.parent, ignore_errors=True)


def what_grows(scenario: Scenario) -> tuple[float, float, float]:
    """One instrumented run: the cycle collector's share of its time, and the mean
    length of SimPy's event queue and of the lead queue (sampled every 50 events)."""
    import gc

    heap: list[int] = []
    queue: list[int] = []
    model = FunnelModel(scenario)
    step, steps = model.env.step, [0]

    def sampled_step() -> None:
        steps[0] += 1
        if steps[0] % 50 == 0:
            heap.append(len(model.env._queue))
            queue.append(len(model._queue))
        step()

    model.env.step = sampled_step  # type: ignore[method-assign]
    collecting = [0.0, 0.0]  # seconds in collections, start of the current one

    def clock(phase: str, info: dict) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(clock)
    try:
        t0 = time.perf_counter()
        model.run()
        seconds = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(clock)
    return collecting[0] / seconds, float(np.mean(heap)), float(np.mean(queue))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--former", default=FORMER, help="commit to compare the fixed cost with")
    args = parser.parse_args()
    days = args.leads / LAM / 24.0
    scenario = textbook_scenario(LAM, SERVERS, WORK, PATIENCE, horizon_days=days, warmup_days=2)
    print(f"machine: {label()}")

    # warm up (imports, caches)
    small = textbook_scenario(LAM, SERVERS, WORK, PATIENCE, horizon_days=10)
    simfunnel.simulate(small)
    ReferenceFunnelModel(small).run()
    idiomatic_simpy(5_000, 0)

    n_sf = FunnelModel(scenario).n_leads
    times = interleaved(
        {
            "engine": lambda: simfunnel.simulate(scenario),
            "reference": lambda: ReferenceFunnelModel(scenario).run(),
            "idiomatic": lambda: idiomatic_simpy(args.leads, 1),
        },
        args.rounds,
        CPU,
    )
    t_sf, t_ref, t_id = (median(times[k]) for k in ("engine", "reference", "idiomatic"))
    print(
        f"M/M/c+M reduction: {SERVERS} reps, {LAM:g} leads/h, work 1 h, patience 2 h; "
        f"{args.rounds} interleaved rounds, medians of CPU seconds"
    )
    print(f"  engine           {n_sf:>8,} leads in {t_sf:6.2f} s = {n_sf / t_sf:>9,.0f} leads/s")
    print(f"  reference path   {n_sf:>8,} leads in {t_ref:6.2f} s = {n_sf / t_ref:>9,.0f} leads/s")
    print(
        f"  idiomatic SimPy  {args.leads:>8,} leads in {t_id:6.2f} s = "
        f"{args.leads / t_id:>9,.0f} leads/s"
    )
    ratio = (n_sf / t_sf) / (args.leads / t_id)
    print(
        f"  ratio: engine {ratio:.2f}x idiomatic SimPy (target >= 5x); "
        f"{(n_sf / t_sf) / (n_sf / t_ref):.2f}x the reference path; reference "
        f"{(n_sf / t_ref) / (args.leads / t_id):.2f}x idiomatic"
    )

    # fixed cost: pre-draw and set-up, simulation, records (engine, same scenario)
    parts: dict[str, list[float]] = {"set-up": [], "simulation": [], "records": []}
    for _ in range(3):
        t0 = CPU()
        model = FunnelModel(scenario)
        t1 = CPU()
        model.env.run(until=model._end)
        t2 = CPU()
        model._records()
        t3 = CPU()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            parts[key].append(dt)
    setup, sim, rec = (median(parts[k]) for k in parts)
    total = setup + sim + rec
    print(
        f"  fixed cost (engine, {n_sf:,} leads): pre-draw and set-up {setup:.3f} s, records "
        f"{rec:.3f} s = {setup + rec:.3f} s ({1e6 * (setup + rec) / n_sf:.2f} us a lead, "
        f"{100 * (setup + rec) / total:.0f}% of the run); simulation {sim:.3f} s"
    )
    print(f"fixed cost against the former code, M/M/c+M reduction, {n_sf:,} leads:")
    fixed_cost_against(args.former, args.leads, 4)

    # one-year bundled scenarios: engine against reference
    print(f"one-year run of each bundled scenario, engine against reference ({3} rounds):")
    for name in simfunnel.bundled_scenarios():
        sc = load_scenario(name)
        n = FunnelModel(sc).n_leads
        t = interleaved(
            {
                "engine": lambda sc=sc: FunnelModel(sc).run(),
                "reference": lambda sc=sc: ReferenceFunnelModel(sc).run(),
            },
            3,
            CPU,
        )
        te, tr = median(t["engine"]), median(t["reference"])
        print(
            f"  {name:<14} {n:>7,} leads: engine {te:5.2f} s ({n / te:>7,.0f} leads/s), "
            f"reference {tr:5.2f} s ({n / tr:>7,.0f} leads/s): {tr / te:.2f}x (target >= 1.4x)"
        )

    # cost per lead at 1x and 8x volume
    print("cost per lead, volume_heavy one year at 1x and 8x volume (3 rounds):")
    one, eight = scaled("volume_heavy", 1), scaled("volume_heavy", 8)
    n1, n8 = FunnelModel(one).n_leads, FunnelModel(eight).n_leads
    t = interleaved(
        {
            "engine 1x": lambda: FunnelModel(one).run(),
            "engine 8x": lambda: FunnelModel(eight).run(),
            "reference 1x": lambda: ReferenceFunnelModel(one).run(),
            "reference 8x": lambda: ReferenceFunnelModel(eight).run(),
        },
        3,
        CPU,
    )
    for path in ("engine", "reference"):
        c1, c8 = 1e6 * median(t[f"{path} 1x"]) / n1, 1e6 * median(t[f"{path} 8x"]) / n8
        print(
            f"  {path:<9} {n1:>7,} leads {c1:5.1f} us/lead; {n8:>8,} leads {c8:5.1f} us/lead: "
            f"8x/1x = {c8 / c1:.2f}" + (" (target <= 1.15)" if path == "engine" else "")
        )
    for k, sc in ((1, one), (8, eight)):
        share, heap, queue = what_grows(sc)
        print(
            f"  at {k}x: cycle collector {100 * share:.1f}% of the run; SimPy's event queue "
            f"{heap:.0f} events, the lead queue {queue:.0f} leads (means)"
        )

    # accuracy: 10 shorter replications against Erlang A
    shares = [
        simfunnel.simulate(scenario, seed=s, overrides={"run.horizon_days": days / 10}).kpis[
            "stale_share"
        ]
        for s in range(10)
    ]
    lo, hi = t_interval(shares)
    exact = erlang_a(LAM, SERVERS, WORK, PATIENCE).p_abandon
    print(
        f"abandonment: Erlang A {exact:.4f}; simfunnel 95% CI [{lo:.4f}, {hi:.4f}] "
        f"({'inside' if lo <= exact <= hi else 'OUTSIDE'})"
    )
    tracemalloc.start()
    simfunnel.simulate(scenario)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory: {peak / 2**20:.1f} MiB = {peak / n_sf:.0f} bytes per lead (target < 1024)")


if __name__ == "__main__":
    main()

"""Limits benchmark: the memory estimate against measured peak memory, and its cost.

For a few sizes and attempt settings, runs one scenario in a fresh subprocess and
compares its peak resident memory with :func:`simfunnel.limits.scenario_workload`'s
estimate (the constants in ``simfunnel/limits.py`` come from this). Then times the
estimate itself on the 60-PiB scenario of issue 10, which it refuses without
allocating anything.

Usage: ``python benchmarks/bench_limits.py``
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from simfunnel.limits import check_scenario, scenario_workload
from simfunnel.parameters import load_scenario

CHILD = """
import json, resource, sys
import simfunnel
from simfunnel.limits import scenario_workload
from simfunnel.parameters import load_scenario
raw, overrides = json.loads(sys.argv[1]), json.loads(sys.argv[2])
scenario = load_scenario(raw, overrides)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
simfunnel.simulate(scenario, seed=1, max_leads=10**9)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
work = scenario_workload(scenario)
print(json.dumps({"measured": (after - before) * 1024, "estimated": work.bytes,
                  "leads": work.leads}))
"""

BASE = {
    "name": "bench",
    "run": {"horizon_days": 70, "warmup_days": 7},
    "team": {"reps": 200},
    "sources": [{"name": "web", "leads_per_week": 1, "cost_per_lead_usd": 10}],
}
CASES = [
    ("20k leads/week, defaults", {"sources.0.leads_per_week": 20_000}),
    ("40k leads/week, defaults", {"sources.0.leads_per_week": 40_000}),
    ("100 leads/week, 5,000 reps", {"sources.0.leads_per_week": 100, "team.reps": 5_000}),
    (
        "40k leads/week, 1 attempt, no nurture",
        {
            "sources.0.leads_per_week": 40_000,
            "team.max_attempts": 1,
            "process.nurture.enabled": False,
        },
    ),
    (
        "2k leads/week, a one-day burst x100",
        {
            "sources.0.leads_per_week": 2_000,
            "sources.0.bursts": [{"start": "2026-01-10", "end": "2026-01-10", "multiplier": 100}],
        },
    ),
]


def main() -> None:
    """Print measured against estimated peak memory, then the estimate's cost."""
    print(f"{'case':<42} {'leads':>10} {'measured MB':>12} {'estimated MB':>13} {'ratio':>6}")
    for label, overrides in CASES:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(BASE), json.dumps(overrides)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout)
        ratio = row["estimated"] / row["measured"]
        print(
            f"{label:<42} {row['leads']:>10,.0f} {row['measured'] / 1e6:>12,.0f} "
            f"{row['estimated'] / 1e6:>13,.0f} {ratio:>6.2f}"
        )
    huge = load_scenario(
        {
            "name": "huge",
            "sources": [{"name": "a", "budget_per_week_usd": 1e9, "cost_per_lead_usd": 1e-6}],
        }
    )
    start = time.perf_counter()
    for _ in range(1000):
        scenario_workload(huge)
    per_call = (time.perf_counter() - start) / 1000
    try:
        check_scenario(huge)
    except Exception as exc:  # the refusal is the point: show it
        print(f"\nrefusal: {exc}")
    print(f"the estimate takes {per_call * 1e6:,.0f} microseconds (365-day horizon)")


if __name__ == "__main__":
    main()

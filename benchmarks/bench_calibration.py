"""Calibration benchmark: the simulation-based fit of the shipped example export.

``simfunnel.calibrate`` reads the shipped example CRM export (three sources, a year,
about 3,600 leads), estimates what the data shows directly, then fits the contact
probability and each source's ready share by simulated moments on the processes
backend. The script times the direct estimates and the fit apart (the issue's target:
the fit under a minute on two cores), reports the evaluations the fit needed and how
many observed rates the fitted model reproduces, and how far the fitted values are
from the scenario that made the export.

Then (``--sizes``) the wall time and peak memory of the whole command at 10,000,
100,000 and 1,000,000 leads, with the fit and without it (see ``SCALE_DOC``).

Usage: ``python benchmarks/bench_calibration.py [--workers 2] [--replications 4] [--rounds 3]
[--sizes 10000,100000,1000000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import label, median

import simfunnel
from simfunnel.calibration.export import to_crm
from simfunnel.calibration.fit import fit_by_simulation
from simfunnel.calibration.samples import EXAMPLE_SCENARIO, sample_path
from simfunnel.parameters import load_scenario


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replications", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="lead counts of the calibrations at scale (empty: none)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "simfunnel-bench-calibration",
        help="folder for the simulated exports (made once)",
    )
    args = parser.parse_args()

    truth = load_scenario(sample_path(EXAMPLE_SCENARIO))
    direct, fits, cpu = [], [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        cal = simfunnel.calibrate(sample_path(), simulate=False)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        used = _cpu_seconds()
        fitted, params = fit_by_simulation(
            cal.scenario,
            cal.observed,
            replications=args.replications,
            workers=args.workers,
            progress=False,
        )
        fits.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - used)
    check = simfunnel.calibration.fit.fit_check(fitted, cal.observed, workers=args.workers)
    print(f"machine: {label()}")
    print(f"direct estimates: {median(direct):.1f} s (median of {args.rounds})")
    print(
        f"simulation-based fit: {median(fits):.1f} s on {args.workers} workers "
        f"(median of {args.rounds}; {params.attrs['evaluations']} evaluations of "
        f"{args.replications} runs each); {median(cpu):.1f} CPU seconds in all, so about "
        f"{median(cpu) / args.workers:.0f} s of wall time on {args.workers} idle cores"
    )
    print(f"fit check: {check.verdict}")
    truth_ready = {s.name: s.quality.ready for s in truth.sources}
    for row in params.itertuples(index=False):
        known = (
            truth.process.contact_probability
            if row.source == "all"
            else truth_ready.get(str(row.source), float("nan"))
        )
        print(
            f"  {row.parameter:20} {row.source:15} {row.estimate:.3f} "
            f"(95% {row.low:.3f} to {row.high:.3f}); the export's scenario: {known:.3f}"
        )
    if args.sizes:
        print(SCALE_DOC.strip().splitlines()[0])
        at_scale([int(n) for n in args.sizes.split(",")], args.cache)


# ------------------------------------------------------------------ at scale

SCALE_DOC = """Wall time and peak memory of ``simfunnel calibrate`` at 10,000, 100,000 and
1,000,000 leads, with the fit by simulation and without it (``--no-simulate``).

The exports are simulated from the shipped example scenario with every source's volume
and the team scaled together (so the load per rep is the example's), written once to a
cache folder, and each calibration runs in its own process so that its peak memory is
its own (the largest resident set of the process and of its pool's workers).
"""


def _export(n: int, folder: Path) -> Path:
    """The cached CSV export of a simulated year with about ``n`` leads."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crm_{n}.csv"
    if path.exists():
        return path
    base = load_scenario(sample_path(EXAMPLE_SCENARIO))
    per_week = sum(s.leads_per_week or 0.0 for s in base.sources)
    factor = n / (per_week * base.run.horizon_days / 7)
    over: dict[str, object] = {
        f"sources.{s.name}.leads_per_week": (s.leads_per_week or 0.0) * factor for s in base.sources
    }
    over["team.reps"] = max(1, round(base.team.reps * factor))
    crm = to_crm(simfunnel.simulate(base, seed=1, overrides=over, max_leads=10 * n))
    tmp = path.with_suffix(".tmp")
    crm.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


_RUN = """
import json, resource, sys, time
from simfunnel.cli import main
start = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit:
    pass
wall = time.perf_counter() - start
who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
peak = max(resource.getrusage(w).ru_maxrss for w in who)
print(json.dumps({"wall": wall, "peak_mib": peak / 1024}))
"""


def _calibrate(export: Path, out: Path, fit: bool) -> dict[str, float]:
    args = ["calibrate", str(export), "--out", str(out)] + ([] if fit else ["--no-simulate"])
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *args], capture_output=True, text=True, check=False
    )
    if not out.exists():
        raise SystemExit(f"calibrate {export.name} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def at_scale(sizes: list[int], folder: Path) -> None:
    """Print the wall time and peak memory of a calibration at each size."""
    folder.mkdir(parents=True, exist_ok=True)
    print(f"calibration at scale ({label()}):")
    print(f"  {'leads':>9}  {'direct only':>22}  {'with the fit':>22}")
    for n in sizes:
        export = _export(n, folder)
        direct = _calibrate(export, folder / f"direct_{n}.yaml", fit=False)
        fitted = _calibrate(export, folder / f"fitted_{n}.yaml", fit=True)
        print(
            f"  {n:>9,}  {direct['wall']:>8.1f} s {direct['peak_mib']:>7,.0f} MiB  "
            f"{fitted['wall']:>8.1f} s {fitted['peak_mib']:>7,.0f} MiB"
        )


if __name__ == "__main__":
    main()

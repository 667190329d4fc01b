"""Calibration benchmark: the simulation-based fit of the shipped example export.

``simfunnel.calibrate`` reads the shipped example CRM export (three sources, a year,
about 3,600 leads), estimates what the data shows directly, then fits the contact
probability and each source's ready share by simulated moments on the processes
backend. The script times the direct estimates and the fit apart (the issue's target:
the fit under a minute on two cores), reports the evaluations the fit needed and how
many observed rates the fitted model reproduces, and how far the fitted values are
from the scenario that made the export.

Usage: ``python benchmarks/bench_calibration.py [--workers 2] [--replications 4] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import resource
import time

from machine import label, median

import simfunnel
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


if __name__ == "__main__":
    main()

"""Report benchmark: a report's overhead outside the simulation.

``simfunnel report volume_vs_quality`` runs as a user types it (a fresh process),
in interleaved rounds (medians): once as shipped, and once with simulations made
negligible (a 14-day horizon, 2 replications, one team size). The second is the
overhead: CLI start-up, the kernel's start and imports, papermill, the plots and
the nbconvert export. The difference between the two is the simulation. Also
printed: the bare start-up of the CLI and of the imports a report's kernel makes.

Usage: ``python benchmarks/bench_reports.py [--rounds 2]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import interleaved, label, median

TINY = [
    ("overrides", '{"run.horizon_days": 14, "run.warmup_days": 2}'),
    ("replications", "2"),
    ("team_sizes", "[5]"),
]
KERNEL_IMPORTS = "import simfunnel, simfunnel.reporting, pandas, matplotlib.pyplot"


def report(out: Path, parameters: list[tuple[str, str]]) -> None:
    flags = [arg for name, value in parameters for arg in ("-p", name, value)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "simfunnel",
            "report",
            "volume_vs_quality",
            "--quiet",
            *flags,
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )


def python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {label()}")
    work = Path(tempfile.mkdtemp(prefix="simfunnel-bench-report-"))
    counter = iter(range(10**6))
    try:
        report(work / "warm", TINY)  # warm the file cache
        times = interleaved(
            {
                "full": lambda: report(work / f"r{next(counter)}", []),
                "tiny": lambda: report(work / f"r{next(counter)}", TINY),
                "cli": lambda: python("import simfunnel.cli"),
                "imports": lambda: python(KERNEL_IMPORTS),
            },
            args.rounds,
        )
        full, tiny = median(times["full"]), median(times["tiny"])
        print(f"report volume_vs_quality ({args.rounds} interleaved rounds, medians):")
        print(f"  as shipped                        {full:5.1f} s")
        print(f"  simulations negligible (overhead) {tiny:5.1f} s")
        print(
            f"  simulation                        {full - tiny:5.1f} s; overhead "
            f"{100 * tiny / full:.0f}% of the report"
        )
        print(
            f"  of the overhead: CLI start-up {median(times['cli']):.2f} s; a kernel's "
            f"imports ({KERNEL_IMPORTS.removeprefix('import ')}) {median(times['imports']):.2f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Report benchmark: a report's overhead outside the simulation, alone and in a batch.

``simfunnel report volume_vs_quality`` runs as a user types it (a fresh process),
in interleaved rounds (medians):

- as shipped, and with simulations made negligible ("tiny": a 14-day horizon,
  2 replications, one team size); the tiny report is the overhead;
- the tiny report at the revision before the reports' kernel was reused and warmed
  (``--before``; by default the parent of the commit that added
  ``simfunnel/reporting/kernel.py``), unpacked with ``git archive`` and run on the same
  interpreter, so the before and after figures come from one run on one machine;
- a batch of 4 tiny reports (4 seeds) on one kernel, as shipped, and with
  ``--kernel-per-report`` (a fresh kernel for every report).

Each report's executed notebook records how long every cell took (papermill's
metadata). The cells that simulate, tabulate and plot are the report's own work; the
rest of the wall time is the overhead: CLI start-up, papermill, the kernel's start and
the notebook's imports (the imports cell, or the kernel's warm-up), the nbconvert
export and the workbook. Also printed: the bare start-up of the CLI and of the
imports a report's kernel makes.

Usage: ``python benchmarks/bench_reports.py [--rounds 2] [--before REV]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from machine import interleaved, label, median

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    ("overrides", '{"run.horizon_days": 14, "run.warmup_days": 2}'),
    ("replications", "2"),
    ("team_sizes", "[5]"),
]
BATCH = 4
KERNEL_IMPORTS = "import simfunnel, simfunnel.reporting, pandas, matplotlib.pyplot"
#: The file whose arrival marks the "after": the kernel reused and warmed.
KERNEL_MODULE = "simfunnel/reporting/kernel.py"


def before_kernel() -> str | None:
    """The revision just before :data:`KERNEL_MODULE` was added, or None if unknown."""
    try:
        added = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%H", "--", KERNEL_MODULE],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    if not added:
        return None
    return subprocess.run(
        ["git", "rev-parse", "--short", f"{added[-1]}^"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()


def command(out: Path, parameters: list[tuple[str, str]], *extra: str) -> list[str]:
    flags = [arg for name, value in parameters for arg in ("-p", name, value)]
    report = [sys.executable, "-m", "simfunnel", "report", "volume_vs_quality", "--quiet"]
    return [*report, *flags, *extra, "--out", str(out)]


def run(args: list[str], cwd: Path = ROOT) -> None:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(cwd))
    subprocess.run(args, check=True, capture_output=True, cwd=cwd, env=env)


def python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def own_work(folder: Path) -> float:
    """Seconds the cells that simulate, tabulate and plot took, over every report in
    ``folder``: every code cell but the parameters and the imports (papermill's record).
    """
    total = 0.0
    for path in folder.rglob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            tags = cell["metadata"].get("tags", [])
            if cell["cell_type"] != "code" or "parameters" in tags or "injected-parameters" in tags:
                continue
            if source.lstrip().startswith("import "):
                continue  # the imports cell: overhead
            total += cell["metadata"].get("papermill", {}).get("duration") or 0.0
    return total


def unpack(rev: str, into: Path) -> Path | None:
    """The package and notebooks at ``rev`` (``git archive``), or None outside a checkout."""
    try:
        archive = subprocess.run(
            ["git", "archive", rev, "simfunnel", "notebooks", "pyproject.toml"],
            check=True,
            capture_output=True,
            cwd=ROOT,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    where = subprocess.run(
        [sys.executable, "-c", "import simfunnel; print(simfunnel.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=into,
        env=dict(os.environ, PYTHONPATH=str(into)),
    ).stdout
    assert where.startswith(str(into)), where  # the old package, not the installed one
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", help="revision of the 'before' figures")
    args = parser.parse_args()
    args.before = args.before or before_kernel()
    print(f"machine: {label()}")
    work = Path(tempfile.mkdtemp(prefix="simfunnel-bench-report-"))
    counter = iter(range(10**6))
    sets = work / "sets.yaml"
    sets.write_text(
        "grid:\n  seed: [" + ", ".join(str(s) for s in range(1, BATCH + 1)) + "]\n"
        "fixed:\n" + "".join(f"  {name}: {value}\n" for name, value in TINY)
    )
    folders: dict[str, list[Path]] = {}

    def report(kind: str, parameters: list[tuple[str, str]], *extra: str, cwd: Path = ROOT):
        def go() -> None:
            out = work / f"{kind}-{next(counter)}"
            folders.setdefault(kind, []).append(out)
            run(command(out, parameters, *extra), cwd=cwd)

        return go

    try:
        old = unpack(args.before, work / "before") if args.before else None
        run(command(work / "warm", TINY))  # warm the file cache
        if old is not None:
            run(command(work / "warm-before", TINY), cwd=old)  # and compile its modules
        contenders: dict[str, Callable[[], None]] = {
            "full": report("full", []),
            "tiny": report("tiny", TINY),
            "batch": report("batch", [], "-f", str(sets)),
            "batch_each": report("batch_each", [], "-f", str(sets), "--kernel-per-report"),
            "cli": lambda: python("import simfunnel.cli"),
            "imports": lambda: python(KERNEL_IMPORTS),
        }
        if old is not None:
            contenders["tiny_before"] = report("tiny_before", TINY, cwd=old)
        times = interleaved(contenders, args.rounds)
    finally:
        results = {k: [own_work(f) for f in v] for k, v in folders.items()}
        shutil.rmtree(work, ignore_errors=True)

    def med(kind: str) -> tuple[float, float]:
        """Median wall time and median overhead (wall minus the cells' own work)."""
        walls = times[kind]
        return median(walls), median([w - c for w, c in zip(walls, results[kind], strict=True)])

    full, tiny = median(times["full"]), med("tiny")
    print(f"report volume_vs_quality ({args.rounds} interleaved rounds, medians):")
    print(f"  as shipped                               {full:5.1f} s")
    print(
        f"  simulations negligible (tiny)            {tiny[0]:5.1f} s; overhead outside "
        f"the cells' own work {tiny[1]:.1f} s"
    )
    print(
        f"  simulation                               {full - tiny[0]:5.1f} s; the tiny "
        f"report is {100 * tiny[0] / full:.0f}% of the report"
    )
    if "tiny_before" in times:
        before = med("tiny_before")
        print(
            f"  tiny report before (at {args.before})        {before[0]:5.1f} s; overhead "
            f"{before[1]:.1f} s"
        )
        print(
            f"  now / before: tiny report {tiny[0] / before[0]:.2f}x, its overhead "
            f"{tiny[1] / before[1]:.2f}x"
        )
    shared, each = med("batch"), med("batch_each")
    print(f"a batch of {BATCH} tiny reports (-f, {BATCH} seeds):")
    print(
        f"  one kernel, reset between reports        {shared[0]:5.1f} s; a report "
        f"{shared[0] / BATCH:.1f} s, its overhead {shared[1] / BATCH:.1f} s"
    )
    print(
        f"  a kernel per report (--kernel-per-report) {each[0]:4.1f} s; a report "
        f"{each[0] / BATCH:.1f} s, its overhead {each[1] / BATCH:.1f} s"
    )
    print(
        f"  one kernel / a kernel each: {shared[0] / each[0]:.2f}x the time, "
        f"{shared[1] / each[1]:.2f}x the overhead"
    )
    if "tiny_before" in times:
        before = med("tiny_before")
        print(
            f"  a report of the batch / a tiny report before: {shared[0] / BATCH / before[0]:.2f}x"
            f" the time, {shared[1] / BATCH / before[1]:.2f}x the overhead"
        )
    print(
        f"of the overhead: CLI start-up {median(times['cli']):.2f} s; a kernel's imports "
        f"({KERNEL_IMPORTS.removeprefix('import ')}) {median(times['imports']):.2f} s"
    )


if __name__ == "__main__":
    main()

"""How fast the command line answers: ``simfunnel --help`` and ``simfunnel list``.

Each command runs as a fresh process (as a user types it), several times; the
median and the worst wall-clock times are printed, with the target of 0.5 s.
The heavy libraries (scipy, pandas, SALib, Dask, papermill) must not load for them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from machine import label

COMMANDS = (["--help"], ["list"], ["--version"])
RUNS = 7
TARGET_SECONDS = 0.5
HEAVY = ("scipy", "pandas", "SALib", "dask", "distributed", "papermill", "matplotlib")


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "simfunnel", *args], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start


def heavy_imports(args: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "simfunnel", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()}
    return sorted(loaded & set(HEAVY))


def main() -> None:
    print(f"machine: {label()}")
    baseline = statistics.median(timed_python() for _ in range(RUNS))
    print(f"bare Python start-up: {baseline:.3f} s (median of {RUNS})")
    print(f"{'command':<22} {'median':>8} {'worst':>8}  target  heavy imports")
    for args in COMMANDS:
        timed(args)  # warm the file cache
        times = [timed(args) for _ in range(RUNS)]
        median, worst = statistics.median(times), max(times)
        verdict = "ok" if worst < TARGET_SECONDS else "SLOW"
        heavy = ", ".join(heavy_imports(args)) or "none"
        print(
            f"{'simfunnel ' + ' '.join(args):<22} {median:>7.3f}s {worst:>7.3f}s  {verdict:<6}  "
            f"{heavy}"
        )


def timed_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

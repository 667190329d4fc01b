"""What every benchmark shares: the machine's label and interleaved, median timing.

Absolute figures depend on the machine and on what else runs on it; ratios of two
things timed in the same process, round by round, mostly do not. So each script
times its contenders in interleaved rounds and reports medians, the ratios as the
claims and the absolute figures labelled with :func:`label`.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def label() -> str:
    """Cores, CPU model, Python and the load average: what an absolute figure is 'on'."""
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load {os.getloadavg()[0]:.1f}"
    return f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}{load}"


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of each contender by ``clock``, run in turn in every round.

    Wall-clock time by default; ``time.process_time`` (this process's CPU time)
    for contenders that run in this process alone, which other jobs on a shared
    machine inflate far less.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live child processes.

    Children are read from ``/proc`` (Linux), so that a pool's workers, which have
    not exited, count; elsewhere only this process is counted.
    """
    total = time.process_time()
    try:
        me = os.getpid()
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:  # ppid; utime and stime follow at 11 and 12
                total += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, AttributeError):
        pass
    return total


def median(values: list[float]) -> float:
    """The median (the figure every benchmark reports)."""
    return float(statistics.median(values))

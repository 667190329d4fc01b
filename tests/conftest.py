import functools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples every time; local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]

# The suite runs on every core (pytest-xdist, --dist loadfile): a file's tests run in
# one worker, so that its module fixtures are built once and a notebook's cells run in
# order in one kernel.
_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real `simfunnel` command line in a subprocess (``env``: extra variables)."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "simfunnel", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


# Reports made once a session and shared by the report tests (tests/test_reports.py)
# and the browser check (tests/test_browser.py): each kind is rendered once. They are
# kept under reports/browser-check/ with the browser's screenshots, for a reviewer.
REPORTS = ROOT / "reports" / "browser-check"
SMALL_RUN = '{"run.horizon_days": 150, "run.warmup_days": 14}'


def rendered_once(
    make: Callable[[], tuple[Path, subprocess.CompletedProcess]],
) -> Callable[[], tuple[Path, subprocess.CompletedProcess]]:
    """A report fixture rendered once a test run, whichever worker needs it first.

    The report tests and the browser check run in different workers and share the
    reports: the first worker renders a report under a file lock and records the
    outcome; the others wait on the lock and reuse it.
    """
    import fcntl

    @functools.wraps(make)
    def once() -> tuple[Path, subprocess.CompletedProcess]:
        REPORTS.mkdir(parents=True, exist_ok=True)
        record = REPORTS / f".{make.__name__}.json"
        with open(REPORTS / f".{make.__name__}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if record.exists():
                saved = json.loads(record.read_text())
                if saved["session"] == _SESSION:
                    done = subprocess.CompletedProcess(
                        saved["args"], saved["returncode"], saved["stdout"], saved["stderr"]
                    )
                    return Path(saved["out"]), done
            out, done = make()
            record.write_text(
                json.dumps(
                    {
                        "session": _SESSION,
                        "out": str(out),
                        "args": [str(a) for a in done.args],
                        "returncode": done.returncode,
                        "stdout": done.stdout,
                        "stderr": done.stderr,
                    }
                )
            )
            return out, done

    return once


def _make_report(folder: str, *args: str) -> tuple[Path, subprocess.CompletedProcess]:
    import shutil

    out = REPORTS / folder
    shutil.rmtree(out, ignore_errors=True)
    return out, run_cli("report", *args, "--out", str(out), timeout=900)


@pytest.fixture(scope="session")
@rendered_once
def scenario_report():
    """The scenario report of balanced: 3 replications of 150 days."""
    return _make_report(
        "scenario",
        "scenario",
        "-p",
        "scenario",
        "balanced",
        "-p",
        "replications",
        "3",
        "-p",
        "overrides",
        SMALL_RUN,
        "-p",
        "backend",
        "serial",
        "--quiet",
    )


@pytest.fixture(scope="session")
@rendered_once
def sweep_report():
    """A 2 x 3 sweep (team size, routing policy) of quality_heavy, stored in ``store/``.

    Six points, more than the five best the report lists, all within the constraint.
    """
    import yaml

    spec = {
        "scenario": "quality_heavy",
        "overrides": {"run.horizon_days": 90},
        "parameters": [
            {"path": "team.reps", "levels": [4, 8]},
            {"path": "process.routing.policy", "levels": ["fifo", "newest_first", "score"]},
        ],
        "replications": 1,
        "kpis": ["cac", "revenue", "burnout_index", "customers"],
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    params = REPORTS / "sweep.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "spec": spec,
                "constraints": {"burnout_index": {"max": 0.9}},
                "backend": "serial",
                "results_dir": str(REPORTS / "parameter_sweep" / "store"),
            }
        )
    )
    return _make_report("parameter_sweep", "parameter_sweep", "-f", str(params), "--quiet")


@pytest.fixture(scope="session")
@rendered_once
def batch_report():
    """A batch of two volume_vs_quality reports and its index (progress bars shown)."""
    import yaml

    REPORTS.mkdir(parents=True, exist_ok=True)
    sets = REPORTS / "sets.yaml"
    sets.write_text(
        yaml.safe_dump(
            [
                {
                    "scenarios": ["quality_heavy", "volume_heavy"],
                    "replications": 2,
                    "team_sizes": [5],
                },
                {"scenarios": ["volume_heavy", "balanced"], "replications": 2, "team_sizes": [5]},
            ]
        )
    )
    return _make_report(
        "batch",
        "volume_vs_quality",
        "-f",
        str(sets),
        "-p",
        "overrides",
        SMALL_RUN,
        "-p",
        "backend",
        "serial",
    )


@pytest.fixture(scope="session")
@rendered_once
def calibration_report():
    """The calibration report of the shipped example CRM export: a small fit and back-test."""
    return _make_report(
        "calibration",
        "calibration",
        *("-p", "replications", "2", "-p", "max_evaluations", "12"),
        *("-p", "check_replications", "3", "-p", "backtest_replications", "4"),
        *("-p", "backend", "serial", "--quiet"),
    )


@pytest.fixture(scope="session")
@rendered_once
def budget_mix_report():
    """A small budget_mix report: 4 trials, 2 candidates re-run, no team-size search."""
    import yaml

    example = {
        "scenario": "balanced",
        "overrides": {"run.horizon_days": 60, "run.warmup_days": 7},
        "budget": {
            "total_per_week_usd": 25000,
            "sources": ["referral", "organic_search", "paid_social"],
            "max_share": 0.8,
        },
        "objective": "cac",
        "constraints": {"burnout_index": {"max": 0.5}},
        "replications": 2,
        "trials": 4,
        "batch_size": 2,
        "seed": 1,
        "selection": {"top": 2, "replications": 3},
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    params = REPORTS / "budget_mix.yaml"
    params.write_text(yaml.safe_dump({"example": example, "team_sizes": [], "backend": "serial"}))
    return _make_report("budget_mix", "budget_mix", "-f", str(params), "--quiet")

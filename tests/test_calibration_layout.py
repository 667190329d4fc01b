"""The calibration package laid out by step: old module paths warn, the model does not need it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MOVED = {
    "mapping": "simfunnel.calibration.read.mapping",
    "columns": "simfunnel.calibration.read.columns",
    "checks": "simfunnel.calibration.read.checks",
    "limits": "simfunnel.calibration.read.limits",
    "history": "simfunnel.calibration.read.history",
    "cure": "simfunnel.calibration.estimate.cure",
    "volume": "simfunnel.calibration.estimate.volume",
    "weekly": "simfunnel.calibration.estimate.weekly",
    "recording": "simfunnel.calibration.estimate.recording",
    "undated": "simfunnel.calibration.estimate.undated",
    "scale": "simfunnel.calibration.fit.scale",
    "writer": "simfunnel.calibration.scenario",
    "crm": "simfunnel.calibration.export",
    "command": "simfunnel.cli_calibrate",
}

PROBE = """
import importlib, json, sys, warnings
old, new = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    shim = importlib.import_module("simfunnel.calibration." + old)
moved = importlib.import_module(new)
public = [n for n in vars(moved) if not n.startswith("_")]
print(json.dumps({
    "warnings": [(w.category.__name__, str(w.message)) for w in caught],
    "same": all(getattr(shim, n) is getattr(moved, n) for n in public),
    "names": len(public),
}))
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_still_imports_and_warns_naming_the_new_one(old, new):
    out = _run(PROBE, old, new)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    deprecations = [m for c, m in got["warnings"] if c == "DeprecationWarning"]
    assert any(new in m and f"calibration.{old}" in m for m in deprecations), got["warnings"]
    assert got["same"] and got["names"] > 0


def test_the_simulation_does_not_import_calibration():
    out = _run(
        "import sys, simfunnel.simulation; "
        "print([m for m in sys.modules if m.startswith('simfunnel.calibration')])"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert "calibration" not in (ROOT / "simfunnel" / "simulation.py").read_text()


def test_nothing_in_the_repository_imports_an_old_path():
    names = "|".join(MOVED)
    out = subprocess.run(
        [
            "git",
            "grep",
            "-n",
            "-E",
            rf"simfunnel\.calibration\.({names})\b",
            "--",
            "simfunnel",
            "tests/*.py",
            "benchmarks",
            "notebooks",
            "README.md",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    shims = {f"simfunnel/calibration/{old}.py" for old in MOVED}
    hits = [
        line
        for line in out.stdout.splitlines()
        if line.split(":", 1)[0] not in shims
        and "calibration/__init__.py" not in line
        and "test_calibration_layout.py" not in line
    ]
    assert hits == []


def test_each_step_package_re_exports_the_old_modules_names():
    from simfunnel.calibration.estimate import estimates, observed_rates, wilson
    from simfunnel.calibration.fit import Backtest, FitCheck, backtest, fit_check
    from simfunnel.calibration.read import lead_frame, read_table

    assert all(callable(f) for f in (estimates, observed_rates, wilson, backtest, fit_check))
    assert all(callable(f) for f in (lead_frame, read_table))
    assert Backtest.__module__ == "simfunnel.calibration.fit.backtest"
    assert FitCheck.__module__ == "simfunnel.calibration.fit.check"

"""Bad input of every kind, through the real command line: exit 2, one line, no traceback.

Each case writes the files it needs into a temporary folder (``{tmp}`` in its
arguments), runs ``simfunnel`` in a subprocess and checks the promise of the README:
one line on stderr naming what is wrong, exit status 2, and nothing half done.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCENARIO = {
    "name": "tiny",
    "run": {"horizon_days": 21, "warmup_days": 7},
    "sources": [{"name": "web", "leads_per_week": 40, "cost_per_lead_usd": 50}],
    "team": {"reps": 2},
}
SPEC = {
    "scenario": "quality_heavy",
    "overrides": {"run.horizon_days": 21, "run.warmup_days": 7},
    "parameters": [{"path": "team.reps", "levels": [6, 8]}],
    "replications": 1,
}


def _scenario(**changes: object) -> str:
    raw = yaml.safe_load(yaml.safe_dump(SCENARIO))
    for path, value in changes.items():
        node = raw
        *head, last = path.split(".")
        for part in head:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value
    return yaml.safe_dump(raw)


LATIN1 = "name: café\n".encode("latin-1") + _scenario().encode()
BINARY = bytes(range(256)) * 4
BAD_DATE = _scenario().replace("run:\n", "run:\n  start_date: 2026-13-45\n")
NAN_PROFILE = _scenario().replace(
    "  name: web\n", "  name: web\n  day_of_week_profile: [.nan, 1, 1, 1, 1, 1, 1]\n"
)
PYTHON_TAG = "name: !!python/object/apply:os.system ['echo owned']\n" + _scenario()
HUGE_VOLUME = _scenario(**{"run.horizon_days": 3660}).replace(
    "leads_per_week: 40", "leads_per_week: 1000000"
)
HUGE_BUDGET = (
    _scenario()
    .replace("leads_per_week: 40", "budget_per_week_usd: 1.0e+9")
    .replace("cost_per_lead_usd: 50", "cost_per_lead_usd: 1.0e-6")
)
HUGE_BURST = (
    _scenario()
    .replace(
        "  name: web\n",
        "  name: web\n  bursts: [{start: 2026-01-06, end: 2026-01-07, multiplier: 100}]\n"
        "  hour_of_day_profile: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
        "0, 0, 0]\n",
    )
    .replace("leads_per_week: 40", "leads_per_week: 20000")
)
SPEC_BAD_DATE = yaml.safe_dump(SPEC).replace(
    "overrides:\n", "overrides:\n  run.start_date: 2026-02-30\n"
)
SPEC_HUGE_GRID = yaml.safe_dump(
    {
        **SPEC,
        "parameters": [
            {"path": p, "range": [1.0, 8.0]}
            for p in (
                "team.shift_hours",
                "team.minutes_per_attempt",
                "team.minutes_per_conversation",
                "team.attempt_spacing_hours",
                "process.days_to_close",
                "process.nurture.cost_per_lead_usd",
            )
        ],
        "design": {"kind": "grid", "levels": 1000},
    }
)
SPEC_HUGE_SOBOL = yaml.safe_dump(
    {
        **SPEC,
        "parameters": [{"path": "team.reps", "range": [4, 8]}],
        "design": {"kind": "sobol", "samples": 1000000},
    }
)
SPEC_NAN_RANGE = yaml.safe_dump(SPEC).replace("levels:\n  - 6\n  - 8", "range: [.nan, 8]")

CASES = {
    # 1. crashes where a one-line error was promised
    "validate latin-1": (["validate", "{tmp}/s.yaml"], {"s.yaml": LATIN1}, "not UTF-8 (byte 0xe9"),
    "report latin-1 -f": (
        ["report", "scenario", "-f", "{tmp}/p.yaml", "--out", "{tmp}/r"],
        {"p.yaml": b"seed: 1 # \xff\n"},
        "not UTF-8 (byte 0xff",
    ),
    "scenario impossible date": (
        ["validate", "{tmp}/s.yaml"],
        {"s.yaml": BAD_DATE},
        "'2026-13-45' is not a valid date",
    ),
    "spec impossible date": (
        ["sweep", "{tmp}/spec.yaml", "--out", "{tmp}/store"],
        {"spec.yaml": SPEC_BAD_DATE},
        "'2026-02-30' is not a valid date",
    ),
    "report -f impossible date": (
        ["report", "scenario", "-f", "{tmp}/p.yaml", "--out", "{tmp}/r"],
        {"p.yaml": "overrides: {run.start_date: 2026-13-45}\n"},
        "not a valid date",
    ),
    "run negative seed": (["run", "balanced", "--seed", "-1"], {}, "--seed: must be"),
    "compare negative seed": (
        ["compare", "balanced", "volume_heavy", "--seed", "-5"],
        {},
        "--seed: must be a whole number >= 0",
    ),
    "nan in a profile list": (
        ["validate", "{tmp}/s.yaml"],
        {"s.yaml": NAN_PROFILE},
        "sources[0].day_of_week_profile[0]: must be a finite number",
    ),
    "nan in a spec range": (
        ["sweep", "{tmp}/spec.yaml", "--out", "{tmp}/store"],
        {"spec.yaml": SPEC_NAN_RANGE},
        "parameter team.reps",
    ),
    "python object tag": (
        ["validate", "{tmp}/s.yaml"],
        {"s.yaml": PYTHON_TAG},
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object",
    ),
    "replicate --csv into a missing folder": (
        ["replicate", "{tmp}/s.yaml", "-n", "2", "--csv", "{tmp}/nodir/x.csv"],
        {"s.yaml": _scenario()},
        "the folder",
    ),
    "compare --csv into a file's folder": (
        ["compare", "{tmp}/s.yaml", "balanced", "-n", "2", "--csv", "{tmp}/s.yaml/x.csv"],
        {"s.yaml": _scenario()},
        "is not a folder",
    ),
    "sweep --out under /proc": (
        ["sweep", "{tmp}/spec.yaml", "--out", "/proc/simfunnel-store"],
        {"spec.yaml": yaml.safe_dump(SPEC)},
        "/proc/simfunnel-store",
    ),
    "report --out an existing file": (
        ["report", "scenario", "--out", "{tmp}/spec.yaml"],
        {"spec.yaml": "x: 1\n"},
        "is a file",
    ),
    "store metadata holding a list": (
        ["analyze", "{tmp}/st"],
        {"st/metadata.json": "[1, 2]", "st/points/.keep": ""},
        "metadata.json: holds a list, not a store's metadata",
    ),
    # 2. bounded work and memory
    "a million leads a week for ten years": (
        ["run", "{tmp}/s.yaml"],
        {"s.yaml": HUGE_VOLUME},
        "would simulate about 523 million leads",
    ),
    "a billion-dollar budget at a micro-cent CPL": (
        ["run", "{tmp}/s.yaml"],
        {"s.yaml": HUGE_BUDGET},
        "raise --max-leads",
    ),
    "a burst of 100 at an hourly peak": (
        ["replicate", "{tmp}/s.yaml", "-n", "2"],
        {"s.yaml": HUGE_BURST},
        "candidate arrivals",
    ),
    "a grid of 1,000 levels over 6 parameters": (
        ["sweep", "{tmp}/spec.yaml", "--out", "{tmp}/store"],
        {"spec.yaml": SPEC_HUGE_GRID},
        "raise --max-runs",
    ),
    "sobol with a million samples": (
        ["sweep", "{tmp}/spec.yaml", "--out", "{tmp}/store"],
        {"spec.yaml": SPEC_HUGE_SOBOL},
        "3 million runs",
    ),
    "replicate ten million": (
        ["replicate", "balanced", "-n", "10000000"],
        {},
        "10 million runs",
    ),
    "compare ten million": (
        ["compare", "balanced", "volume_heavy", "-n", "10000000"],
        {},
        "20 million runs",
    ),
    # 3. accepted but meaningless
    "--retry-failed without --resume": (
        ["sweep", "{tmp}/spec.yaml", "--out", "{tmp}/store", "--retry-failed"],
        {"spec.yaml": yaml.safe_dump(SPEC)},
        "--retry-failed: only with --resume",
    ),
    "analyze --top 0": (["analyze", "{tmp}", "--top", "0"], {}, "--top: must be"),
    "--max-n below -n": (
        [
            "replicate",
            "balanced",
            "-n",
            "4",
            "--kpi",
            "cac",
            "--precision",
            "0.001",
            "--max-n",
            "1",
        ],
        {},
        "max_n: must be at least n (4)",
    ),
    "--max-n without sequential stopping": (
        ["replicate", "balanced", "-n", "4", "--max-n", "8"],
        {},
        "--max-n: only with sequential stopping",
    ),
    "--workers 0": (
        ["sweep", "{tmp}/spec.yaml", "--out", "{tmp}/store", "--workers", "0"],
        {"spec.yaml": yaml.safe_dump(SPEC)},
        "--workers: must be a whole number >= 1",
    ),
    "unreachable scheduler": (
        [
            "sweep",
            "{tmp}/spec.yaml",
            "--out",
            "{tmp}/store",
            "--backend",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:1",
        ],
        {"spec.yaml": yaml.safe_dump(SPEC)},
        "cannot reach the Dask scheduler",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_no_traceback(cli, tmp_path, case):
    args, files, message = CASES[case]
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    out = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], timeout=120)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert not (tmp_path / "store").exists()  # nothing created by a refused sweep
    assert "owned" not in out.stdout


@pytest.mark.parametrize(
    "path, value",
    [
        ("sources.0.cost_per_lead_usd", math.inf),
        ("team.shift_start_hour", math.nan),
        ("sources.0.hour_of_day_profile", [1.0] * 23 + [-math.inf]),
        (
            "sources.0.bursts",
            [{"start": "2026-01-06", "end": "2026-01-07", "multiplier": math.nan}],
        ),
        ("process.routing.nurture_below_score", math.nan),
    ],
)
def test_every_float_of_the_schema_must_be_finite(path, value):
    from simfunnel import ScenarioError, load_scenario

    with pytest.raises(ScenarioError, match="must be a finite number"):
        load_scenario(yaml.safe_load(_scenario()), {path: value})


def test_negative_seed_is_refused_by_the_api():
    import simfunnel

    for call in (
        lambda: simfunnel.simulate("balanced", seed=-1),
        lambda: simfunnel.replicate("balanced", 2, -5, backend="serial"),
        lambda: simfunnel.compare(["balanced", "volume_heavy"], 2, -5, backend="serial"),
    ):
        with pytest.raises(simfunnel.SimfunnelError, match="seed: must be a whole number >= 0"):
            call()


def test_utf8_with_a_bom_is_read(cli, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + _scenario().encode())
    out = cli("validate", str(path))
    assert out.returncode == 0, out.stderr
    assert "valid scenario 'tiny'" in out.stdout


def test_max_leads_lets_a_user_who_means_it_run(cli, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(_scenario())
    refused = cli("run", str(path), "--max-leads", "10")
    allowed = cli("run", str(path), "--max-leads", "100000", "--json")
    assert refused.returncode == 2 and allowed.returncode == 0, allowed.stderr
    assert yaml.safe_load(allowed.stdout)["kpis"]["leads"] > 10


def test_the_huge_scenario_is_refused_under_a_small_address_space(tmp_path):
    """The estimate is made before any allocation: a 1 GB address space is enough."""
    path = tmp_path / "s.yaml"
    path.write_text(HUGE_BUDGET)
    out = subprocess.run(
        [
            "/bin/sh",
            "-c",
            f'ulimit -v 1000000 && exec "$0" -m simfunnel run "{path}"',
            sys.executable,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "MemoryError" not in out.stderr
    assert "would simulate about" in out.stderr and "PB" in out.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "simfunnel", "run", "balanced", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader has gone, as with `| head -0`
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == ""
    assert proc.returncode == 141


def test_no_eval_of_user_text():
    """Constraints, overrides and parameters are parsed, never evaluated as code."""
    root = Path(__file__).resolve().parents[1] / "simfunnel"
    unsafe = re.compile(
        r"(?<![.\w])(eval|exec|compile)\(|yaml\.(unsafe_load|full_load|Loader\b|FullLoader|UnsafeLoader)"
        r"|yaml\.load\((?![^)]*Loader=_SafeLoader)"
    )
    for path in root.rglob("*.py"):
        found = unsafe.search(path.read_text())
        assert found is None, f"{found.group(0) if found else ''} in {path}"

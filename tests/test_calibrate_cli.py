"""simfunnel calibrate through the real command line: bad input of every kind, and success.

Each bad-input case writes a small export into a temporary folder, runs ``simfunnel
calibrate`` in a subprocess and checks the promise: exit status 2, one line on stderr
naming the column, how many rows and an example value, no traceback, and no scenario
file written.
"""

from __future__ import annotations

import codecs
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simfunnel.calibration.read.columns import CRM_COLUMNS
from simfunnel.parameters import load_scenario

HEADER = ",".join(CRM_COLUMNS)


def _row(i: int, **cells: str) -> str:
    values = {
        "lead_id": f"L{i:03d}",
        "source": "web" if i % 2 else "referral",
        "created_at": f"2025-03-{1 + i % 28:02d}T10:00:00",
        "first_response_at": f"2025-03-{1 + i % 28:02d}T10:30:00",
        "attempts": "2",
        "contacted_at": f"2025-03-{1 + i % 28:02d}T10:30:00" if i % 3 else "",
        "qualified_at": "",
        "opportunity_at": "",
        "won_at": f"2025-04-{1 + i % 28:02d}T10:00:00" if i % 5 == 0 else "",
        "lost_at": "",
        "status": "won" if i % 5 == 0 else "open",
        "amount": "12000" if i % 5 == 0 else "",
        "owner": f"rep_{i % 3}",
        "score": "0.5",
    }
    values.update(cells)
    return ",".join(values[c] for c in CRM_COLUMNS)


def _export(n: int = 40, bad: dict[int, dict[str, str]] | None = None) -> str:
    bad = bad or {}
    return "\n".join([HEADER] + [_row(i, **bad.get(i, {})) for i in range(n)]) + "\n"


def _calibrate(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simfunnel", "calibrate", *args, "--no-simulate"],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=120,
    )


MAPPING = {"leads": {"lead_id": "Id", "source": "Channel", "created_at": "Created On"}}

# name: (files to write, arguments, words the one-line error must contain)
CASES: dict[str, tuple[dict[str, str | bytes], list[str], list[str]]] = {
    "missing mapped column": (
        {
            "leads.csv": "Id,Channel,Created\n1,web,2025-01-01\n2,web,2025-01-02\n",
            "map.yaml": yaml.safe_dump(MAPPING),
        },
        ["leads.csv", "--mapping", "map.yaml"],
        ["'Created On'", "created_at", "2 rows", "'Created'"],
    ),
    "unparseable date": (
        {
            "leads.csv": _export(
                bad={3: {"created_at": "31/02/2025 25:61"}, 7: {"created_at": "soon"}}
            )
        },
        ["leads.csv"],
        ["'created_at'", "unparseable date", "2 of 40 rows", "'31/02/2025 25:61'"],
    ),
    "won before created": (
        {"leads.csv": _export(bad={5: {"won_at": "2024-01-01T00:00:00"}})},
        ["leads.csv"],
        ["'won_at'", "before created_at", "1 of 40 rows", "L005"],
    ),
    "negative amount": (
        {"leads.csv": _export(bad={10: {"amount": "-500"}})},
        ["leads.csv"],
        ["'amount'", "negative", "1 of 40 rows", "'-500'"],
    ),
    "duplicate lead ids": (
        {"leads.csv": _export(bad={4: {"lead_id": "L001"}})},
        ["leads.csv"],
        ["'lead_id'", "duplicate", "2 of 40 rows", "'L001'"],
    ),
    "empty file": ({"leads.csv": ""}, ["leads.csv"], ["leads.csv", "empty file"]),
    "non-CSV file": (
        {"leads.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))},
        ["leads.csv"],
        ["leads.csv", "not a CSV file", "NUL byte"],
    ),
    "wrong encoding": (
        {"leads.csv": codecs.BOM_UTF16_LE + _export().encode("utf-16-le")},
        ["leads.csv"],
        ["leads.csv", "wrong encoding", "UTF-16", "Latin-1"],
    ),
    "Windows-1252 is not Latin-1": (
        {"leads.csv": _export(bad={2: {"owner": "Zoë “Z” Ortiz"}}).encode("cp1252")},
        ["leads.csv"],
        ["leads.csv", "wrong encoding", "byte 0x93", "Latin-1"],
    ),
    "deals match no lead": (
        {
            "leads.csv": _export(),
            "deals.csv": "Deal,Lead,Closed,Amount\nD1,X9,2025-05-01,100\nD2,X8,2025-05-02,200\n",
            "map.yaml": yaml.safe_dump(
                {
                    "leads": {c: c for c in ("lead_id", "source", "created_at")},
                    "deals": {"lead_id": "Lead", "won_at": "Closed", "amount": "Amount"},
                }
            ),
        },
        ["leads.csv", "--deals", "deals.csv", "--mapping", "map.yaml"],
        ["deals.csv", "'Lead'", "none of the 2 rows", "'X9'"],
    ),
    "unknown header and no mapping": (
        {"leads.csv": "a,b\n1,2\n"},
        ["leads.csv"],
        ["leads.csv", "('a', 'b')", "--mapping or --preset"],
    ),
    "export date not a date": (
        {"leads.csv": _export()},
        ["leads.csv", "--as-of", "yesterday"],
        ["--as-of yesterday", "not a date", "YYYY-MM-DD"],
    ),
    "export date before the data": (
        {"leads.csv": _export()},
        ["leads.csv", "--as-of", "2020-01-01"],
        ["--as-of 2020-01-01", "before the first lead", "the data runs from 2025-03-01"],
    ),
    "too many bad rows even without --strict": (
        {"leads.csv": _export(bad={i: {"amount": "-1"} for i in range(0, 40, 5)})},
        ["leads.csv"],
        ["'amount'", "negative", "8 of 40 rows", "'-1'"],
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str]]:
    """Every bad-input case run at once (separate processes, started together)."""
    running = {}
    for case, (files, args, _) in CASES.items():
        folder = tmp_path_factory.mktemp("bad")
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (folder / name).write_bytes(data)
        command = [sys.executable, "-m", "simfunnel", "calibrate", *args]
        command += ["--out", "scenario.yaml", "--no-simulate"]
        running[case] = (
            folder,
            subprocess.Popen(
                command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )
    done = {}
    for case, (folder, proc) in running.items():
        _, err = proc.communicate(timeout=300)
        done[case] = (folder, proc.returncode, err)
    return done


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    outcomes: dict[str, tuple[Path, int, str]], case: str
) -> None:
    folder, status, stderr = outcomes[case]
    words = CASES[case][2]
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("simfunnel: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in stderr
    assert not (folder / "scenario.yaml").exists()


@pytest.fixture(scope="module")
def few_bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("few_bad")
    (folder / "leads.csv").write_text(_export(n=120, bad={9: {"created_at": "yesterday-ish"}}))
    return folder


def test_a_few_bad_rows_are_skipped_and_reported(few_bad: Path) -> None:
    out = _calibrate(few_bad, "leads.csv", "--out", "ok.yaml")
    assert out.returncode == 0, out.stderr
    assert "skipped leads leads.csv: column 'created_at' (created_at): unparseable date: " in (
        out.stderr
    )
    assert "1 of 120 rows" in out.stderr
    assert "119 of 120 leads kept" in out.stderr
    scenario = yaml.safe_load((few_bad / "ok.yaml").read_text())
    assert {s["name"] for s in scenario["sources"]} == {"web", "referral"}
    # the written file is a valid scenario that says where each calibrated number came from
    load_scenario(few_bad / "ok.yaml")
    text = (few_bad / "ok.yaml").read_text()
    assert "leads_per_week: " in text and "rows; count / weeks, Poisson" in text
    assert "These stay domain defaults:" in text


def test_strict_refuses_the_same_file(few_bad: Path) -> None:
    out = _calibrate(few_bad, "leads.csv", "--out", "strict.yaml", "--strict")
    assert out.returncode == 2
    line = out.stderr.strip()
    assert "1 of 120 rows" in line and "'yesterday-ish'" in line and "--strict" in line
    assert not (few_bad / "strict.yaml").exists()


def test_calibrate_shows_what_it_read_before_the_fit_and_a_fixed_fit_bar(few_bad: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simfunnel", "calibrate", "leads.csv", "--out", "fit.yaml"],
        capture_output=True,
        text=True,
        cwd=few_bad,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    err = out.stderr
    fitting = err.index("calibrate: fitting the quality mix and the contact chance by simulation")
    assert err.index("calibrate: 119 of 120 leads kept") < fitting
    assert err.index("fit (at most 60 evaluations)") > fitting
    # the bar's total is the budget, labelled as a ceiling, from the first update to the last
    totals = set(re.findall(r"fit \(at most 60 evaluations\):.*?\d+/(\d+)", err))
    assert totals == {"60"}
    assert "fields from the data, " in out.stdout and "fitted by simulation)" in out.stdout


@pytest.mark.slow
def test_the_report_shows_the_calibration_the_command_printed(tmp_path: Path) -> None:
    import json

    from simfunnel.calibration.samples import sample_path

    out, report = tmp_path / "s.yaml", tmp_path / "report"
    args = ["--out", str(out), "--report", str(report), "--holdout", "0.25"]
    done = subprocess.run(
        [sys.executable, "-m", "simfunnel", "calibrate", str(sample_path()), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = {
        line.split(": ", 1)[0]: line.split(": ", 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith(("fit check: ", "back-test: "))
    }
    assert set(printed) == {"fit check", "back-test"}
    facts = json.loads((report / "calibration.json").read_text())
    # the page states the same verdicts, sentence for sentence, and the same scenario
    conclusion = facts["conclusion"].lower()
    for verdict in printed.values():
        assert verdict.lower() in conclusion
    per_source = [r for r in facts["backtest"] if r["source"] != "all"]
    inside = sum(bool(r["inside"]) for r in per_source)
    assert f"{inside} of {len(per_source)} actual counts" in printed["back-test"]
    assert (report / "results" / "scenario.yaml").read_text() == out.read_text()


@pytest.mark.slow
def test_the_header_says_the_fit_ran_when_it_ran(tmp_path: Path) -> None:
    from simfunnel.calibration.samples import sample_path

    def run(*extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
        out = tmp_path / f"s{len(extra)}.yaml"
        command = ["calibrate", str(sample_path()), "--out", str(out), *extra]
        done = subprocess.run(
            [sys.executable, "-m", "simfunnel", *command],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-1000:]
        return done, out.read_text()

    fitted, text = run()
    assert "was skipped" not in text  # the command builds the scenario, then fits it
    assert re.search(r"\d+ fields from the data, \d+ fitted by simulation\)", fitted.stdout)
    skipped, text = run("--no-simulate")
    assert "not fitted: the fit by simulation was skipped" in text
    assert "fitted by simulation)" not in skipped.stdout


def test_quiet_calibrate_prints_only_its_results(tmp_path: Path) -> None:
    from simfunnel.calibration.samples import sample_path

    out = tmp_path / "q.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simfunnel",
            "calibrate",
            str(sample_path()),
            "--out",
            str(out),
            "--no-simulate",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.startswith(f"scenario: {out}")
    assert out.exists()

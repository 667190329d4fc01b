"""simfunnel calibrate refuses, through the real command line, what it cannot read safely.

Each case writes small files into a temporary folder and runs ``simfunnel calibrate``
in a subprocess: a mapping that names a column the file lacks (in either section), a
mapping of the wrong type, a bad date format, a binary Parquet column, and files over a
size limit (rows, a 100,000-column header, a 1 MB cell, an ``.xlsx`` that unzips to
more than the limit). Each must end in exit status 2 with one line, quickly, and write
nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

import simfunnel
from simfunnel.calibration.read import Table, lead_frame
from simfunnel.calibration.read.checks import plain_numbers, tidy_estimates
from simfunnel.calibration.read.columns import CRM_COLUMNS
from simfunnel.calibration.read.limits import ReadLimits, check_csv
from simfunnel.errors import CalibrationError

Files = dict[str, Callable[[Path], None]]


def export(
    n: int = 200,
    days: float = 100,
    sources: tuple[str, ...] = ("web", "referral"),
    **columns: list[str],
) -> pd.DataFrame:
    """A native CRM export of ``n`` leads over ``days`` days, every fifth one won."""
    start = pd.Timestamp("2025-01-06 09:00")
    created = [start + pd.Timedelta(hours=24 * days * i / n) for i in range(n)]
    won = [i % 5 == 0 for i in range(n)]
    frame = pd.DataFrame(
        {
            "lead_id": [f"L{i:04d}" for i in range(n)],
            "source": [sources[i % len(sources)] for i in range(n)],
            "created_at": [c.isoformat() for c in created],
            "first_response_at": [(c + pd.Timedelta(minutes=30)).isoformat() for c in created],
            "attempts": "2",
            "contacted_at": [(c + pd.Timedelta(minutes=30)).isoformat() for c in created],
            "qualified_at": "",
            "opportunity_at": "",
            "won_at": [
                (c + pd.Timedelta(days=10)).isoformat() if w else ""
                for c, w in zip(created, won, strict=True)
            ],
            "lost_at": "",
            "status": ["won" if w else "open" for w in won],
            "amount": ["12000" if w else "" for w in won],
            "owner": [f"rep_{i % 3}" for i in range(n)],
            "score": "0.5",
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame[list(CRM_COLUMNS)]


def csv_file(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda path: frame.to_csv(path, index=False)


def text_file(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def yaml_file(data: object) -> Callable[[Path], None]:
    return text_file(yaml.safe_dump(data, sort_keys=False))


ROLES3 = {"lead_id": "lead_id", "source": "source", "created_at": "created_at"}
DEALS = pd.DataFrame(
    {
        "Lead": [f"L{i:04d}" for i in range(0, 200, 4)],
        "Closed": "2025-05-01",
        "Amount": "100",
        "Won": "yes",
    }
)


def binary_parquet(path: Path) -> None:
    frame = export()
    frame["photo"] = [bytes([i % 256, 0, 255]) for i in range(len(frame))]
    frame.to_parquet(path)


def wide_header(path: Path) -> None:
    columns = 100_000
    path.write_text(
        ",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("1" * columns) + "\n"
    )


def big_cell(path: Path) -> None:
    frame = export()
    frame.loc[3, "created_at"] = "2025-01-06" + " x" * 500_000
    frame.to_csv(path, index=False)


def zip_bomb(path: Path) -> None:
    """A real workbook with one more entry that unzips to 300 MB of zeros."""
    plain = path.with_name("plain.xlsx")
    export().to_excel(plain, index=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb, zipfile.ZipFile(plain) as src:
        for info in src.infolist():
            bomb.writestr(info, src.read(info))
        bomb.writestr("xl/media/pad.bin", b"\0" * 300_000_000)
    plain.unlink()


# name: (files, arguments, words the one-line error must contain)
CASES: dict[str, tuple[Files, list[str], list[str]]] = {
    "misspelled leads column": (
        {
            "leads.csv": csv_file(export()),
            "map.yaml": yaml_file({"leads": {**ROLES3, "score": "scroe"}}),
        },
        ["leads.csv", "--mapping", "map.yaml"],
        ["'scroe'", "(score)", "did you mean 'score'?", "14 columns", "'lead_id'", "'owner'"],
    ),
    "misspelled deals column": (
        {
            "leads.csv": csv_file(export()),
            "deals.csv": csv_file(DEALS),
            "map.yaml": yaml_file(
                {
                    "leads": ROLES3,
                    "deals": {"lead_id": "Lead", "won_at": "Closd", "amount": "Amount"},
                }
            ),
        },
        ["leads.csv", "--deals", "deals.csv", "--mapping", "map.yaml"],
        ["deals.csv", "'Closd'", "deals.won_at", "did you mean 'Closed'?", "'Lead', 'Closed'"],
    ),
    "misspelled deals key match": (
        {
            "leads.csv": csv_file(export()),
            "deals.csv": csv_file(DEALS),
            "map.yaml": yaml_file(
                {"leads": ROLES3, "deals": {"lead_id": "Lead", "match": "lead_di", "won": "Won"}}
            ),
        },
        ["leads.csv", "--deals", "deals.csv", "--mapping", "map.yaml"],
        ["'lead_di'", "deals.match", "did you mean 'lead_id'?"],
    ),
    "hundreds of columns are listed short": (
        {
            "leads.csv": csv_file(
                pd.concat(
                    [export(), pd.DataFrame({f"extra_{i:03d}": [""] * 200 for i in range(300)})],
                    axis=1,
                )
            ),
            "map.yaml": yaml_file({"leads": {**ROLES3, "owner": "Owner"}}),
        },
        ["leads.csv", "--mapping", "map.yaml"],
        ["'Owner'", "did you mean 'owner'?", "314 columns", "(284 more)"],
    ),
    "deals section not a mapping": (
        {"leads.csv": csv_file(export()), "map.yaml": yaml_file({"leads": ROLES3, "deals": ["a"]})},
        ["leads.csv", "--mapping", "map.yaml"],
        ["mapping: deals:", "must map roles to column names", "['a']"],
    ),
    "leads section not a mapping": (
        {"leads.csv": csv_file(export()), "map.yaml": yaml_file({"leads": "lead_id"})},
        ["leads.csv", "--mapping", "map.yaml"],
        ["mapping: leads:", "must map roles to column names"],
    ),
    "deals section without its key": (
        {
            "leads.csv": csv_file(export()),
            "map.yaml": yaml_file({"leads": ROLES3, "deals": {"match": "lead_id"}}),
        },
        ["leads.csv", "--mapping", "map.yaml"],
        ["mapping: deals:", "give lead_id"],
    ),
    "bad date-format directive": (
        {
            "leads.csv": csv_file(export()),
            "map.yaml": yaml_file({"leads": ROLES3, "dates": {"format": "%Y-%m-%Q"}}),
        },
        ["leads.csv", "--mapping", "map.yaml"],
        ["dates.format '%Y-%m-%Q'", "bad directive", "not a strptime format"],
    ),
    "parquet binary column": (
        {"leads.parquet": binary_parquet},
        ["leads.parquet"],
        ["leads.parquet", "column 'photo'", "binary data"],
    ),
    "rows over the limit": (
        {"leads.csv": csv_file(export(n=300))},
        ["leads.csv", "--max-rows", "250"],
        ["leads.csv", "more than 250 rows", "--max-rows", "max_rows="],
    ),
    "parquet rows over the limit": (
        {"leads.parquet": lambda p: export(n=300).to_parquet(p)},
        ["leads.parquet", "--max-rows", "250"],
        ["leads.parquet", "300 rows", "the limit is 250 rows", "--max-rows"],
    ),
    "xlsx rows over the limit, from the sheet's extent": (
        {"leads.xlsx": lambda p: export(n=300).to_excel(p, index=False)},
        ["leads.xlsx", "--max-rows", "250"],
        ["leads.xlsx", "300 rows", "the limit is 250 rows", "--max-rows"],
    ),
    "a 100,000-column header": (
        {"leads.csv": wide_header},
        ["leads.csv"],
        ["leads.csv", "100,000 columns", "the limit is 2,000 columns", "--max-columns"],
    ),
    "a 1 MB cell": (
        {"leads.csv": big_cell},
        ["leads.csv"],
        ["column 'created_at'", "1,000,010 characters", "row 5", "--max-cell-chars"],
    ),
    "xlsx zip bomb": (
        {"leads.xlsx": zip_bomb},
        ["leads.xlsx"],
        ["leads.xlsx", "unzips to 300 MB", "the limit is 250 MB", "--max-xlsx-mb"],
    ),
    "a distinct source on every lead": (
        {"leads.csv": csv_file(export(n=240, sources=tuple(f"s{i}" for i in range(240))))},
        ["leads.csv"],
        ["leads.csv", "column 'source'", "240 distinct values for 240 leads", "leads.source"],
    ),
    "as-of after today": (
        {"leads.csv": csv_file(export())},
        ["leads.csv", "--as-of", "2999-01-01"],
        ["--as-of 2999-01-01", "after today", "the data runs from 2025-01-06 (first lead)"],
    ),
    "as-of beyond any date pandas holds": (
        {"leads.csv": csv_file(export())},
        ["leads.csv", "--as-of", "99999-01-01"],
        ["--as-of 99999-01-01", "after today", "the data runs from 2025-01-06"],
    ),
    "as-of before the first lead": (
        {"leads.csv": csv_file(export())},
        ["leads.csv", "--as-of", "2024-12-31"],
        ["--as-of 2024-12-31", "before the first lead", "to 2025-04-23"],
    ),
    "a won/lost conflict under --strict": (
        {"leads.csv": lambda p: messy().to_csv(p, index=False)},
        ["leads.csv", "--strict"],
        ["3 leads have a won date", "status lost", "--strict"],
    ),
    "a limit that is not positive": (
        {"leads.csv": csv_file(export())},
        ["leads.csv", "--max-columns", "0"],
        ["max_columns (--max-columns)", "must be a number > 0"],
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str, float]]:
    """Every case run at once (separate processes, started together), with its wall time."""
    running = {}
    for case, (files, args, _) in CASES.items():
        folder = tmp_path_factory.mktemp("refuse")
        for name, write in files.items():
            write(folder / name)
        command = [sys.executable, "-m", "simfunnel", "calibrate", *args]
        command += ["--out", "scenario.yaml", "--no-simulate"]
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        running[case] = (folder, proc, started)
    done = {}
    for case, (folder, proc, started) in running.items():
        _, err = proc.communicate(timeout=300)
        done[case] = (folder, proc.returncode, err, time.perf_counter() - started)
    return done


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_exit_2_quickly(
    outcomes: dict[str, tuple[Path, int, str, float]], case: str
) -> None:
    folder, status, stderr, seconds = outcomes[case]
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("simfunnel: error: ")
    assert len(lines[0]) < 1500, lines[0][:300]
    for word in CASES[case][2]:
        assert word in lines[0], (word, lines[0])
    assert not (folder / "scenario.yaml").exists()
    # the whole batch runs at once on a shared machine: generous, yet far from minutes
    assert seconds < 60, seconds


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simfunnel", "calibrate", *args, "--no-simulate"],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
    )


def messy(n: int = 400) -> pd.DataFrame:
    """Conflicting outcomes, blank and case-split sources, a small source, scores missing."""
    frame = export(n=n)
    frame.loc[[5, 10, 15], "status"] = "lost"  # a won date on a lost lead
    frame.loc[[1, 2], ["lost_at", "status"]] = ["2025-03-01T00:00:00", "won"]
    frame.loc[frame.index % 4 == 1, "source"] = "Web"
    frame.loc[[3, 7, 9], "source"] = ""
    frame.loc[frame.index % 10 == 3, "score"] = ""
    frame.loc[[20, 21, 22, 23, 24], "source"] = "rare"
    return frame


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, object]]:
    folder = tmp_path_factory.mktemp("messy")
    messy().to_csv(folder / "leads.csv", index=False)
    out = run_cli(folder, "leads.csv", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    return out.stderr, yaml.safe_load((folder / "s.yaml").read_text())


def test_a_won_date_on_a_lost_lead_is_no_silent_win(messy_run: tuple[str, dict]) -> None:
    err, _ = messy_run
    assert (
        "3 leads have a won date ('won_at') but status lost in column 'status': "
        "the status is trusted, read as lost" in err
    )
    assert "2 leads have a lost date ('lost_at') but status won" in err
    assert "read as won" in err
    frame, _ = lead_frame(Table(messy(), "leads"))
    assert list(frame.loc[[5, 10, 15], "status"]) == ["lost"] * 3
    assert frame.loc[[5, 10, 15], "won_at"].isna().all()  # no win the status overrules
    assert list(frame.loc[[1, 2], "status"]) == ["won"] * 2
    assert frame.loc[[1, 2], "lost_at"].isna().all()


def test_blank_and_case_split_sources(messy_run: tuple[str, dict]) -> None:
    err, scenario = messy_run
    assert "3 of 400 leads have no source, counted as 'unknown'" in err
    assert "names that differ only by case merged: 'web' (197), 'Web' (98) as 'web'" in err
    assert "pooled into 'other' (fewer than 30 leads each): 2 sources (8 leads" in err
    assert "rare, unknown" in err
    names = {s["name"] for s in scenario["sources"]}  # type: ignore[union-attr]
    assert names == {"web", "referral", "other"}


def test_missing_score_is_reported_with_its_share(messy_run: tuple[str, dict]) -> None:
    err, _ = messy_run
    assert "column 'score' (score): missing on 40 of 400 leads (10%)" in err


def test_deal_status_is_trusted_over_a_won_flag(tmp_path: Path) -> None:
    export().to_csv(tmp_path / "leads.csv", index=False)
    deals = DEALS.assign(Stage=["Closed Lost" if i < 5 else "Closed Won" for i in range(50)])
    deals.to_csv(tmp_path / "deals.csv", index=False)
    mapping = {
        "leads": ROLES3,
        "deals": {"lead_id": "Lead", "won": "Won", "status": "Stage", "closed_at": "Closed"},
    }
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(mapping))
    out = run_cli(
        tmp_path, "leads.csv", "--deals", "deals.csv", "--mapping", "map.yaml", "--out", "s.yaml"
    )
    assert out.returncode == 0, out.stderr
    assert (
        "deals deals.csv: 5 deals have won in column 'Won' but status lost in column 'Stage': "
        "the status is trusted, read as lost" in out.stderr
    )


def test_as_of_cuts_the_history_later_dates_not_yet_happened(tmp_path: Path) -> None:
    export().to_csv(tmp_path / "leads.csv", index=False)
    out = run_cli(tmp_path, "leads.csv", "--as-of", "2025-02-15", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    assert "the history ends at --as-of 2025-02-15: 118 leads created later left out" in (
        out.stderr
    )
    assert "82 of 200 leads kept" in out.stderr
    # the same through the library: nothing is dated after the cut, and wins after it are open
    cal = simfunnel.calibrate(export(), as_of="2025-02-15", simulate=False)
    cut = pd.Timestamp("2025-02-16")
    assert pd.Timestamp(cal.frame.attrs["as_of"]) == cut
    for column in [c for c in cal.frame.columns if c.endswith("_at")]:
        assert not (cal.frame[column] >= cut).any(), column
    full = export()
    won_later = full["won_at"].ne("") & (pd.to_datetime(full["won_at"].replace("", None)) >= cut)
    created_before = pd.to_datetime(full["created_at"]) < cut
    reopened = full.loc[won_later & created_before, "lead_id"]
    assert len(reopened) > 0
    frame = cal.frame.set_index("lead_id")
    assert set(frame.loc[list(reopened), "status"]) == {"open"}
    # the volume is over the weeks up to the cut, not to the last date of the file
    volume = cal.estimates.query("field == 'leads_per_week'")["estimate"].sum()
    assert volume == pytest.approx(82 / ((cut - pd.Timestamp("2025-01-06 09:00")).days / 7), 0.05)


def test_one_day_of_leads_leaves_volume_and_timing_at_defaults(tmp_path: Path) -> None:
    export(days=0.5).to_csv(tmp_path / "leads.csv", index=False)  # type: ignore[arg-type]
    out = run_cli(tmp_path, "leads.csv", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if "the history covers" in x)
    assert "one day of leads, under 14 days" in line and "conversion is still estimated" in line
    scenario = yaml.safe_load((tmp_path / "s.yaml").read_text())
    # 200 leads on one day: 200 a week, not 200 a day's worth of weeks (1,400 or more)
    assert sum(s["leads_per_week"] for s in scenario["sources"]) == pytest.approx(200, abs=1)
    for source in scenario["sources"]:
        assert source["day_of_week_profile"] == [1.0] * 7
        assert "bursts" not in source and "days_to_close" not in source
    cal = simfunnel.calibrate(tmp_path / "leads.csv", simulate=False)
    fields = set(cal.estimates.loc[cal.estimates["from_data"].astype(bool), "field"])
    assert "rate.won" in fields  # conversion is still estimated
    assert "days_to_close" not in fields and "trend_per_year" not in fields


def test_intervals_never_below_zero_and_tiny_numbers_as_zero(tmp_path: Path) -> None:
    attempts = ["0"] * 199 + ["1000"]  # a mean whose normal interval would cross 0
    export(attempts=attempts).to_csv(tmp_path / "leads.csv", index=False)
    cal = simfunnel.calibrate(tmp_path / "leads.csv", simulate=False)
    row = cal.estimates.query("field == 'attempts_per_lead'").iloc[0]
    assert row["estimate"] == pytest.approx(5.0) and row["low"] == 0.0
    unsigned = cal.estimates[cal.estimates["field"] != "trend_per_year"]
    assert (unsigned["low"].dropna() >= 0).all()
    out = run_cli(tmp_path, "leads.csv", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    assert "95% -" not in (tmp_path / "s.yaml").read_text()
    assert plain_numbers("estimate 3.2e-17 (95% -1e-12 to 0.5), 1e-05 L1e-20") == (
        "estimate 0 (95% 0 to 0.5), 1e-05 L1e-20"
    )
    tidy = tidy_estimates(
        pd.DataFrame(
            {
                "field": ["a", "trend_per_year"],
                "estimate": [1e-15, -0.2],
                "low": [-0.1, -0.4],
                "high": [0.3, 0.1],
            }
        )
    )
    assert list(tidy["estimate"]) == [0.0, -0.2] and list(tidy["low"]) == [0.0, -0.4]


def test_a_deals_section_without_a_deals_table_is_said(tmp_path: Path) -> None:
    export().to_csv(tmp_path / "leads.csv", index=False)
    mapping = {"leads": ROLES3, "deals": {"lead_id": "Lead", "won_at": "Closed"}}
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(mapping))
    out = run_cli(tmp_path, "leads.csv", "--mapping", "map.yaml", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    assert "it has a deals section but no deals table was given (--deals)" in out.stderr


def test_line_breaks_in_quoted_cells_are_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text("a,b\n" + "".join(f'{i},"x\ny\nz"\n' for i in range(100)))
    assert check_csv(path, "leads quoted.csv", ReadLimits(max_rows=100)) is False  # 301 lines
    with pytest.raises(CalibrationError, match=r"more than 99 rows; the limit is 99 rows"):
        check_csv(path, "leads quoted.csv", ReadLimits(max_rows=99))


def test_a_long_cell_in_a_column_nobody_reads_is_no_harm(tmp_path: Path) -> None:
    frame = export()
    frame["Notes"] = ""
    frame.loc[7, "Notes"] = "called twice, " * 2_000  # 28,000 characters
    frame.to_csv(tmp_path / "leads.csv", index=False)
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({"leads": ROLES3}))
    out = run_cli(tmp_path, "leads.csv", "--mapping", "map.yaml", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({"leads": {**ROLES3, "owner": "Notes"}}))
    out = run_cli(tmp_path, "leads.csv", "--mapping", "map.yaml", "--out", "t.yaml")
    assert out.returncode == 2
    assert "column 'Notes': a cell of 28,000 characters (row 9)" in out.stderr
    assert not (tmp_path / "t.yaml").exists()


def test_many_small_sources_are_pooled_and_counted(tmp_path: Path) -> None:
    frame = export(n=1200)
    small = frame.index % 2 == 0  # 600 leads over 60 sources of 10
    frame.loc[small, "source"] = [f"partner_{i % 60:02d}" for i in range(int(small.sum()))]
    frame.to_csv(tmp_path / "leads.csv", index=False)
    out = run_cli(tmp_path, "leads.csv", "--out", "s.yaml")
    assert out.returncode == 0, out.stderr
    assert (
        "pooled into 'other' (fewer than 30 leads each): 60 sources (600 leads in 'other' "
        "now): partner_00, partner_01" in out.stderr
    )
    assert "(50 more)" in out.stderr
    text = (tmp_path / "s.yaml").read_text()
    assert "(50 more)" in text and "partner_59" not in text
    names = {s["name"] for s in yaml.safe_load(text)["sources"]}
    assert names == {"referral", "other"}  # web had the even rows

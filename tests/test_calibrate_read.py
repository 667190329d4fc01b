"""Reading CRM exports: presets, the native header, mappings, encodings and dates."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from simfunnel.calibration.estimate import observed_rates
from simfunnel.calibration.read import Table, lead_frame, read_table
from simfunnel.calibration.read.columns import CRM_COLUMNS
from simfunnel.calibration.read.mapping import mapping_from_dict
from simfunnel.errors import CalibrationError

SAMPLES = Path(str(resources.files("simfunnel") / "calibration" / "samples"))


@pytest.fixture(scope="module")
def hubspot() -> tuple[pd.DataFrame, list[str]]:
    frame, report = lead_frame(read_table(SAMPLES / "hubspot_contacts.csv"))
    return frame, report.lines()


@pytest.fixture(scope="module")
def salesforce() -> tuple[pd.DataFrame, list[str]]:
    frame, report = lead_frame(
        read_table(SAMPLES / "salesforce_leads.csv"),
        read_table(SAMPLES / "salesforce_opportunities.csv", "deals"),
    )
    return frame, report.lines()


def test_hubspot_sample_is_detected_and_parsed(hubspot: tuple[pd.DataFrame, list[str]]) -> None:
    frame, lines = hubspot
    raw = pd.read_csv(SAMPLES / "hubspot_contacts.csv", dtype=str)
    assert "mapping: hubspot" in lines
    assert len(frame) == len(raw)
    assert set(frame["source"]) == set(raw["Original Source"])
    customers = raw["Became a Customer Date"].notna().sum()
    assert (frame["status"] == "won").sum() == customers
    assert frame["created_at"].min() == pd.Timestamp(raw["Create Date"].min())
    assert frame["amount"].notna().sum() == raw["Recent Deal Amount"].notna().sum()
    assert "created_at" not in frame.attrs["date_only"]  # HubSpot dates carry a time


def test_salesforce_sample_joins_opportunities(salesforce: tuple[pd.DataFrame, list[str]]) -> None:
    frame, lines = salesforce
    leads = pd.read_csv(SAMPLES / "salesforce_leads.csv", dtype=str)
    opps = pd.read_csv(SAMPLES / "salesforce_opportunities.csv", dtype=str)
    assert "mapping: salesforce" in lines
    assert frame["opportunity"].sum() == leads["Converted Opportunity ID"].notna().sum()
    assert (frame["status"] == "won").sum() == (opps["Stage"] == "Closed Won").sum()
    won_amounts = opps.loc[opps["Stage"] == "Closed Won", "Amount"].astype(float).sum()
    assert frame["amount"].sum() == pytest.approx(won_amounts)
    # M/D/YYYY report dates, date only: no hour-of-day profile from them
    assert "created_at" in frame.attrs["date_only"]
    rates = observed_rates(frame)
    # conversion opens the opportunity: one event, counted once, as the opportunity
    assert set(rates["stage"]) >= {"opportunity", "won"}
    assert "qualified" not in set(rates["stage"])


def test_native_header_needs_no_mapping(tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {
            "lead_id": ["1", "2", "3"],
            "source": ["web", "web", "referral"],
            "created_at": ["2026-01-05T09:00:00", "2026-01-06T10:30:00", "2026-01-07T11:00:00"],
            "first_response_at": ["2026-01-05T09:20:00", "", "2026-01-07T11:05:00"],
            "attempts": ["2", "6", "1"],
            "contacted_at": ["2026-01-05T09:20:00", "", "2026-01-07T11:05:00"],
            "qualified_at": ["", "", "2026-01-07T11:05:00"],
            "opportunity_at": ["", "", "2026-01-20T12:00:00"],
            "won_at": ["", "", "2026-02-20T12:00:00"],
            "lost_at": ["2026-01-05T09:20:00", "2026-01-12T10:00:00", ""],
            "status": ["lost", "lost", "won"],
            "amount": ["", "", "12000"],
            "owner": ["rep_1", "rep_2", "rep_1"],
            "score": ["0.2", "0.4", "0.9"],
        },
        columns=list(CRM_COLUMNS),
    )
    path = tmp_path / "export.csv"
    rows.to_csv(path, index=False)
    frame, report = lead_frame(read_table(path))
    assert report.mapping == "crm"
    assert list(frame.columns[: len(CRM_COLUMNS)]) == list(CRM_COLUMNS)
    assert frame["first_response_minutes"].tolist()[0] == pytest.approx(20.0)
    assert frame["status"].tolist() == ["lost", "lost", "won"]


def test_latin1_is_read_and_said(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    text = "id;quelle;erstellt\n1;Messe München;26-02-2018 19:58\n2;Web;03-03-2018 08:15\n"
    path.write_bytes(text.encode("latin-1"))
    mapping = mapping_from_dict({"lead_id": "id", "source": "quelle", "created_at": "erstellt"})
    frame, report = lead_frame(read_table(path), mapping=mapping)
    assert "Latin-1" in report.files[0]
    assert frame["source"].tolist() == ["Messe München", "Web"]
    # day first, guessed from 26-02 and said
    assert frame["created_at"].tolist()[0] == pd.Timestamp("2018-02-26 19:58")
    assert frame["created_at"].tolist()[1] == pd.Timestamp("2018-03-03 08:15")
    assert any("day first" in line for line in report.notes)


def test_explicit_format_and_excel(tmp_path: Path) -> None:
    path = tmp_path / "leads.xlsx"
    pd.DataFrame(
        {"ID": [1, 2, 3], "Channel": ["a", "b", "a"], "When": ["05.01.26", "06.01.26", "07.01.26"]}
    ).to_excel(path, index=False)
    mapping = mapping_from_dict(
        {
            "leads": {"lead_id": "ID", "source": "Channel", "created_at": "When"},
            "dates": {"format": "%d.%m.%y"},
        }
    )
    frame, report = lead_frame(read_table(path), mapping=mapping)
    assert "xlsx" in report.files[0]
    assert frame["lead_id"].tolist() == ["1", "2", "3"]
    assert frame["created_at"].tolist()[2] == pd.Timestamp("2026-01-07")
    assert frame.attrs["date_only"] == ["created_at"]


def test_a_few_bad_rows_are_skipped_and_counted() -> None:
    n = 200
    raw = pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "src": ["web"] * n,
            "created": ["2026-01-05 10:00"] * n,
        }
    )
    raw.loc[7, "created"] = "not a date"
    mapping = mapping_from_dict({"lead_id": "id", "source": "src", "created_at": "created"})
    frame, report = lead_frame(raw, mapping=mapping)
    assert len(frame) == n - 1
    assert any("1 of 200 rows" in line and "'not a date'" in line for line in report.skipped)
    with pytest.raises(CalibrationError, match="strict"):
        lead_frame(raw, mapping=mapping, strict=True)


def test_a_canonical_frame_reads_back_as_itself(
    salesforce: tuple[pd.DataFrame, list[str]], tmp_path: Path
) -> None:
    frame, _ = salesforce
    # the back-test re-calibrates on a slice of the canonical frame, with no mapping
    again, report = lead_frame(frame)
    assert report.mapping == "crm"
    assert list(again.columns) == list(frame.columns)
    for column in ("status", "opportunity", "qualified", "won_at", "amount"):
        pd.testing.assert_series_equal(again[column], frame[column], check_dtype=False)
    # and as Parquet, read by its content whatever the file is called
    path = tmp_path / "leads.data"
    frame.to_parquet(path)
    table = read_table(path)
    assert table.how == "Parquet"
    assert lead_frame(table)[0]["status"].tolist() == frame["status"].tolist()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            {"leads": {"lead_id": "a", "sorce": "b"}},
            "leads.sorce: unknown role (did you mean 'source'?",
        ),
        ({"lead_id": "a", "dates": {"dayfirst": "yes"}}, "dates.dayfirst: must be true or false"),
        ({"lead_id": "a", "status_values": {"Hot": "great"}}, "status_values.Hot: must be one of"),
        ({"lead_id": "a", "deals": {"amount": "Amount"}}, "deals: give lead_id"),
        ({"preset": "pipedrive"}, "preset: must be one of hubspot, salesforce"),
    ],
)
def test_a_bad_mapping_is_one_clear_line(data: dict[str, object], words: str) -> None:
    with pytest.raises(CalibrationError) as err:
        mapping_from_dict(data)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_amounts_in_the_usual_spellings() -> None:
    cells = ["12000", "$12,000.50", "USD 1200", "1.234,56", "12,5", "EUR 3.000"]
    raw = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(cells))],
            "src": "web",
            "created": "2026-01-05",
            "value": cells,
        }
    )
    mapping = mapping_from_dict(
        {"lead_id": "id", "source": "src", "created_at": "created", "amount": "value"}
    )
    frame, _ = lead_frame(raw, mapping=mapping)
    assert frame["amount"].tolist() == [12000.0, 12000.5, 1200.0, 1234.56, 12.5, 3000.0]


def test_unparseable_dates_raise_one_error_and_no_pandas_warning() -> None:
    raw = pd.DataFrame({"id": ["1", "2", "3"], "src": ["w"] * 3, "created": ["soon", "x", "y"]})
    mapping = mapping_from_dict({"lead_id": "id", "source": "src", "created_at": "created"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pandas UserWarning would surface as an error
        with pytest.raises(CalibrationError, match="unparseable date: 3 of 3 rows"):
            lead_frame(raw, mapping=mapping)


def _leads_and_won_deals(n: int = 200) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    leads = pd.DataFrame(
        {
            "Id": [f"L{i}" for i in range(n)],
            "Channel": ["web"] * n,
            "Created": ["2026-01-05"] * n,
        }
    )
    deals = pd.DataFrame(
        {
            "Lead": [f"L{i}" for i in range(0, n, 4)],
            "Close Date": ["2026-02-01"] * len(range(0, n, 4)),
            "Amount": ["1000"] * len(range(0, n, 4)),
        }
    )
    mapping = mapping_from_dict(
        {
            "leads": {"lead_id": "Id", "source": "Channel", "created_at": "Created"},
            "deals": {"lead_id": "Lead", "won_at": "Close Date", "amount": "Amount"},
        }
    )
    return leads, deals, mapping


def test_a_deal_won_before_its_lead_was_created_blames_the_deals_column() -> None:
    leads, deals, mapping = _leads_and_won_deals()
    deals.loc[0, "Close Date"] = "2025-12-01"
    deals = Table(deals, "deals won.csv")
    with pytest.raises(CalibrationError) as caught:
        lead_frame(leads, deals, mapping, strict=True)
    message = str(caught.value)
    assert message.startswith("deals won.csv: column 'Close Date' (won_at) is before created_at")
    assert "(column 'Created' of leads)" in message and "'L0'" in message
    assert "1 of 200 leads" in message  # counted per lead, the deals' dates joined to it


def test_repeated_deal_rows_are_counted_not_summed() -> None:
    leads, deals, mapping = _leads_and_won_deals(400)  # 100 deals
    twice = pd.concat([deals, deals.iloc[:2]], ignore_index=True)
    frame, report = lead_frame(leads, twice, mapping)
    assert frame["amount"].sum() == 100 * 1000.0  # each deal once
    assert any("repeat an earlier row: 2 of 102 rows" in line for line in report.skipped)
    with pytest.raises(CalibrationError, match=r"repeat an earlier row.*--strict"):
        lead_frame(leads, twice, mapping, strict=True)
    ten = pd.concat([deals, deals.iloc[:10]], ignore_index=True)
    with pytest.raises(CalibrationError, match="10 of 110 rows"):
        lead_frame(leads, ten, mapping)  # more than a few: refused


def test_one_deal_id_on_two_different_rows_is_a_duplicate() -> None:
    leads = pd.DataFrame(
        {
            "Lead ID": [f"L{i}" for i in range(100)],
            "Lead Source": ["Web"] * 100,
            "Create Date": ["1/5/2026"] * 100,
            "Converted Opportunity ID": [f"O{i}" if i < 60 else None for i in range(100)],
        }
    )
    opps = pd.DataFrame(
        {
            "Opportunity ID": [f"O{i}" for i in range(60)] + ["O3"],
            "Stage": ["Closed Won"] * 30 + ["Closed Lost"] * 31,
            "Close Date": ["2/1/2026"] * 61,
            "Amount": ["500"] * 60 + ["900"],
        }
    )
    with pytest.raises(CalibrationError, match=r"'Opportunity ID' \(the deal id\) has duplicate"):
        lead_frame(leads, opps, preset="salesforce", strict=True)
    frame, report = lead_frame(leads, opps, preset="salesforce", max_bad_share=0.05)
    assert any("duplicate ids: 2 of 61 rows, e.g. 'O3'" in line for line in report.skipped)
    assert frame["amount"].sum() == 29 * 500.0  # O3's two rows both skipped


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("leads.xlsx", "not an Excel workbook"),
        ("leads.parquet", "not a Parquet file"),
        ("leads.csv", "not a CSV file"),
    ],
)
def test_a_binary_file_is_named_by_what_its_extension_promised(
    tmp_path: Path, name: str, kind: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))  # a PNG, renamed
    with pytest.raises(CalibrationError, match=f"leads {name}: {kind} \\(binary content"):
        read_table(path)


def test_accented_source_names_are_transliterated() -> None:
    from simfunnel.calibration.estimate import slug

    assert slug("Salon Événements") == "salon_evenements"
    assert slug("Ñandú Café") == "nandu_cafe"


def test_unquoted_yes_no_in_status_values_reads_as_the_cells_say():
    import numpy as np
    import pandas as pd
    import yaml

    import simfunnel
    from simfunnel.errors import CalibrationError

    rng = np.random.default_rng(1)
    n = 400
    won = rng.random(n) < 0.2
    frame = pd.DataFrame(
        {
            "Id": [f"L{i}" for i in range(n)],
            "Channel": rng.choice(["web", "ads"], n),
            "Created": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 200, n), "D"),
            "Converted": np.where(won, "Yes", "No"),
        }
    )
    leads = {"lead_id": "Id", "source": "Channel", "created_at": "Created", "status": "Converted"}
    # what `status_values: {Yes: won, No: lost}` unquoted in a YAML file arrives as
    unquoted = yaml.safe_load("status_values: {Yes: won, No: lost}")
    assert set(unquoted["status_values"]) == {True, False}
    cal = simfunnel.calibrate(frame, mapping={"leads": leads, **unquoted}, simulate=False)
    rates = cal.observed[cal.observed["stage"] == "won"]
    assert (rates["low"] < 0.2).all() and (rates["high"] > 0.2).all()
    # a value map none of whose values the column holds: every lead would be open
    wrong = {"leads": leads, "status_values": {"converted": "won", "lost": "lost"}}
    with pytest.raises(CalibrationError, match="none of the column's values is in the value"):
        simfunnel.calibrate(frame, mapping=wrong, simulate=False)


def test_an_as_of_long_after_the_last_lead_is_said():
    import simfunnel
    from simfunnel.calibration.samples import sample_path

    cal = simfunnel.calibrate(sample_path(), simulate=False, as_of="2026-10-01")
    said = [line for line in cal.summary_lines() if line.startswith("no lead in the")]
    assert len(said) == 1 and "--as-of 2026-10-01" in said[0]
    plain = simfunnel.calibrate(sample_path(), simulate=False)
    assert not any(line.startswith("no lead in the") for line in plain.summary_lines())

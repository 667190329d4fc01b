"""Numbers and tables for people: labels, one format per kind, terminal width."""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simfunnel.formatting import (
    KPI_LABELS,
    Column,
    Section,
    format_change,
    format_interval,
    format_number,
    kpi_kind,
    kpi_label,
    parameter_label,
    render_table,
)
from simfunnel.metrics import KPI_DOCS

SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


def test_every_kpi_has_a_label_and_a_kind_that_agrees_with_its_documentation():
    missing = set(KPI_DOCS) - set(KPI_LABELS)
    assert not missing, f"give {missing} a label and kind in simfunnel.formatting.KPI_LABELS"
    for kpi, doc in KPI_DOCS.items():
        kind = kpi_kind(kpi)
        unit = doc[doc.rfind("(") + 1 :].lower()
        expected = {"usd": "usd", "cou": "count", "sha": "share", "hou": "hours"}.get(unit[:3])
        if expected:
            assert kind == expected, kpi
    labels = [kpi_label(k) for k in KPI_DOCS]
    assert len(set(labels)) == len(labels)  # no two KPIs read alike


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    st.sampled_from(["usd", "count", "share", "hours", "months", "index", "ratio", "number"]),
    st.booleans(),
)
def test_never_scientific_notation(value, kind, statistic):
    text = format_number(value, kind, statistic=statistic)
    assert not SCIENTIFIC.search(text), text
    assert text != ""


def test_one_format_per_kind():
    assert format_number(216466.4, "usd") == "$216,466"
    assert format_number(-836.0, "usd") == "-$836"
    assert format_number(14.9, "count", statistic=True) == "14.9"
    assert format_number(24885.0, "count") == "24,885"
    assert format_number(0.4981, "share") == "49.8%"
    assert format_number(0.75, "index") == "0.750"
    assert format_number(math.nan, "usd") == "-" and format_number(None, "count") == "-"
    assert format_interval(101.921, 114.079, "count") == "101.9 to 114.1"
    assert format_change(8.673) == "+867.3%" and format_change(-0.871) == "-87.1%"


def test_unknown_kpi_falls_back_to_words_and_its_unit():
    assert kpi_label("payback_months") == "Payback (months)"
    assert parameter_label("sources.paid_social.budget_per_week_usd") == (
        "paid social: budget per week (USD)"
    )
    assert parameter_label("team.reps") == "team: reps"


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_tables_fit_the_width_and_say_what_they_left_out(width):
    columns = [
        Column("strategy", "<"),
        Column("mean"),
        Column("95% CI", ">", 1),
        Column("a long optional heading", ">", 2),
    ]
    rows = [
        Section("CAC (cost per customer)"),
        ["volume_heavy", "$216,466", "± $44,751", "something wide here"],
        ["quality_heavy", "$27,908", "± $1,171", "x"],
    ]
    text = render_table(columns, rows, width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "CAC (cost per customer)" in text and "$27,908" in text  # never dropped
    full = render_table(columns, rows, width=200)
    assert "left out" not in full and "something wide here" in full
    if "something wide here" not in text:
        assert "left out" in text


def test_prose_wraps_to_a_terminal_and_stays_one_line_in_a_pipe(monkeypatch):
    import io

    from simfunnel.formatting import wrap_if_terminal

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    sentence = "calibrate: " + "a long sentence of words " * 10
    monkeypatch.setenv("COLUMNS", "40")
    assert wrap_if_terminal(sentence, io.StringIO()) == sentence  # a pipe: kept whole
    lines = wrap_if_terminal(sentence, Terminal(), indent="  ").splitlines()
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert all(line.startswith("  ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == sentence.strip()


def test_a_long_word_is_kept_whole():
    from simfunnel.formatting import wrap

    path = "/a/very/long/path/" * 5
    assert path in wrap(f"written to {path} today", 30).splitlines()

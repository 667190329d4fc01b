"""A report never looks like success when it failed: real papermill runs of a tiny notebook.

The notebook writes its headline JSON, then divides by its parameter ``x``: with
``x: 0`` (a valid value) a later cell fails after the headline was written.
"""

from __future__ import annotations

import json
import math

import nbformat
import pytest
from conftest import run_cli

from simfunnel.reporting.headline import format_kpi, scenario_sentence


def tiny_notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'x: int = 1  # the divisor\nheadline_json: str = ""  # where to write the headline'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny"),
        params,
        nbformat.v4.new_code_cell(
            "from simfunnel.reporting.headline import write_headline\n"
            "if headline_json:\n"
            '    write_headline({"summary": {"x": x}}, headline_json)'
        ),
        nbformat.v4.new_markdown_cell("## The division"),
        nbformat.v4.new_code_cell("value = 10 / x\nprint(value)"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny(tmp_path):
    return tiny_notebook(tmp_path / "tiny.ipynb")


def report(tiny, out, x):
    return run_cli("report", str(tiny), "--out", str(out), "-p", "x", str(x), "--quiet")


def test_a_failed_report_cannot_be_taken_for_the_previous_success(tiny, tmp_path):
    out = tmp_path / "out"
    ok = report(tiny, out, 2)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.strip() == ""  # no "[IPKernelApp] ERROR | KeyboardInterrupt caught"
    assert json.loads((out / "tiny.json").read_text()) == {"summary": {"x": 2}}
    current = ["tiny.html", "tiny.ipynb", "tiny.json", "tiny.xlsx"]
    assert sorted(p.name for p in out.iterdir()) == current

    failed = report(tiny, out, 0)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr
    # named as the user finds it in the saved notebook, where papermill has added its
    # parameters cell and error banners: index 7 there, not cell 4 of the source
    saved = nbformat.read(out / "tiny.ipynb", as_version=4)
    (index,) = [i for i, c in enumerate(saved.cells) if c.source.startswith("value = 10 / x")]
    assert index == 7
    assert saved.cells[index].outputs[-1]["output_type"] == "error"
    assert (
        f"tiny: cell {index} ('value = 10 / x') failed: ZeroDivisionError: division by zero"
        in lines[0]
    )
    # no current headline or page: the earlier ones are clearly renamed, and whole
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "tiny.ipynb",
        "tiny.previous.html",
        "tiny.previous.ipynb",
        "tiny.previous.json",
        "tiny.previous.xlsx",
    ]
    assert json.loads((out / "tiny.previous.json").read_text()) == {"summary": {"x": 2}}

    again = report(tiny, out, 4)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == current
    assert json.loads((out / "tiny.json").read_text()) == {"summary": {"x": 4}}


def test_a_valid_parameter_that_breaks_a_later_cell_leaves_no_headline(tiny, tmp_path):
    out = tmp_path / "fresh"
    failed = report(tiny, out, 0)
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["tiny.ipynb"]  # the partial notebook only


def test_undefined_kpis_read_as_undefined():
    assert format_kpi("cac", math.nan, prefix="$") == "undefined (no customers)"
    assert format_kpi("cac", None) == "undefined (no customers)"
    assert format_kpi("cac", 1234.5, prefix="$") == "$1,234"
    assert format_kpi("burnout_index", 0.256, ".2f") == "0.26"
    sentence = scenario_sentence(
        {
            "scenario": "no_wins",
            "replications": 3,
            "summary": {"cac": None, "customers": 0.0, "burnout_index": 0.1},
        }
    )
    assert sentence == (
        "no_wins wins 0 customers, so its CAC is undefined (no customers). Their burnout "
        "index is 0.10 (0: rested, 1: exhausted). (Means of 3 replications.)"
    )

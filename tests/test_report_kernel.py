"""A batch's reports share one kernel, reset between reports: real kernels and papermill.

A tiny notebook records the state a notebook may change (its namespace, matplotlib's
rc settings, pandas' options, warnings filters, environment, ``sys.path``, numpy's
error settings, the working folder and execution count), then, when asked, changes
all of it, raises, or kills its kernel. Every report of the batch must start from the
state a fresh kernel gives, as a report run alone does.
"""

from __future__ import annotations

import base64
import json
import re

import nbformat
import pytest
import yaml
from conftest import run_cli

STATE = """\
state = {
    "leaked": "leaked" in globals(),
    "linewidth": float(matplotlib.rcParams["lines.linewidth"]),
    "float_format": repr(pd.get_option("display.float_format")),
    "filters": [len(warnings.filters), warnings.filters[0][0] if warnings.filters else ""],
    "environ": os.environ.get("SIMFUNNEL_LEAK_CHECK"),
    "path": sys.path[-1],
    "divide": np.geterr()["divide"],
    "cwd": os.getcwd(),
    "count": get_ipython().execution_count,
    "frozen": gc.get_freeze_count(),
}
if headline_json:
    Path(headline_json).write_text(json.dumps({"summary": {"tag": tag}, "state": state}))
"""

CHANGE = """\
if change:
    leaked = True
    matplotlib.rcParams["lines.linewidth"] = 7.0
    pd.set_option("display.float_format", "{:.1f}".format)
    warnings.filterwarnings("ignore")
    os.environ["SIMFUNNEL_LEAK_CHECK"] = tag
    sys.path.append("/" + tag)
    np.seterr(divide="raise")
if crash == "raise":
    raise RuntimeError("asked to fail")
if crash == "exit":
    os._exit(3)
"""


def state_notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'tag: str = ""  # names the report\n'
        "change: bool = False  # change every kind of state after recording it\n"
        'crash: str = ""  # "raise" in a cell, or "exit" the kernel\n'
        'headline_json: str = ""  # where to write the state'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# State"),
        params,
        nbformat.v4.new_code_cell(
            "import gc\nimport json\nimport os\nimport sys\nimport warnings\n"
            "from pathlib import Path\n\n"
            "import matplotlib\nimport numpy as np\nimport pandas as pd"
        ),
        nbformat.v4.new_code_cell(STATE),
        nbformat.v4.new_code_cell(CHANGE),
        nbformat.v4.new_code_cell("print(tag)\nsorted(globals())"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


SETS = [
    {"tag": "a", "change": True},  # a fresh kernel; then changes everything
    {"tag": "b"},
    {"tag": "c", "change": True, "crash": "raise"},  # changes everything, then fails
    {"tag": "d"},
    {"tag": "e", "crash": "exit"},  # kills its kernel
    {"tag": "f"},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The batch on one kernel, the same batch's first two with a kernel each, and b alone."""
    folder = tmp_path_factory.mktemp("kernel")
    nb = state_notebook(folder / "state.ipynb")
    sets = folder / "sets.yaml"
    sets.write_text(yaml.safe_dump(SETS))
    two = folder / "two.yaml"
    two.write_text(yaml.safe_dump(SETS[:2]))
    shared = run_cli("report", str(nb), "-f", str(sets), "--out", str(folder / "shared"), "--quiet")
    each = run_cli(
        "report",
        str(nb),
        "-f",
        str(two),
        "--kernel-per-report",
        "--out",
        str(folder / "each"),
        "--quiet",
    )
    alone = run_cli("report", str(nb), "-p", "tag", "b", "--out", str(folder / "alone"), "--quiet")
    return folder, shared, each, alone


def report_of(out, tag):
    """The folder, recorded state and executed notebook of the report tagged ``tag``."""
    (folder,) = [p for p in out.iterdir() if p.is_dir() and p.name.endswith(f"tag-{tag}")]
    data = json.loads((folder / f"{folder.name}.json").read_text())
    nb = nbformat.read(folder / f"{folder.name}.ipynb", as_version=4)
    return folder, data["state"], nb


def without_cwd(state):
    return {k: v for k, v in state.items() if k != "cwd"}


def test_each_report_of_a_batch_starts_from_a_fresh_kernels_state(runs):
    folder, _, _, alone = runs
    assert alone.returncode == 0, alone.stderr
    fresh = json.loads((folder / "alone" / "state.json").read_text())["state"]
    assert fresh["leaked"] is False and fresh["environ"] is None and fresh["divide"] != "raise"
    assert fresh["cwd"] == str((folder / "alone").resolve())
    # nothing is frozen out of garbage collection: a simulation run freezes the objects
    # it finds only when no one else has (simfunnel.model_core)
    assert fresh["frozen"] == 0
    out = folder / "shared"
    for tag in "abdf":  # after changes, after a failed cell, after a dead kernel
        where, state, _ = report_of(out, tag)
        assert without_cwd(state) == without_cwd(fresh), tag
        assert state["cwd"] == str(where.resolve()), tag  # each runs in its own folder


def test_a_report_of_a_batch_equals_the_same_report_run_alone(runs):
    folder, _, _, _ = runs
    _, _, shared_nb = report_of(folder / "shared", "b")
    alone_nb = nbformat.read(folder / "alone" / "state.ipynb", as_version=4)
    code = [c for c in shared_nb.cells if c.cell_type == "code"]
    alone_code = [c for c in alone_nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [c.execution_count for c in alone_code]
    assert code[0].execution_count == 1
    # the last cell prints the tag and lists the namespace: nothing left from report a
    assert code[-1].outputs == alone_code[-1].outputs
    assert "leaked" not in str(code[-1].outputs)


def test_failed_reports_are_listed_and_the_next_report_still_runs(runs):
    folder, shared, _, _ = runs
    assert shared.returncode == 1
    lines = shared.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in shared.stderr
    assert "2 of 6 reports failed" in lines[0] and "RuntimeError: asked to fail" in lines[0]
    index = (folder / "shared" / "index.html").read_text()
    assert "asked to fail" in index and "kernel died" in index
    assert len(re.findall(r'<a href="[^"]+\.html">', index)) == 4
    for tag in "df":
        where, _, _ = report_of(folder / "shared", tag)
        assert (where / f"{where.name}.html").is_file()


def test_a_kernel_per_report_gives_the_same_reports(runs):
    folder, _, each, _ = runs
    assert each.returncode == 0, each.stderr
    for tag in "ab":
        _, state, nb = report_of(folder / "each", tag)
        _, shared_state, shared_nb = report_of(folder / "shared", tag)
        assert without_cwd(state) == without_cwd(shared_state), tag
        assert nb.cells[-1].outputs == shared_nb.cells[-1].outputs, tag


def test_a_report_of_the_batch_fixture_equals_the_same_report_alone(batch_report, tmp_path):
    """The bundled notebook: the second report of a batch, on a reused kernel, is the
    report that the same parameters give alone (figures byte for byte)."""
    batch, done = batch_report  # shared with tests/test_reports.py (conftest.py)
    assert done.returncode == 0, done.stderr
    second = batch / "02_scenarios-volume_heavy+balanced"
    given = nbformat.read(second / f"{second.name}.ipynb", as_version=4)
    params = {k: v for k, v in given.metadata.papermill.parameters.items() if k != "headline_json"}
    flags = [arg for k, v in params.items() for arg in ("-p", k, json.dumps(v))]
    alone = run_cli("report", "volume_vs_quality", *flags, "--out", str(tmp_path), "--quiet")
    assert alone.returncode == 0, alone.stderr
    mine = json.loads((tmp_path / "volume_vs_quality.json").read_text())
    theirs = json.loads((second / f"{second.name}.json").read_text())
    for facts in (mine, theirs):
        facts["provenance"].pop("date")
        facts["provenance"].pop("run_seconds", None)
    assert mine == theirs

    def figures(nb):
        return [
            base64.b64decode(o["data"]["image/png"])
            for c in nb.cells
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]

    own = nbformat.read(tmp_path / "volume_vs_quality.ipynb", as_version=4)
    assert len(figures(own)) >= 3 and figures(own) == figures(given)
    assert [c.get("execution_count") for c in own.cells] == [
        c.get("execution_count") for c in given.cells
    ]

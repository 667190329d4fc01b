"""docs/scenario-reference.md is what the schema gives (make docs rewrites it)."""

import subprocess
import sys

from conftest import ROOT

from simfunnel import _docs
from simfunnel.parameters import Scenario, Team


def test_the_committed_reference_is_current():
    page = (ROOT / "docs" / "scenario-reference.md").read_text()
    assert page == _docs.reference(), "docs/scenario-reference.md is stale: run make docs"


def test_the_reference_holds_every_field_with_its_description_and_default():
    page = _docs.reference()
    for path, model in _docs._sections():
        assert f"## `{path or 'scenario (top level)'}`" in page
        for name, field in model.model_fields.items():
            assert f"| `{name}` |" in page
            if field.description:
                assert field.description.replace("|", "\\|") in page
    hiring = Team.model_fields["hiring_cost_usd"]
    assert f"| `hiring_cost_usd` | float | `{hiring.default:g}` | >= 0, <= 1e+08 |" in page
    assert "[hiring-and-ramp](assumptions.md#hiring-and-ramp)" in page
    assert "## `sources[].deal_size`" in page
    assert Scenario.model_fields["provenance"].description in page


def test_check_mode_says_when_the_page_is_stale(tmp_path, monkeypatch):
    stale = tmp_path / "scenario-reference.md"
    stale.write_text("old\n")
    monkeypatch.setattr(_docs, "PAGE", stale)
    assert _docs.main(["--check"]) == 1
    assert _docs.main([]) == 0
    assert _docs.main(["--check"]) == 0
    current = subprocess.run(
        [sys.executable, "-m", "simfunnel._docs", "--check"], cwd=ROOT, capture_output=True
    )
    assert current.returncode == 0, current.stderr

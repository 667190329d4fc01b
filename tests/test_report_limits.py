"""A report, or a batch over a large grid, is counted and refused above --max-runs."""

import pytest
import yaml

from simfunnel.reporting.report import available_notebooks, notebook_parameters
from simfunnel.reporting.runs import report_runs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["scenario", "-p", "replications", "200000"],
            "this would be 200,000 runs (one scenario report); the limit is 100,000",
        ),
        (
            ["volume_vs_quality", "-p", "replications", "50", "--max-runs", "500"],
            # 3 strategies x (4 team sizes + their own) x 50 replications
            "this would be 750 runs (one volume_vs_quality report); the limit is 500",
        ),
    ],
)
def test_one_report_above_the_limit_is_refused_before_it_runs(cli, tmp_path, args, message):
    out = tmp_path / "report"
    done = cli("report", *args, "--out", str(out))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert message in line and "raise --max-runs" in line
    assert not out.exists()


def test_a_batch_counts_every_report_of_its_grid(cli, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"grid": {"replications": [1000, 3000], "seed": [1, 2, 3]}}))
    out = tmp_path / "batch"
    done = cli("report", "scenario", "-f", str(grid), "--out", str(out), "--max-runs", "10000")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "this would be 12,000 runs (6 scenario reports, up to 3,000 runs each)" in line
    assert not out.exists()


def test_the_counts_follow_each_notebooks_parameters():
    books = available_notebooks()

    def count(name, **params):
        return report_runs(books[name], notebook_parameters(books[name]), params)

    assert count("scenario") == 10  # its default replications
    assert count("scenario", replications=3) == 3
    assert count("volume_vs_quality", team_sizes=[5, 5, 8], replications=2) == 3 * 3 * 2
    # the default sweep: a 3-level grid of two parameters, 5 replications
    assert count("parameter_sweep") == 9 * 5
    # the example study (10 trials x 2 + 4 candidates x 5), and once per team size
    assert count("budget_mix") == 3 * (10 * 2 + 4 * 5)
    assert count("budget_mix", team_sizes=[]) == 40
    # the calibration report's fit budget, its check, a second fit and the forecasts
    assert count("calibration") == (60 * 4 + 1) + 6 + (60 * 4 + 1) + 20
    assert count("calibration", holdout=0.0) == 60 * 4 + 1 + 6
    assert count("calibration", results="/some/results") == 0  # it reads, runs nothing

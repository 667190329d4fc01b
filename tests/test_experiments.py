"""Replications, paired comparison, sweeps, backends, store and analysis, for real."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from ishigami import analytic_indices, ishigami

import simfunnel
from simfunnel.errors import SimfunnelError, SpecError, StoreError
from simfunnel.experiments.analysis import best_points, pareto_front, point_means
from simfunnel.experiments.comparison import compare
from simfunnel.experiments.replications import replicate, summarize
from simfunnel.experiments.spec import load_spec
from simfunnel.experiments.store import ResultsStore, load_results
from simfunnel.experiments.sweep import run_sweep

SHORT = {"run.horizon_days": 100, "run.warmup_days": 14}


def small_spec(**extra):
    spec = {
        "scenario": "quality_heavy",
        "overrides": {"run.horizon_days": 60, "run.warmup_days": 7},
        "parameters": [
            {"path": "team.reps", "range": [4, 10]},
            {"path": "process.routing.policy", "levels": ["fifo", "newest_first"]},
        ],
        "design": {"kind": "grid", "levels": 3},
        "replications": 2,
        "seed": 3,
        "kpis": ["cac", "revenue", "burnout_index", "customers"],
    }
    spec.update(extra)
    return spec


def test_replicate_rows_seeds_and_summary():
    runs = replicate(
        "quality_heavy", n=4, seed=9, overrides=SHORT, backend="serial", progress=False
    )
    assert list(runs.replication) == [0, 1, 2, 3]
    assert runs.seed.nunique() == 4
    again = replicate(
        "quality_heavy", n=4, seed=9, overrides=SHORT, backend="serial", progress=False
    )
    pd.testing.assert_frame_equal(
        runs.drop(columns="elapsed_seconds"), again.drop(columns="elapsed_seconds")
    )
    table = summarize(runs.drop(columns="scenario"))
    row = table.loc["customers"]
    assert row.ci_low <= row["mean"] <= row.ci_high
    assert row["mean"] == pytest.approx(runs.customers.mean())
    assert row.rel_half_width == pytest.approx((row.ci_high - row.ci_low) / 2 / row["mean"])


def test_sequential_stopping_adds_batches_until_precise_enough():
    loose = replicate(
        "quality_heavy",
        n=3,
        seed=1,
        overrides=SHORT,
        backend="serial",
        progress=False,
        target_kpi="leads",
        precision=0.5,
        max_n=30,
    )
    assert len(loose) == 3  # leads vary little: the first batch already suffices
    tight = replicate(
        "quality_heavy",
        n=3,
        seed=1,
        overrides=SHORT,
        backend="serial",
        progress=False,
        target_kpi="customers",
        precision=0.08,
        max_n=30,
    )
    assert (len(tight) > 3 and len(tight) % 3 == 0) or len(tight) == 30
    table = summarize(tight.drop(columns="scenario"))
    assert table.loc["customers"].rel_half_width <= 0.08 or len(tight) == 30
    # it stopped at the first batch that met the target
    shorter = summarize(tight.drop(columns="scenario").iloc[: len(tight) - 3])
    assert shorter.loc["customers"].rel_half_width > 0.08


def test_common_random_numbers_narrow_the_paired_interval():
    a = simfunnel.load_scenario("balanced", SHORT)
    b = a.with_overrides({"name": "balanced_plus", "team.reps": 14})
    result = compare([a, b], n=10, seed=4, backend="serial", progress=False)
    table = result.table(["customers", "revenue", "leads", "stale_share"])
    for kpi in ("customers", "revenue", "stale_share"):
        row = table.loc[(kpi, "balanced_plus")]
        assert row.paired_half_width < 0.7 * row.unpaired_half_width, kpi
    # the team change leaves arrivals alone: identical leads in every replication
    leads = table.loc[("leads", "balanced_plus")]
    assert leads["diff"] == 0 and leads.paired_half_width == 0
    # the paired difference is the mean of per-replication differences
    runs = result.runs.pivot(index="replication", columns="scenario", values="customers")
    assert table.loc[("customers", "balanced_plus"), "diff"] == pytest.approx(
        (runs["balanced_plus"] - runs["balanced"]).mean()
    )


def test_compare_rejects_bad_input():
    with pytest.raises(SimfunnelError, match="at least two"):
        compare(["balanced"], n=3, backend="serial")
    with pytest.raises(SimfunnelError, match="repeated: balanced"):
        compare(["balanced", "balanced"], n=3, backend="serial")
    with pytest.raises(SimfunnelError, match="baseline"):
        compare(["balanced", "quality_heavy"], n=3, baseline="nope", backend="serial")


def _comparable(frame):
    return frame.drop(columns=["elapsed_seconds", "run_id"]).reset_index(drop=True)


@pytest.mark.slow
def test_same_results_on_every_backend(tmp_path):
    spec = small_spec()
    run_sweep(spec, tmp_path / "serial", backend="serial", progress=False)
    run_sweep(spec, tmp_path / "processes", backend="processes", workers=2, progress=False)
    run_sweep(spec, tmp_path / "dask", backend="dask", workers=2, progress=False)
    serial = _comparable(load_results(tmp_path / "serial"))
    assert len(serial) == 3 * 2 * 2
    assert (serial.status == "ok").all()
    pd.testing.assert_frame_equal(serial, _comparable(load_results(tmp_path / "processes")))
    pd.testing.assert_frame_equal(serial, _comparable(load_results(tmp_path / "dask")))
    meta = ResultsStore.open(tmp_path / "dask").metadata()
    assert meta["invocations"][0]["backend"] == "dask"
    assert meta["seeds"]["replications"] == list(serial.seed.unique())


def test_store_metadata_and_point_layout(tmp_path):
    summary = run_sweep(small_spec(), tmp_path / "s", backend="serial", progress=False)
    assert (summary.points, summary.ran, summary.skipped, summary.failed) == (6, 6, 0, 0)
    meta = json.loads((tmp_path / "s" / "metadata.json").read_text())
    assert meta["format_version"] == 1
    assert meta["simfunnel_version"] == simfunnel.__version__
    assert meta["spec"]["parameters"][0]["path"] == "team.reps"
    assert meta["base_scenario"]["run"]["horizon_days"] == 60
    assert meta["invocations"][0]["status"] == "complete"
    assert len(list((tmp_path / "s" / "points").glob("part-*.parquet"))) == 6
    results = load_results(tmp_path / "s")
    assert sorted(results["team.reps"].unique()) == [4, 7, 10]
    assert not results.duplicated(["point", "replication"]).any()
    with pytest.raises(StoreError, match="already stored"):
        ResultsStore.open(tmp_path / "s").write_point(0, [{"point": 0}])
    with pytest.raises(StoreError, match="not empty"):
        run_sweep(small_spec(), tmp_path / "s", backend="serial", progress=False)


def test_other_format_version_is_refused(tmp_path):
    run_sweep(small_spec(), tmp_path / "s", backend="serial", progress=False)
    meta_path = tmp_path / "s" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="format 99"):
        load_results(tmp_path / "s")


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = small_spec(
        parameters=[
            {"path": "run.horizon_days", "levels": [40, 100]},
            {"path": "run.warmup_days", "levels": [10, 60]},  # 60 >= 40 fails at that point
        ],
        overrides={},
    )
    summary = run_sweep(spec, tmp_path / "s", backend="processes", workers=2, progress=False)
    assert (summary.points, summary.failed) == (4, 1)
    results = load_results(tmp_path / "s")
    bad = results[results.status == "error"]
    assert len(bad) == 2 and set(bad["run.horizon_days"]) == {40}
    assert bad.error.str.contains("warmup_days must be < horizon_days").all()
    assert (results[results.status == "ok"].customers >= 0).all()
    means = point_means(results, load_spec(spec))
    assert means.n_ok.tolist() == [2, 0, 2, 2]


def test_resume_with_retry_failed_replaces_only_failures(tmp_path):
    calls = []

    def flaky(params, seed):
        calls.append(params["x"])
        if params["x"] == 2 and len(calls) < 10:
            raise RuntimeError("transient")
        return {"y": params["x"] * 10.0}

    spec = {
        "scenario": "ignored",
        "parameters": [{"path": "x", "levels": [1, 2, 3]}],
        "replications": 1,
        "kpis": ["y"],
    }
    first = run_sweep(spec, tmp_path / "s", backend="serial", progress=False, model=flaky)
    assert first.failed == 1
    again = run_sweep(
        spec, tmp_path / "s", backend="serial", progress=False, model=flaky, resume=True
    )
    assert again.ran == 0 and again.skipped == 3
    calls.extend([0] * 10)
    fixed = run_sweep(
        spec,
        tmp_path / "s",
        backend="serial",
        progress=False,
        model=flaky,
        resume=True,
        retry_failed=True,
    )
    assert fixed.ran == 1 and fixed.failed == 0
    results = load_results(tmp_path / "s")
    assert results.y.tolist() == [10.0, 20.0, 30.0]


def test_sobol_indices_of_ishigami_match_the_analytical_values(tmp_path):
    from simfunnel.experiments.analysis import sensitivity

    spec = {
        "scenario": "ignored",
        "parameters": [{"path": f"x{i}", "range": [-math.pi, math.pi]} for i in (1, 2, 3)],
        "design": {"kind": "sobol", "samples": 1024},
        "replications": 1,
        "seed": 2,
        "kpis": ["y"],  # a custom model's outputs
    }
    run_sweep(spec, tmp_path / "ish", backend="serial", progress=False, model=ishigami)
    table = sensitivity(tmp_path / "ish", kpis=["y"]).set_index("parameter")
    s1, st = analytic_indices()
    for name, a1, at in zip(["x1", "x2", "x3"], s1, st, strict=True):
        row = table.loc[name]
        assert row.S1 == pytest.approx(a1, abs=max(0.05, 1.5 * row.S1_conf)), name
        assert row.ST == pytest.approx(at, abs=max(0.05, 1.5 * row.ST_conf)), name
    assert table.loc["x2"].ST > table.loc["x3"].ST > table.loc["x3"].S1 - 0.05


def test_morris_and_lhs_designs_rank_the_influential_parameter(tmp_path):
    from simfunnel.experiments.analysis import sensitivity

    base = {
        "scenario": "ignored",
        "replications": 1,
        "seed": 5,
        "kpis": ["y"],
        "parameters": [{"path": f"x{i}", "range": [-math.pi, math.pi]} for i in (1, 2, 3)],
    }
    run_sweep(
        {**base, "design": {"kind": "morris", "samples": 40, "levels": 4}},
        tmp_path / "m",
        backend="serial",
        progress=False,
        model=ishigami,
    )
    morris = sensitivity(tmp_path / "m", kpis=["y"]).set_index("parameter")
    assert morris.mu_star.idxmin() == "x3" or morris.loc["x3"].mu_star < morris.loc["x1"].mu_star
    assert len(load_results(tmp_path / "m")) == 40 * 4
    run_sweep(
        {**base, "design": {"kind": "lhs", "samples": 50}},
        tmp_path / "l",
        backend="serial",
        progress=False,
        model=ishigami,
    )
    lhs = load_results(tmp_path / "l")
    assert len(lhs) == 50
    # Latin hypercube: each of 50 equal bins of x1 holds exactly one point
    bins = np.floor((lhs.x1 + math.pi) / (2 * math.pi) * 50).astype(int)
    assert sorted(bins) == list(range(50))


def test_best_points_and_pareto_front():
    means = pd.DataFrame(
        {
            "cac": [10.0, 8.0, 12.0, 9.0, math.nan],
            "revenue": [100.0, 90.0, 130.0, 80.0, 50.0],
            "burnout_index": [0.2, 0.5, 0.3, 0.25, 0.1],
        }
    )
    best = best_points(means, "cac", constraints=["burnout_index <= 0.3", "revenue >= 85"])
    assert best.index.tolist() == [0, 2]
    front = pareto_front(means)
    assert set(front.index) == {0, 1, 2, 3}
    dominated = pareto_front(
        pd.concat(
            [means, pd.DataFrame({"cac": [11.0], "revenue": [95.0], "burnout_index": [0.3]})],
            ignore_index=True,
        )
    )
    assert 5 not in dominated.index  # worse than point 0 on all three
    with pytest.raises(SpecError, match="expected 'kpi <= value'"):
        best_points(means, "cac", constraints=["burnout_index is low"])


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"parameters": [{"path": "team.rep", "range": [4, 8]}]},
            "parameter team.rep: value 4 is not valid: team.rep: unknown field",
        ),
        (
            {"parameters": [{"path": "team.reps", "range": [8, 4]}]},
            "parameter team.reps: range: low must be below high, got [8, 4]",
        ),
        (
            {"parameters": [{"path": "team.reps", "range": [5, 5]}]},
            "parameter team.reps: range: low must be below high",
        ),
        (
            {"parameters": [{"path": "team.reps", "levels": []}]},
            "parameter team.reps: levels: tuple should have at least 1 item",
        ),
        (
            {"parameters": [{"path": "team.reps", "range": ["a", 9]}]},
            "parameter team.reps: range[0]",
        ),
        ({"replications": 0}, "replications: must be >= 1, got 0"),
        (
            {"parameters": [{"path": "team.reps", "levels": ["many"]}]},
            "parameter team.reps: value 'many' is not valid",
        ),
        (
            {"parameters": [{"path": "sources.tv.leads_per_week", "range": [1, 9]}]},
            "no item named 'tv'",
        ),
        ({"kpis": ["profits"]}, "kpis: unknown KPI 'profits'"),
        (
            {
                "design": {"kind": "sobol"},
                "parameters": [{"path": "process.routing.policy", "levels": ["fifo", "score"]}],
            },
            "sobol needs numeric",
        ),
    ],
)
def test_bad_specs_name_the_parameter(change, message):
    with pytest.raises(SpecError) as err:
        load_spec(small_spec(**change))
    assert message in str(err.value)
    assert "\n" not in str(err.value)

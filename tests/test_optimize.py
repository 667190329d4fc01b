"""The optimiser on the real funnel: known optimum, binding constraint, failures,
reproducibility across backends, and resume after a real kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import yaml
from conftest import ROOT

from simfunnel.experiments.replications import replicate
from simfunnel.experiments.store import load_results
from simfunnel.optimization import optimize
from simfunnel.optimization.search import STUDY_NAME, run_search, storage_url, trials_frame

HIGH_CONVERSION = {
    f"sources.{source}.{field}": value
    for source in ("referral", "organic_search")
    for field, value in (
        ("win_probability", 0.8),
        ("opportunity_probability", 0.9),
        ("days_to_close", 7),
    )
}

# A small, fast world with many customers per run (so CAC is not too noisy): two
# sources with strongly diminishing returns, so the best split is inside the simplex.
TWO_SOURCES = {
    "run.horizon_days": 120,
    "run.warmup_days": 14,
    "burnout.enabled": False,
    "burnout.annual_turnover": 0.0,
    "team.reps": 8,
    "sources.paid_social.budget_per_week_usd": 0,
    "sources.paid_search.budget_per_week_usd": 0,
    "sources.referral.cpl_elasticity": 0.7,
    "sources.organic_search.cpl_elasticity": 0.7,
    "sources.referral.reference_budget_per_week_usd": 8000,
    "sources.organic_search.reference_budget_per_week_usd": 8000,
    **HIGH_CONVERSION,
}
TOTAL = 16_000


def test_finds_the_brute_force_optimum_with_far_fewer_simulations():
    # Brute force: 9 splits x 16 replications = 144 simulations. CAC against the
    # referral share is smoothed by a quadratic through the inner points (the noise of
    # each mean is ~2.5%); its minimum is the true best split.
    shares = np.linspace(0, 1, 9)
    brute_reps = 16
    means = []
    for share in shares:
        over = dict(TWO_SOURCES)
        over["sources.referral.budget_per_week_usd"] = round(share * TOTAL)
        over["sources.organic_search.budget_per_week_usd"] = TOTAL - round(share * TOTAL)
        runs = replicate(
            "balanced",
            n=brute_reps,
            seed=11,
            overrides=over,
            progress=False,
            backend="processes",
            workers=2,
        )
        means.append(runs["cac"].mean())
    brute_sims = len(shares) * brute_reps
    inner = slice(1, -1)
    curve = np.poly1d(np.polyfit(shares[inner], means[inner], 2))
    fine = np.linspace(shares[1], shares[-2], 601)
    best_share, best_cac = fine[np.argmin(curve(fine))], curve(fine).min()
    assert 0.3 < best_share < 0.8  # an inner optimum: the split matters
    assert min(means[0], means[-1]) > 1.15 * best_cac  # and the edges are clearly worse

    spec = {
        "scenario": "balanced",
        "overrides": TWO_SOURCES,
        "budget": {"total_per_week_usd": TOTAL, "sources": ["referral", "organic_search"]},
        "objective": "cac",
        "replications": 2,
        "trials": 10,
        "batch_size": 2,
        "seed": 5,
        "selection": {"top": 2, "replications": 6},
    }
    result = optimize(spec, backend="processes", workers=2, progress=False)
    found = result.decision["sources.referral.budget_per_week_usd"] / TOTAL
    assert result.simulations["total"] == 10 * 2 + 3 * 6 == 38  # against 144
    assert result.simulations["total"] < brute_sims / 3
    assert shares[1] <= found <= shares[-2]
    assert curve(found) <= 1.03 * best_cac, (found, best_share)


BURNOUT_WORLD = {
    "run.horizon_days": 90,
    "run.warmup_days": 14,
    "sources.paid_social.budget_per_week_usd": 0,
    "sources.paid_search.budget_per_week_usd": 0,
    "sources.referral.budget_per_week_usd": 12000,
    "sources.organic_search.budget_per_week_usd": 12000,
    **HIGH_CONVERSION,
    # dear reps: fewer of them, working harder, would give the lowest CAC
    "team.loaded_cost_per_hour_usd": 400,
}


def _reps_spec(constraints):
    return {
        "scenario": "balanced",
        "overrides": BURNOUT_WORLD,
        "parameters": [{"path": "team.reps", "range": [3, 8]}],
        "objective": "cac",
        "constraints": constraints,
        "replications": 2,
        "trials": 8,
        "batch_size": 4,
        "seed": 2,
        "selection": {"top": 3, "replications": 10},
    }


def test_a_binding_burnout_constraint_is_met_by_its_upper_bound():
    limit = 0.05
    bound = optimize(
        _reps_spec({"burnout_index": {"max": limit}}),
        backend="processes",
        workers=2,
        progress=False,
    )
    free = optimize(_reps_spec({}), backend="processes", workers=2, progress=False)
    table = bound.choice.table
    reported = [bound.choice.best, *bound.choice.tied]
    assert bound.choice.best is not None
    for label in reported:
        assert table.loc[label, "burnout_index_high"] <= limit  # the upper bound, not the mean
        assert table.loc[label, "burnout_index_bound"] == table.loc[label, "burnout_index_high"]
    # the constraint binds: the unconstrained choice burns the team out beyond the limit
    free_best = free.choice.table.loc[free.choice.best]
    assert free_best["burnout_index"] > limit
    assert free.decision["team.reps"] < bound.decision["team.reps"]
    # a candidate whose mean meets the limit but whose upper bound does not is refused
    for label, row in table.iterrows():
        if row["burnout_index"] <= limit < row["burnout_index_high"]:
            assert not row["feasible"] and label not in reported
    sentence = bound.sentence()
    assert f"within your limit of {limit:.2f}" in sentence, sentence
    assert sentence.startswith("Set ")


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    # nurture_below_score needs the score policy: trials pairing it with fifo raise
    spec = {
        "scenario": "balanced",
        "overrides": {
            "run.horizon_days": 45,
            "run.warmup_days": 7,
            "process.routing.policy": "score",
        },
        "parameters": [
            {"path": "process.routing.policy", "levels": ["score", "fifo"]},
            {"path": "process.routing.nurture_below_score", "range": [0.1, 0.5]},
        ],
        "objective": "customers",
        "replications": 1,
        "trials": 8,
        "batch_size": 4,
        "seed": 1,
    }
    summary = run_search(spec, tmp_path / "s", backend="serial", progress=False)
    trials = trials_frame(tmp_path / "s")
    failed = trials[trials["state"] == "fail"]
    assert summary.trials == len(trials) == 8
    assert 0 < summary.failed == len(failed) < 8
    assert (failed["process.routing.policy"] == "fifo").all()
    assert failed["error"].str.contains("nurture_below_score needs routing.policy").all()
    rows = load_results(tmp_path / "s")
    assert set(rows.loc[rows["status"] == "error", "point"]) == set(failed["trial"])


SMALL = {
    "scenario": "balanced",
    "overrides": {"run.horizon_days": 60, "run.warmup_days": 7},
    "budget": {
        "total_per_week_usd": 30000,
        "sources": ["referral", "organic_search", "paid_social"],
        "max_share": 0.7,
    },
    "parameters": [{"path": "team.reps", "range": [8, 14]}],
    "objective": "cac",
    "constraints": ["burnout_index <= 0.4"],
    "replications": 2,
    "trials": 8,
    "batch_size": 4,
    "seed": 8,
    "selection": {"top": 2, "replications": 3},
}


def _comparable(result):
    cols = [c for c in result.trials.columns if c != "error"]
    return result.trials[cols].reset_index(drop=True)


def test_same_trials_and_answer_on_serial_processes_and_dask(tmp_path):
    serial = optimize(SMALL, tmp_path / "serial", backend="serial", progress=False)
    procs = optimize(SMALL, tmp_path / "procs", backend="processes", workers=2, progress=False)
    dask = optimize(SMALL, tmp_path / "dask", backend="dask", workers=2, progress=False)
    assert len(serial.trials) == 8
    for other in (procs, dask):
        pd.testing.assert_frame_equal(_comparable(serial), _comparable(other))
        assert other.choice.best == serial.choice.best
        assert other.sentence() == serial.sentence()
    meta = json.loads((tmp_path / "dask" / "metadata.json").read_text())
    assert meta["invocations"][0]["backend"] == "dask"
    # every trial ran the same seeds (common random numbers)
    rows = load_results(tmp_path / "procs")
    assert rows.groupby("point")["seed"].apply(tuple).nunique() == 1


def test_resume_after_a_real_kill_loses_and_repeats_nothing(tmp_path):
    spec = dict(SMALL, trials=10, batch_size=2)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    args = [
        sys.executable,
        "-m",
        "simfunnel",
        "optimize",
        str(path),
        "--out",
        str(out),
        "--backend",
        "serial",
        "--quiet",
    ]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        parts = list((out / "points").glob("part-*.parquet")) if out.exists() else []
        if len(parts) >= 3:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = load_results(out)
    done_before = set(before["point"])
    assert 3 <= len(done_before) < 10  # killed mid-study

    resumed = subprocess.run(
        [*args, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    after = load_results(out)
    assert not after.duplicated(["point", "replication"]).any()
    assert sorted(after["point"].unique()) == list(range(10))
    # the trials completed before the kill were kept as they were, not run again
    kept = after[after["point"].isin(done_before)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))
    import optuna

    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(out))
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(10))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    meta = json.loads((out / "metadata.json").read_text())
    assert [e["status"] for e in meta["invocations"]] == ["stopped without finishing", "complete"]
    # the resumed study is the one an uninterrupted run would have made
    whole = optimize(spec, tmp_path / "whole", backend="serial", progress=False)
    cols = [c for c in whole.trials.columns if c != "error"]
    pd.testing.assert_frame_equal(
        trials_frame(out)[cols].reset_index(drop=True), whole.trials[cols].reset_index(drop=True)
    )


def test_several_objectives_give_a_pareto_front():
    spec = dict(SMALL, objective=["cac", {"revenue": "max"}], trials=8, constraints={})
    result = optimize(spec, backend="serial", progress=False)
    assert result.spec.resolved_sampler() == "nsga2"
    front = result.choice.front
    table = result.choice.table
    assert front and result.choice.best in front
    # no member of the front is beaten on both CAC and revenue by another re-run candidate
    for label in front:
        others = table.drop(index=label)
        beaten = (others["cac"] <= table.loc[label, "cac"]) & (
            others["revenue"] >= table.loc[label, "revenue"]
        )
        strictly = (others["cac"] < table.loc[label, "cac"]) | (
            others["revenue"] > table.loc[label, "revenue"]
        )
        assert not (beaten & strictly & others["feasible"]).any()
    assert f"{len(front)} mix" in result.sentence() and "Pareto front" in result.sentence()
    assert result.to_dict()["pareto_front"] == front

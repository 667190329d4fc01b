"""The engine's hot path against the reference path: the same records, field by field."""

from __future__ import annotations

import dataclasses
import gc
import math
from typing import Any

import numpy as np
import pytest

from simfunnel.model import FINAL_STATES, FunnelModel
from simfunnel.model_core import _collector_off_the_lists, _column
from simfunnel.model_reference import ReferenceFunnelModel
from simfunnel.parameters import load_scenario
from simfunnel.queueing import textbook_scenario
from simfunnel.streams import stream

SHORT = {"run.horizon_days": 45, "run.warmup_days": 7, "run.drain_days": 30}
# Each case switches on a branch of the hot path: routing policies, round the clock,
# a shift past midnight, window accounting, exponential work without spacing, a
# tiny burning-out team (quits, hires, ramp), nurture of the unreached.
CASES = {
    "balanced": ("balanced", {}, 1),
    "quality_heavy": ("quality_heavy", {"process.routing.policy": "newest_first"}, 2),
    "volume_heavy_score": (
        "volume_heavy",
        {"process.routing.policy": "score", "process.routing.nurture_below_score": 0.3},
        3,
    ),
    "round_the_clock_window": (
        "volume_heavy",
        {
            "team.shift_hours": 24,
            "team.working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "run.accounting": "window",
        },
        4,
    ),
    "night_shift_exponential": (
        "quality_heavy",
        {
            "team.shift_start_hour": 20,
            "team.work_time": "exponential",
            "team.attempt_spacing_hours": 0,
            "process.patience.distribution": "fixed",
            "process.decay.applies_to": "both",
        },
        5,
    ),
    "entry_stages": (
        "balanced",
        {
            "sources.paid_social.entry_stage": "opportunity",
            "sources.referral.entry_stage": "qualified",
        },
        7,
    ),
    "burnout_quits_and_hires": (
        "volume_heavy",
        {
            "team.reps": 2,
            "burnout.annual_turnover": 0.95,
            "team.hiring_lag_days": 5,
            "process.nurture.unreached": True,
        },
        6,
    ),
}


def records_of(model_class: type, scenario: object, seed: int | None) -> object:
    return model_class(scenario, seed).run()


def assert_same_records(a: object, b: object) -> None:
    for field in dataclasses.fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), field.name
            for column in x:
                assert x[column].dtype == y[column].dtype, (field.name, column)
                assert np.array_equal(
                    x[column], y[column], equal_nan=x[column].dtype.kind == "f"
                ), (
                    field.name,
                    column,
                )
        elif isinstance(x, np.ndarray):
            assert np.array_equal(x, y, equal_nan=True), field.name
        else:
            assert x == y or (x != x and y != y), field.name


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_engine_gives_the_reference_records(case: str) -> None:
    name, overrides, seed = CASES[case]
    scenario = load_scenario(name, {**SHORT, **overrides})
    engine = records_of(FunnelModel, scenario, seed)
    reference = records_of(ReferenceFunnelModel, scenario, seed)
    assert len(engine.leads["arrival_hours"]) > 100  # type: ignore[attr-defined]
    assert_same_records(engine, reference)


def test_the_engine_gives_the_reference_records_on_the_mmc_reduction() -> None:
    scenario = textbook_scenario(18.0, 20, 1.0, 2.0, horizon_days=5.0, warmup_days=1)
    engine = records_of(FunnelModel, scenario, 3)
    reference = records_of(ReferenceFunnelModel, scenario, 3)
    stale = engine.leads["final_state"] == FINAL_STATES.index("stale")  # type: ignore[attr-defined]
    assert stale.any()  # patience bites, so the stale path is compared too
    assert_same_records(engine, reference)


def test_an_entry_past_lead_skips_the_calls_and_keeps_its_stage_chances() -> None:
    """Rows that arrive as opportunities are never called and win at the win chance."""
    scenario = load_scenario(
        "balanced",
        {
            **SHORT,
            "run.horizon_days": 120,
            "run.drain_days": 365,  # every deal closes before the run ends
            "sources.paid_social.entry_stage": "opportunity",
            "sources.paid_social.win_probability": 0.8,
            "sources.referral.entry_stage": "qualified",
            "sources.referral.opportunity_probability": 0.5,
            "sources.referral.win_probability": 1.0,
        },
    )
    leads = FunnelModel(scenario, 11).run().leads
    names = [s.name for s in scenario.sources]
    for name, chance in (("paid_social", 0.8), ("referral", 0.5)):
        mine = leads["source"] == names.index(name)
        assert mine.sum() > 200
        assert (leads["attempts"][mine] == 0).all()
        assert np.isnan(leads["contact_hours"][mine]).all()
        won = float((leads["cohort_stage"][mine] == 4).mean())
        half = 3 * math.sqrt(chance * (1 - chance) / mine.sum()) + 1e-9
        assert abs(won - chance) <= half, (name, won)
    called = leads["source"] == names.index("paid_search")
    assert (leads["attempts"][called] > 0).mean() > 0.5


def test_the_burnout_case_quits_and_hires() -> None:
    """The people-side case really exercises quits and hires (else it compares little)."""
    name, overrides, seed = CASES["burnout_quits_and_hires"]
    records = FunnelModel(load_scenario(name, {**SHORT, **overrides}), seed).run()
    assert records.rep_days["quit"].any()
    assert len(records.hire_hours) > 0


def queue_lengths(model_class: type, scenario: object) -> list[int]:
    """Length of SimPy's event queue at each end of day of a run."""

    class Sampled(model_class):  # type: ignore[misc, valid-type]
        lengths: list[int]

        def _end_of_day(self, day: int) -> None:
            self.lengths.append(len(self.env._queue))
            super()._end_of_day(day)

    Sampled.lengths = []
    Sampled(scenario).run()
    return Sampled.lengths


def test_simpys_queue_holds_the_reps_and_line_heads_not_every_lead_in_flight() -> None:
    """Retries and nurture returns wait in lines of their own: SimPy's heap stays small.

    (On the reference path every pending retry and nurture return sits on SimPy's
    heap, which grew with volume and made the cost per lead grow with it.)
    """
    scenario = load_scenario("volume_heavy", {**SHORT, "team.reps": 4})
    engine = queue_lengths(FunnelModel, scenario)
    reference = queue_lengths(ReferenceFunnelModel, scenario)
    fixed = scenario.team.reps + len(scenario.sources) + 8  # horizon, days, shifts, lines
    assert max(engine) <= fixed
    assert max(reference) > 5 * fixed


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([0, 3, 255, 7], np.int32),  # small whole numbers: through a bytearray
        ([0, 1, 127], np.int8),
        ([True, False, True], bool),
        ([-1, 4, 2], np.int32),  # negative: through fromiter
        ([300, 2], np.int16),  # above 255
        ([1.5, -2.0, math.nan], float),
        ([], np.int32),
    ],
)
def test_a_column_is_what_numpy_makes_of_the_list(values: list[Any], dtype: Any) -> None:
    column = _column(values, dtype)
    expected = np.array(values, dtype=dtype)
    assert column.dtype == expected.dtype
    assert np.array_equal(column, expected, equal_nan=column.dtype.kind == "f")
    assert column.flags.writeable


def test_a_column_refuses_what_its_type_cannot_hold() -> None:
    with pytest.raises(OverflowError):
        _column([0, 200], np.int8)  # a byte, but not an int8


def test_quits_follow_one_draw_a_rep_day_from_each_seats_stream() -> None:
    """Quit draws are taken a block ahead: the same numbers as one draw a day."""
    name, overrides, seed = CASES["burnout_quits_and_hires"]
    scenario = load_scenario(name, {**SHORT, **overrides})
    days = FunnelModel(scenario, seed).run().rep_days
    burn = scenario.burnout
    h0 = -math.log(1.0 - burn.annual_turnover) / 365.0
    streams: dict[int, np.random.Generator] = {}
    expected = []
    for rep, fatigue in zip(days["rep"].tolist(), days["fatigue"].tolist(), strict=True):
        rng = streams.setdefault(rep, stream(seed, "burnout", str(rep)))
        hazard = h0 * math.exp(burn.quit_fatigue_k * fatigue)
        expected.append(rng.random() < -math.expm1(-hazard))
    assert days["quit"].sum() >= 2
    assert days["quit"].tolist() == expected


def test_window_accounting_stops_at_the_horizon() -> None:
    """The run ends at the horizon: its end state is the horizon's, kept without a copy."""
    overrides = {**SHORT, "run.accounting": "window"}
    scenario = load_scenario("balanced", overrides)
    records = FunnelModel(scenario, 1).run()
    assert records.end_hours == scenario.run.horizon_days * 24.0
    assert np.array_equal(records.leads["cohort_state"], records.leads["final_state"])
    assert np.array_equal(records.leads["cohort_stage"], records.leads["furthest_stage"])
    assert records.rep_days["day"].max() == scenario.run.horizon_days - 1


def test_a_run_leaves_the_cycle_collector_as_it_found_it() -> None:
    scenario = load_scenario("balanced", SHORT)
    assert gc.get_freeze_count() == 0
    FunnelModel(scenario, 1).run()
    assert gc.get_freeze_count() == 0  # what the run froze is unfrozen
    with pytest.raises(RuntimeError), _collector_off_the_lists():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("a run that fails")
    assert gc.get_freeze_count() == 0
    gc.freeze()  # someone else's choice, e.g. before forking workers
    try:
        frozen = gc.get_freeze_count()
        FunnelModel(scenario, 1).run()
        # left frozen (objects freed meanwhile leave the count), and nothing added
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()

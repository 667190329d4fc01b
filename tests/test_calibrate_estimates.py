"""Direct estimates recover known truths on frames drawn with known rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simfunnel.calibration.columns import OBSERVED_RATE_COLUMNS
from simfunnel.calibration.estimate import observed_rates

TRUE_CONTACT = {"alpha": 0.6, "beta": 0.4}
TRUE_WON = {"alpha": 0.2, "beta": 0.1}
N = 4000


def _drawn(seed: int = 1) -> pd.DataFrame:
    """A year of leads from two sources, with contact and win at known rates and delays."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01")
    created = start + pd.to_timedelta(rng.uniform(0, 365, N), unit="D")
    source = rng.choice(["alpha", "beta"], N)
    p_contact = np.array([TRUE_CONTACT[s] for s in source])
    p_won = np.array([TRUE_WON[s] for s in source])
    contacted = rng.random(N) < p_contact
    won = contacted & (rng.random(N) < p_won / p_contact)

    def later(mean_days: float, mask: np.ndarray) -> pd.Series:
        delay = pd.to_timedelta(rng.exponential(mean_days, N), unit="D")
        return pd.Series(created + delay).where(mask)

    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(N)],
            "source": source,
            "created_at": created,
            "contacted_at": later(2.0, contacted),
            "won_at": later(60.0, won),
            "lost_at": later(60.0, ~won),
        }
    )


def _truncated(frame: pd.DataFrame, cut: str) -> pd.DataFrame:
    """The export as it would have looked on ``cut``: later leads and events unseen."""
    end = pd.Timestamp(cut)
    out = frame[frame["created_at"] <= end].copy()
    for column in ("contacted_at", "won_at", "lost_at"):
        out[column] = out[column].where(out[column] <= end)
    out.attrs["as_of"] = end
    return out


@pytest.fixture(scope="module")
def drawn() -> pd.DataFrame:
    return _drawn()


def test_observed_rates_has_the_agreed_columns_and_covers_the_truth(drawn: pd.DataFrame) -> None:
    table = observed_rates(drawn)
    assert list(table.columns)[: len(OBSERVED_RATE_COLUMNS)] == list(OBSERVED_RATE_COLUMNS)
    assert set(table["stage"]) == {"contacted", "won"}
    truth = {
        ("alpha", "contacted"): 0.6,
        ("beta", "contacted"): 0.4,
        **{(s, "won"): p for s, p in TRUE_WON.items()},
    }
    for row in table.itertuples():
        assert row.low <= truth[(row.source, row.stage)] <= row.high, row
        assert row.leads == (drawn["source"] == row.source).sum()
    # volume: ~N/2 leads a source over 52 weeks
    assert table["leads_per_week"].between(0.9 * N / 2 / 52, 1.1 * N / 2 / 52).all()


def test_truncated_history_does_not_bias_conversion_down(drawn: pd.DataFrame) -> None:
    cut = _truncated(drawn, "2025-07-01")
    table = observed_rates(cut).set_index(["source", "stage"])
    for source, p in TRUE_WON.items():
        row = table.loc[(source, "won")]
        assert row["low"] <= p <= row["high"]
        naive = row["reached"] / row["leads"]
        # dropping nothing and counting open leads as lost would be biased down
        assert naive < row["rate"]
        assert naive < p * 0.9

"""Direct estimates recover known truths on frames drawn with known rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simfunnel.calibration.estimate import estimates, fit_decay, observed_rates
from simfunnel.calibration.read.columns import OBSERVED_RATE_COLUMNS

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


def test_decay_tau_recovered_within_its_interval() -> None:
    rng = np.random.default_rng(3)
    n, tau, phi, c1, c2, max_attempts = 3000, 180.0, 0.2, 0.45, 0.22, 6
    delay = rng.exponential(300.0, n)
    q = phi + (1 - phi) * np.exp(-delay / tau)
    chance = np.column_stack([c1 * q] + [c2 * q] * (max_attempts - 1))
    hit = rng.random((n, max_attempts)) < chance
    contacted = hit.any(axis=1)
    attempts = np.where(contacted, hit.argmax(axis=1) + 1, max_attempts)
    frame = pd.DataFrame(
        {
            "lead_id": np.arange(n).astype(str),
            "source": "web",
            "created_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "first_response_minutes": delay,
            "attempts": attempts,
            "contacted": contacted,
        }
    )
    fit = fit_decay(frame)
    assert fit is not None
    assert fit.tau_low < tau < fit.tau_high
    assert fit.tau_high / fit.tau_low < 3  # an interval that says something
    assert fit.floor_low - 0.05 < phi < fit.floor_high + 0.05
    # without a response delay there is nothing to fit
    assert fit_decay(frame.drop(columns="first_response_minutes")) is None


def test_deal_size_volume_and_profiles(drawn: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    frame = drawn.copy()
    won = frame["won_at"].notna()
    # lognormal deals with mean 12,000 and sigma 0.6
    sigma = 0.6
    mu = np.log(12_000) - sigma**2 / 2
    frame["amount"] = np.where(won, rng.lognormal(mu, sigma, len(frame)), np.nan)
    table, extras = estimates(frame)
    by = table.set_index(["field", "source"])
    for source in ("alpha", "beta"):
        mean = by.loc[("deal_size.mean_usd", source)]
        assert mean["low"] <= 12_000 <= mean["high"]
        assert abs(mean["estimate"] / 12_000 - 1) < 0.1
        assert by.loc[("deal_size.sigma", source), "low"] <= sigma
        assert sigma <= by.loc[("deal_size.sigma", source), "high"]
        volume = by.loc[("leads_per_week", source)]
        assert volume["low"] <= N / 2 / 52 <= volume["high"]
        profile = extras[source]["day_of_week_profile"]
        assert len(profile) == 7 and abs(np.mean(profile) - 1) < 1e-3
        assert len(extras[source]["hour_of_day_profile"]) == 24
        # uniform arrivals: no significant trend, no burst
        assert extras[source]["bursts"] == []
        assert ("trend_per_year", source) not in by.index
    assert table["method"].str.len().gt(0).all()
    assert table["from_data"].all()


def test_churn_close_time_and_score_auc_recovered() -> None:
    rng = np.random.default_rng(9)
    n = 3000
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 500, n), unit="D")
    end = pd.Timestamp("2025-06-01")
    # a score with a known AUC: normal signals d' apart, d' = sqrt(2) * Phi^-1(0.8)
    qualified = rng.random(n) < 0.3
    d_prime = np.sqrt(2) * stats.norm.ppf(0.8)
    score = rng.normal(np.where(qualified, d_prime, 0.0), 1.0)
    # gamma-distributed days from qualification to close, mean 40 (shape 4)
    close = created + pd.to_timedelta(rng.gamma(4.0, 10.0, n), unit="D")
    won = qualified & (rng.random(n) < 0.5)
    # customers churn at 3% a month
    month = pd.Timedelta(days=365.25 / 12)
    churn = close + rng.exponential(1 / -np.log1p(-0.03), n) * month
    frame = pd.DataFrame(
        {
            "lead_id": np.arange(n).astype(str),
            "source": "web",
            "created_at": created,
            "qualified_at": pd.Series(created).where(qualified),
            "won_at": pd.Series(close).where(won & (close <= end)),
            "lost_at": pd.Series(close).where(qualified & ~won & (close <= end)),
            "churned_at": pd.Series(churn).where(won & (churn <= end) & (close <= end)),
            "score": score,
        }
    )
    frame.attrs["as_of"] = end
    table, _ = estimates(frame)
    by = table.set_index("field")
    churn_row = by.loc["monthly_churn"]
    assert churn_row["low"] <= 0.03 <= churn_row["high"]
    close_row = by.loc["days_to_close"]
    assert "best fit by AIC: gamma" in close_row["method"] or (
        "best fit by AIC: weibull" in close_row["method"]
    )  # not the exponential
    assert abs(close_row["estimate"] / 40 - 1) < 0.1
    auc = by.loc["process.routing.score_auc"]
    assert auc["low"] <= 0.8 <= auc["high"]

"""The lead score: its AUC against qualification (or winning)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from simfunnel.calibration.estimate.censoring import stage_flags
from simfunnel.calibration.estimate.intervals import _Z, _row


def score_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """AUC of the score against qualification (or winning), Hanley-McNeil interval."""
    if "score" not in frame:
        return []
    flags = stage_flags(frame)
    outcome = next((s for s in ("qualified", "won", "opportunity") if s in flags), None)
    if outcome is None:
        return []
    score = frame["score"].astype(float)
    ok = score.notna()
    if outcome == "qualified" and "contacted" in flags:
        ok &= flags["contacted"][0]  # qualification is only decided for leads reached
    y = flags[outcome][0][ok].to_numpy(bool)
    s = score[ok].to_numpy(float)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 5 or n0 < 5:
        return []
    among = " among contacted" if outcome == "qualified" and "contacted" in flags else ""
    u = stats.mannwhitneyu(s[y], s[~y], alternative="two-sided").statistic
    auc = float(u) / (n1 * n0)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    half = _Z * math.sqrt(max(var, 0.0))
    return [
        _row(
            "process.routing.score_auc",
            "all",
            auc,
            max(auc - half, 0.0),
            min(auc + half, 1.0),
            n1 + n0,
            f"Mann-Whitney AUC against {outcome}{among}, Hanley-McNeil interval",
        )
    ]

"""The team: reps from the owners active at a time, and leads per rep."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simfunnel.calibration.estimate.censoring import _dates, weeks_observed
from simfunnel.calibration.estimate.intervals import _Z, _row


def team_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Reps from owners: the median number of owners active in 4 weeks, and leads per rep."""
    if "owner" not in frame or frame["owner"].notna().sum() < 10:
        return []
    created = _dates(frame, "created_at")
    owned = frame["owner"].notna()
    # owners active in each 4-week period (a week is too short to see every rep when
    # volume is low)
    period = ((created[owned] - created.min()) / pd.Timedelta(weeks=4)).astype(int)
    per_week = frame.loc[owned, "owner"].groupby(period).nunique()
    total = int(frame.loc[owned, "owner"].nunique())
    reps = float(np.median(per_week.to_numpy()))
    rows = [
        _row(
            "team.reps",
            "all",
            round(reps),
            float(per_week.quantile(0.1)),
            float(per_week.quantile(0.9)),
            int(owned.sum()),
            f"median owners active in 4 weeks (10-90% of periods); {total} owners in all",
        ),
    ]
    leads_per_rep = owned.sum() / weeks_observed(frame) / max(reps, 1.0)
    rows.append(
        _row(
            "leads_per_rep_per_week",
            "all",
            leads_per_rep,
            leads_per_rep,
            leads_per_rep,
            int(owned.sum()),
            "owned leads / weeks / reps",
        )
    )
    if "attempts" in frame:
        att = frame["attempts"].astype(float).dropna()
        if len(att) > 1:
            half = _Z * att.std(ddof=1) / math.sqrt(len(att))
            rows.append(
                _row(
                    "attempts_per_lead",
                    "all",
                    att.mean(),
                    att.mean() - half,
                    att.mean() + half,
                    len(att),
                    "mean, normal",
                )
            )
    return rows

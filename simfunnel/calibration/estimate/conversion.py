"""Conversion: stage shares of leads (censoring-corrected) and the step chances between them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from simfunnel.calibration.estimate.censoring import (
    _dates,
    as_of,
    ever_reached,
    not_identified,
    observed_rates,
    resolved,
    stage_flags,
)
from simfunnel.calibration.estimate.intervals import _row


def conversion_estimates(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Stage shares of leads (censoring-corrected) and the step probabilities between stages.

    ``rate.<stage>`` is the share of a source's leads that ever reach the stage;
    ``opportunity_probability`` (qualified -> opportunity) and ``win_probability``
    (opportunity -> won) are the same treatment among the leads that reached the stage
    before, timed from it.
    """
    rows: list[dict[str, Any]] = []
    table = observed_rates(frame)
    for r in table.itertuples():
        rows.append(
            _row(
                f"rate.{r.stage}",
                str(r.source),
                r.rate,
                r.low,
                r.high,
                int(r.leads),
                "share of leads reaching the stage, Kaplan-Meier plateau, Wilson interval",
            )
        )
    flags = stage_flags(frame)
    done = resolved(frame)
    end = as_of(frame)
    steps = (
        ("qualified", "opportunity", "opportunity_probability"),
        ("opportunity", "won", "win_probability"),
    )
    unknown = not_identified(frame)
    for before, after, field in steps:
        if before not in flags or after not in flags or field in unknown:
            continue
        reached_before, at_before = flags[before]
        reached_after, at_after = flags[after]
        for source, index in frame.groupby("source", sort=True).groups.items():
            among = reached_before.loc[index]
            idx = among[among].index
            if len(idx) < 5:
                continue
            start = (
                at_before.loc[idx]
                if at_before is not None
                else _dates(frame, "created_at").loc[idx]
            )
            start = start.fillna(_dates(frame, "created_at").loc[idx])
            rate, low, high = ever_reached(
                start,
                reached_after.loc[idx],
                None if at_after is None else at_after.loc[idx],
                done.loc[idx],
                end,
            )
            rows.append(
                _row(
                    field,
                    str(source),
                    rate,
                    low,
                    high,
                    len(idx),
                    f"{after} among leads that reached {before}, Kaplan-Meier plateau, Wilson",
                )
            )
    return rows

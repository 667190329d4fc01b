"""Intervals and the estimates table's rows.

The confidence level, Wilson intervals, one row of the table, slugs and the pooling of
small sources into ``other``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

import pandas as pd
from scipy import stats

#: Confidence level of every interval.
LEVEL = 0.95
_Z = float(stats.norm.ppf(0.5 + LEVEL / 2))


def wilson(successes: float, n: float) -> tuple[float, float]:
    """Wilson score interval of a binomial share (``successes`` may be fractional)."""
    if n <= 0:
        return (0.0, 1.0)
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


# ------------------------------------------------------------------ estimates table

#: Columns of the tidy estimates table.
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "field",
    "source",
    "estimate",
    "low",
    "high",
    "n",
    "method",
    "from_data",
)


def _row(
    field: str,
    source: str,
    estimate: float,
    low: float,
    high: float,
    n: int,
    method: str,
    from_data: bool = True,
) -> dict[str, Any]:
    return {
        "field": field,
        "source": source,
        "estimate": float(estimate),
        "low": float(low),
        "high": float(high),
        "n": int(n),
        "method": method,
        "from_data": from_data,
    }


def slug(name: str) -> str:
    """A source name as a scenario source name: ``Organic Search`` -> ``organic_search``.

    Accents are transliterated (``Salon Événements`` -> ``salon_evenements``): the name
    is decomposed (NFKD) and its combining marks dropped.
    """
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", str(name)) if not unicodedata.combining(c)
    )
    text = re.sub(r"[^A-Za-z0-9_\-]+", "_", plain.strip().lower()).strip("_")
    return (text or "unknown")[:64]


def pool_sources(frame: pd.DataFrame, min_leads: int = 30) -> tuple[pd.DataFrame, list[str]]:
    """Source names as scenario names, sources with fewer than ``min_leads`` pooled as ``other``.

    Returns
    -------
    (frame, pooled)
        A copy of the frame and the (original) names pooled into ``other``.
    """
    out = frame.copy()
    names = pd.unique(out["source"])
    out["source"] = out["source"].map(dict(zip(names, map(slug, names), strict=True)))
    counts = out["source"].value_counts()
    small = sorted(str(s) for s in counts[counts < min_leads].index)
    if small and len(small) < len(counts):
        out.loc[out["source"].isin(small), "source"] = "other"
        small = [s for s in small if s != "other"]  # a source called other stays itself
    else:
        small = []
    out.attrs = dict(frame.attrs)
    return out, small

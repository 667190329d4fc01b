"""One colour per strategy and per source, the same in every notebook and report."""

from __future__ import annotations

import zlib

#: Colours of the bundled strategies.
STRATEGY_COLORS = {
    "volume_heavy": "#d62728",
    "quality_heavy": "#2ca02c",
    "balanced": "#1f77b4",
}

#: Colours of the bundled scenarios' sources.
SOURCE_COLORS = {
    "paid_social": "#e377c2",
    "purchased_list": "#7f7f7f",
    "content_syndication": "#ff7f0e",
    "referral": "#17becf",
    "organic_search": "#bcbd22",
    "targeted_events": "#9467bd",
}

# Fallback for other names: a fixed palette indexed by a stable hash of the name.
_PALETTE = (
    "#8c564b",
    "#1a55a3",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#393b79",
    "#637939",
    "#8c6d31",
)


def _fallback(name: str) -> str:
    return _PALETTE[zlib.crc32(name.encode("utf-8")) % len(_PALETTE)]


def strategy_color(name: str) -> str:
    """The colour of a strategy (scenario) by name."""
    return STRATEGY_COLORS.get(name) or SOURCE_COLORS.get(name) or _fallback(name)


def source_color(name: str) -> str:
    """The colour of a lead source by name."""
    return SOURCE_COLORS.get(name) or _fallback(name)

"""Fitted parameters: what the fit moves, from where, within which bounds, and the table.

A :class:`FitParameter` is one scenario field of one source (a stage chance, the
quality mix) or of the process; :data:`DECOMPOSITION` says how a product of chances the
data cannot split is shared out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from simfunnel.errors import SimfunnelError
from simfunnel.parameters import Scenario, scenario_from_dict

#: Stages of the observed-rates table, in funnel order.
RATE_STAGES: tuple[str, ...] = ("contacted", "qualified", "opportunity", "won")
_Z = float(stats.norm.ppf(0.975))
#: Smallest standard error a residual is scaled by (a rate of 0 or 1 has none).
_MIN_SE = 0.005


# ------------------------------------------------------------ fitted parameters


@dataclass(frozen=True)
class FitParameter:
    """One parameter fitted by simulation.

    Attributes
    ----------
    name
        ``contact_probability`` (global), ``quality.ready`` (per source) or ``reach``
        (per source: the stage chances in ``chain``, scaled together).
    source
        The source, or ``None`` for a global parameter.
    low, high
        Bounds of the search.
    chain
        For ``reach``: the source's stage chances that only their product is
        identified for (``quality.ready``, ``opportunity_probability``,
        ``win_probability``); each is set to its start raised to the power ``s``, the
        parameter's value, so that s = 1 keeps the starts, s -> 0 takes every chance
        towards one and the ratios of their logarithms stay as the defaults have them.
    """

    name: str
    source: str | None
    low: float
    high: float
    chain: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``paid_search quality.ready`` or ``contact_probability``."""
        return f"{self.source} {self.name}" if self.source else self.name


#: The post-contact stages of the observed rates, and the stage chance that leads to each.
_AFTER_CONTACT: tuple[str, ...] = ("qualified", "opportunity", "won")
_CHANCE_OF: dict[str, str] = {
    "qualified": "quality.ready",
    "opportunity": "opportunity_probability",
    "won": "win_probability",
}

#: How the calibration names the decomposition of a product of stage chances.
DECOMPOSITION = (
    "only the product of these stage chances is identified; decomposition: each is its "
    "domain default raised to one common power, fitted so that the simulated rate "
    "matches the observed one (the split between them is not identified)"
)


def chance(scenario: Scenario, source: str, name: str) -> float:
    """A source's stage chance as the model uses it (its own, else the process's)."""
    src = next(s for s in scenario.sources if s.name == source)
    if name == "quality.ready":
        return src.quality.ready
    own = getattr(src, name)
    return float(getattr(scenario.process, name) if own is None else own)


def _free_chances(scenario: Scenario, source: str, deepest: str, after: int) -> list[str]:
    """The stage chances up to ``deepest`` that no estimate has set for ``source``."""
    src = next(s for s in scenario.sources if s.name == source)
    entry = {"lead": 0, "qualified": 1, "opportunity": 2}[src.entry_stage]
    chain = []
    for stage in _AFTER_CONTACT[: _AFTER_CONTACT.index(deepest) + 1]:
        name = _CHANCE_OF[stage]
        position = _AFTER_CONTACT.index(stage)
        if position < entry:
            continue  # the rows enter past this stage
        if name == "quality.ready":
            if after > 1:
                continue  # fitted on its own from the first observed stage
        elif getattr(src, name) is not None:
            continue  # estimated directly
        if 0.0 < chance(scenario, source, name) < 0.999:
            chain.append(name)
    return chain


def default_parameters(scenario: Scenario, observed: pd.DataFrame) -> list[FitParameter]:
    """What the observed stages can identify.

    The contact probability (first attempt; the retry probability keeps its ratio to
    it) when ``contacted`` is observed; each observed source's ready share (the rest
    of its leads keep the not-ready to unqualified split) when two or more stages past
    contact are; and, where the deepest observed stage lies past chances that no
    estimate has set (only won, or only converted, is in the data), a ``reach``
    parameter that scales those chances together (:data:`DECOMPOSITION`). Sources that
    enter at an opportunity need neither.
    """
    stages = set(observed["stage"])
    params: list[FitParameter] = []
    if "contacted" in stages:
        params.append(FitParameter("contact_probability", None, 0.02, 0.98))
    seen = set(observed["source"])
    for s in scenario.sources:
        if s.name not in seen:
            continue
        mine = set(observed.loc[observed["source"] == s.name, "stage"])
        after = [st for st in _AFTER_CONTACT if st in mine]
        if not after:
            continue
        if len(after) > 1 and s.entry_stage == "lead":
            params.append(FitParameter("quality.ready", s.name, 0.005, 0.995))
        chain = _free_chances(scenario, s.name, after[-1], len(after))
        if chain:
            params.append(FitParameter("reach", s.name, 0.01, 10.0, tuple(chain)))
    return params


def _start(scenario: Scenario, p: FitParameter) -> float:
    if p.name == "contact_probability":
        return scenario.process.contact_probability
    if p.name == "reach":
        return 1.0
    return next(s for s in scenario.sources if s.name == p.source).quality.ready


def _quality(scenario: Scenario, source: str, ready: float) -> dict[str, float]:
    """The source's quality mix with ``ready`` sales-ready; the rest keep their split."""
    q = next(s for s in scenario.sources if s.name == source).quality
    rest = q.not_ready + q.unqualified
    share = q.not_ready / rest if rest > 0 else 0.5
    not_ready = (1.0 - ready) * share
    return {"ready": ready, "not_ready": not_ready, "unqualified": 1.0 - ready - not_ready}


def _values(scenario: Scenario, params: Sequence[FitParameter], x: np.ndarray) -> dict[str, Any]:
    """Field paths and the values that set ``params`` to ``x``."""
    out: dict[str, Any] = {}
    proc = scenario.process
    for p, value in zip(params, x, strict=True):
        v = float(np.clip(value, p.low, p.high))
        if p.name == "contact_probability":
            ratio = proc.retry_contact_probability / max(proc.contact_probability, 1e-9)
            out["process.contact_probability"] = v
            out["process.retry_contact_probability"] = min(1.0, v * ratio)
        elif p.name == "quality.ready":
            out[f"sources.{p.source}.quality"] = _quality(scenario, str(p.source), v)
        elif p.name == "reach":
            for name in p.chain:
                scaled = chance(scenario, str(p.source), name) ** v
                if name == "quality.ready":
                    scaled = min(scaled, 0.999)
                    out[f"sources.{p.source}.quality"] = _quality(scenario, str(p.source), scaled)
                else:
                    out[f"sources.{p.source}.{name}"] = scaled
        else:
            raise SimfunnelError(f"parameter {p.label!r}: not a parameter the fit knows")
    return out


def _overrides(scenario: Scenario, params: Sequence[FitParameter], x: np.ndarray) -> dict[str, Any]:
    """Dotted-path overrides that set ``params`` to ``x``."""
    return _values(scenario, params, x)


def _with_values(scenario: Scenario, params: Sequence[FitParameter], x: np.ndarray) -> Scenario:
    """The scenario with ``params`` at ``x``, keeping only the fields it had set.

    (A scenario written back as YAML then lists what was set or fitted, not every
    default.)
    """
    raw = scenario.model_dump(mode="json", exclude_unset=True)
    # four decimals: plenty beside the intervals, and a scenario file a person can read
    x = np.round(np.asarray(x, dtype=float), 4)
    for path, value in _values(scenario, params, x).items():
        if isinstance(value, dict):  # a quality mix: rounded so that it still adds up
            value = {k: round(v, 4) for k, v in value.items()}
            value["unqualified"] = round(1.0 - value["ready"] - value["not_ready"], 4)
        elif isinstance(value, float):
            value = round(value, 4)
        if path.startswith("sources."):
            _, name, field = path.split(".", 2)
            source = next(s for s in raw["sources"] if s["name"] == name)
            source[field] = value
        else:
            node = raw
            *parents, last = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
    return scenario_from_dict(raw)


#: Columns of the fitted-parameters table.
FIT_COLUMNS: tuple[str, ...] = (
    "parameter",
    "source",
    "start",
    "estimate",
    "low",
    "high",
    "method",
    "moments",
    "identified",
    "at_bound",
    "note",
)

#: How the parameters table names a parameter the data cannot move.
NOT_IDENTIFIED = "not identified (no observed rate responds to it); domain default kept"


def _bound_reached(p: FitParameter, value: float) -> float | None:
    """The bound of the search ``value`` sits at (within 0.001), or None."""
    for bound in (p.low, p.high):
        if abs(value - bound) <= 1e-3:
            return bound
    return None


def flag_lines(parameters: pd.DataFrame) -> list[str]:
    """One line per fitted parameter that is not identified or sits at a bound."""
    lines = []
    for row in parameters.to_dict(orient="records"):
        name, source = row["parameter"], row["source"]
        label = name if source == "all" else f"{source} {name}"
        if not row.get("identified", True):
            lines.append(
                f"{label}: not identified by the data (no observed rate responds to it); "
                f"domain default {row['estimate']:.4g} kept"
            )
        elif row.get("at_bound", False):
            lines.append(
                f"{label}: {row['estimate']:.4g} is at the bound of the search, where the "
                "model's other chances stop the simulated rate short of the observed one "
                "(the fit check shows by how much)"
            )
    return lines


class SimulatedFit(NamedTuple):
    """What :func:`fit_by_simulation` returns; unpacks as ``scenario, parameters``.

    Attributes
    ----------
    scenario
        The fitted scenario.
    parameters
        ``parameter, source, start, estimate, low, high, method, moments``; ``attrs``
        holds the final cost, the evaluations and the replications per evaluation.
    """

    scenario: Scenario
    parameters: pd.DataFrame

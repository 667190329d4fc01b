"""What produced a report: its inputs, circumstances and the assumptions it rests on.

Scenarios, overrides, horizon, replications, seed, version, date; and the defaults the
numbers rest on, with each cost figure that is a default rather than the user's.

Every report shows this box under its verdict, so a 90-day, 2-run check never reads
like the full study, and writes it into its headline JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from simfunnel.formatting import parameter_label
from simfunnel.version import __version__

#: How a report names the assumptions page, and where its link points: the copy that
#: :func:`simfunnel.reporting.report.run_report` puts beside the report.
ASSUMPTIONS_PAGE = "docs/assumptions.md"
ASSUMPTIONS_LINK = "assumptions.md"

#: Named settings a notebook offers with plain names, and the scenario path each sets.
PLAIN_SETTINGS = {
    "team_size": "team.reps",
    "horizon_days": "run.horizon_days",
    "warmup_days": "run.warmup_days",
}


def settings_overrides(overrides: Mapping[str, Any], **plain: Any) -> dict[str, Any]:
    """The overrides of a run: ``overrides`` plus the plain-named settings that are set.

    A plain setting of ``0`` (or ``None``) keeps the scenario's own value.
    ``settings_overrides({}, team_size=12, horizon_days=0)`` is ``{"team.reps": 12}``.

    Raises
    ------
    ValueError
        An unknown plain name, or a plain setting that contradicts ``overrides``.
    """
    out = dict(overrides)
    for name, value in plain.items():
        if name not in PLAIN_SETTINGS:
            known = ", ".join(PLAIN_SETTINGS)
            raise ValueError(f"{name}: not a plain setting (known: {known})")
        if value in (None, 0):
            continue
        path = PLAIN_SETTINGS[name]
        if path in out and out[path] != value:
            raise ValueError(
                f"{name} = {value!r} contradicts overrides[{path!r}] = {out[path]!r}; give one"
            )
        out[path] = value
    return out


@dataclass(frozen=True)
class Provenance:
    """The inputs and circumstances of one report."""

    scenarios: list[str]
    overrides: dict[str, Any]
    horizon_days: float
    warmup_days: float
    replications: int
    seed: int
    run_seconds: float
    version: str = __version__
    date: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    cost_defaults: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def markdown(self) -> str:
        """The box a report shows under its verdict: one quoted paragraph.

        It links the assumptions page (a copy beside the report, see
        :func:`simfunnel.reporting.report.run_report`), flags each cost figure left at
        a default and names the other groups of defaults the numbers rest on.
        """
        overrides = (
            ", ".join(f"{parameter_label(k)} = {v}" for k, v in self.overrides.items()) or "none"
        )
        window = self.horizon_days - self.warmup_days
        parts = [
            f"**{'Scenarios' if len(self.scenarios) > 1 else 'Scenario'}:** "
            + ", ".join(self.scenarios),
            f"**overrides:** {overrides}",
            f"**horizon:** {self.horizon_days:,.0f} days (leads counted over the "
            f"{window:,.0f} days after a {self.warmup_days:,.0f}-day warm-up)",
            f"**replications:** {self.replications}",
            f"**seed:** {self.seed}",
            *(f"**{k}:** {v}" for k, v in self.details.items()),
            *(
                [f"**cost figures that are defaults, not yours:** {'; '.join(self.cost_defaults)}"]
                if self.cost_defaults
                else []
            ),
            f"**assumptions** ([{ASSUMPTIONS_PAGE}]({ASSUMPTIONS_LINK})): "
            + ("; ".join(self.assumptions) or "none left at a default"),
            f"**simfunnel** {self.version}",
            f"**run** {self.date}, {self.run_seconds:.0f} s",
        ]
        return "> " + " · ".join(parts)


def provenance(
    scenarios: str | Mapping[str, Any] | Sequence[str],
    overrides: Mapping[str, Any],
    replications: int,
    seed: int,
    started: float,
    **details: Any,
) -> Provenance:
    """The provenance of a run that began at ``started`` (``time.perf_counter()``).

    The horizon and warm-up are read from the first scenario with its overrides.
    ``details`` are shown as they are (team sizes, sweep design...).
    """
    from simfunnel.origins import report_notes
    from simfunnel.parameters import load_scenario

    given = [scenarios] if isinstance(scenarios, str | Mapping) else list(scenarios)
    first = given[0]
    scenario = load_scenario(dict(first) if isinstance(first, Mapping) else first, dict(overrides))
    names = [
        str(n.get("name", "an inline scenario")) if isinstance(n, Mapping) else str(n)
        for n in given
    ]
    flags, notes = report_notes(
        [dict(n) if isinstance(n, Mapping) else n for n in given], dict(overrides)
    )
    return Provenance(
        scenarios=names,
        overrides=dict(overrides),
        horizon_days=float(scenario.run.horizon_days),
        warmup_days=float(scenario.run.warmup_days),
        replications=int(replications),
        seed=int(seed),
        run_seconds=round(time.perf_counter() - started, 1),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        details=dict(details),
        assumptions=notes,
        cost_defaults=flags,
    )

"""The scenario notebook's what-if panel: sliders for the budget split and the team size.

Each change of the sliders re-runs a short simulation (a few replications over a
shorter horizon, on the notebook's seed) and shows the key figures beside those of
the scenario as it is. Needs a live notebook kernel with ipywidgets; a report
rendered by papermill shows a note instead (the notebook's ``what_if`` parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The short run behind each what-if: replications and days (warm-up included).
WHAT_IF_REPLICATIONS = 3
WHAT_IF_HORIZON_DAYS = 120
WHAT_IF_WARMUP_DAYS = 14
#: The step of a share slider, in percent.
SHARE_STEP = 0.1


@dataclass(frozen=True)
class WhatIf:
    """One what-if setting: each budgeted source's share of the weekly budget, and reps."""

    shares: dict[str, float]
    team_size: int

    def overrides(self, total_per_week_usd: float) -> dict[str, Any]:
        """The overrides that set this split of ``total_per_week_usd`` and this team."""
        weight = sum(self.shares.values())
        if weight <= 0:
            raise ValueError("the budget shares must not all be zero")
        out: dict[str, Any] = {"team.reps": int(self.team_size)}
        for source, share in self.shares.items():
            out[f"sources.{source}.budget_per_week_usd"] = round(
                total_per_week_usd * share / weight, 2
            )
        return out


def budget_split(scenario: Any) -> dict[str, float]:
    """Weekly budget of each budgeted source (sources bought by the lead have none)."""
    return {
        s.name: float(s.budget_per_week_usd)
        for s in scenario.sources
        if s.budget_per_week_usd is not None
    }


def what_if_numbers(
    scenario: str,
    overrides: Mapping[str, Any],
    setting: WhatIf,
    seed: int,
    replications: int = WHAT_IF_REPLICATIONS,
    horizon_days: int = WHAT_IF_HORIZON_DAYS,
) -> dict[str, float]:
    """Mean CAC, customers, LTV/CAC and burnout of a short run of ``setting``.

    The weekly total stays the scenario's own; only its split and the team change.
    """
    import simfunnel

    base = simfunnel.load_scenario(scenario, dict(overrides))
    total = sum(budget_split(base).values())
    short = {
        **dict(overrides),
        "run.horizon_days": horizon_days,
        "run.warmup_days": min(WHAT_IF_WARMUP_DAYS, horizon_days // 4),
        **setting.overrides(total),
    }
    runs = simfunnel.replicate(
        scenario, n=replications, seed=seed, overrides=short, backend="serial", progress=False
    )
    summary = simfunnel.summarize(runs.drop(columns="scenario"))
    return {
        k: float(summary.loc[k, "mean"])
        for k in ("cac", "customers", "ltv_to_cac", "burnout_index")
    }


def what_if_text(now: Mapping[str, float], then: Mapping[str, float]) -> str:
    """The key figures of the scenario as it is and of the what-if, side by side (HTML)."""
    from simfunnel.formatting import format_number, kpi_kind, kpi_label

    rows = "".join(
        f"<tr><td>{kpi_label(k)}</td><td>{format_number(now[k], kpi_kind(k), statistic=True)}"
        f"</td><td>{format_number(then[k], kpi_kind(k), statistic=True)}</td></tr>"
        for k in ("cac", "customers", "ltv_to_cac", "burnout_index")
    )
    return f"<table><tr><th></th><th>as it is</th><th>what if</th></tr>{rows}</table>"


def what_if_panel(
    scenario: str,
    overrides: Mapping[str, Any],
    seed: int,
    replications: int = WHAT_IF_REPLICATIONS,
    horizon_days: int = WHAT_IF_HORIZON_DAYS,
) -> Any:
    """Sliders for each budgeted source's share and the team size; a button re-runs.

    Returns an ipywidgets ``VBox``; its ``run`` attribute re-runs it as the button does.
    """
    import ipywidgets as widgets

    import simfunnel

    base = simfunnel.load_scenario(scenario, dict(overrides))
    split = budget_split(base)
    total = sum(split.values())
    # the sliders start at the exact shares (33.3%, not 33%): left alone, they give
    # back the scenario as it is, to the cent
    exact = {name: 100 * amount / total if total else 0.0 for name, amount in split.items()}
    share = {
        name: widgets.FloatSlider(
            value=exact[name],
            min=0,
            max=100,
            step=SHARE_STEP,
            readout_format=".1f",
            description=f"{name} (%)",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        for name, amount in split.items()
    }
    team = widgets.IntSlider(
        value=int(base.team.reps),
        min=1,
        max=max(40, 3 * int(base.team.reps)),
        description="reps in the team",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    button = widgets.Button(description="Run what-if")
    out = widgets.HTML(value="")
    now = what_if_numbers(
        scenario,
        overrides,
        WhatIf(dict(split), int(base.team.reps)),
        seed,
        replications,
        horizon_days,
    )

    def run(_: Any = None) -> None:
        # a slider not moved (a browser may snap it to its step) keeps its exact share
        shares = {
            k: exact[k] if abs(float(s.value) - exact[k]) < SHARE_STEP / 2 else float(s.value)
            for k, s in share.items()
        }
        setting = WhatIf(shares, int(team.value))
        try:
            then = what_if_numbers(scenario, overrides, setting, seed, replications, horizon_days)
        except (ValueError, simfunnel.SimfunnelError) as exc:
            out.value = f"<p>Cannot run this what-if: {exc}</p>"
            return
        panel.then = then
        out.value = what_if_text(now, then)

    button.on_click(run)
    note = widgets.HTML(
        value=(
            f"<p>Weekly budget ${total:,.0f}, split by the shares below (they are rescaled to "
            f"add up); {replications} replications of {horizon_days} days each.</p>"
        )
    )
    panel = widgets.VBox([note, *share.values(), team, button, out])
    panel.run = run
    panel.sliders = {**share, "team": team}
    panel.now = now  # the scenario as it is, and the last what-if run
    panel.then = now
    out.value = what_if_text(now, now)
    return panel

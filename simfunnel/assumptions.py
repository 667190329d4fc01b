"""Where each default of the scenario schema comes from: a section of docs/assumptions.md.

``docs/assumptions.md`` lists every default with its figure, its published source and
what it means for the user. It ships inside the package (``simfunnel/docs/``, copied
there when a wheel is built, see setup.py); a source checkout reads it where it is.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

#: How the project cites its assumptions page.
PAGE = "docs/assumptions.md"

#: Field paths (sources addressed as ``sources.*``) and the section of the page that
#: gives their figure and source, most specific first.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("sources.*.deal_size.*", "deal-size"),
    ("sources.*.monthly_churn", "customer-value"),
    ("sources.*.gross_margin", "customer-value"),
    ("run.value_horizon_years", "customer-value"),
    ("team.loaded_cost_per_hour_usd", "rep-cost"),
    ("team.reps", "rep-cost"),
    ("team.working_days", "rep-cost"),
    ("team.shift_*", "rep-cost"),
    ("team.hiring_*", "hiring-and-ramp"),
    ("team.ramp_*", "hiring-and-ramp"),
    ("sources.*.cost_per_lead_usd", "cost-per-lead"),
    ("sources.*.cpl_elasticity", "cost-per-lead"),
    ("sources.*.reference_budget_per_week_usd", "cost-per-lead"),
    ("sources.*.fixed_cost_per_week_usd", "cost-per-lead"),
    ("sources.*.budget_per_week_usd", "cost-per-lead"),
    ("sources.*.leads_per_week", "cost-per-lead"),
    ("process.nurture.cost_per_lead_usd", "cost-per-lead"),
    ("sources.*.quality.*", "readiness-and-nurture"),
    ("process.nurture.*", "readiness-and-nurture"),
    ("sources.*.fit.*", "conversion-by-source"),
    ("sources.*.entry_stage", "conversion-by-source"),
    ("sources.*.opportunity_probability", "conversion-by-source"),
    ("sources.*.win_probability", "conversion-by-source"),
    ("sources.*.days_to_close", "conversion-by-source"),
    ("process.qualification.*", "conversion-by-source"),
    ("process.opportunity_probability", "conversion-by-source"),
    ("process.win_probability", "conversion-by-source"),
    ("process.days_to_close", "conversion-by-source"),
    ("process.contact_probability", "speed-to-lead"),
    ("process.decay.*", "speed-to-lead"),
    ("process.patience.*", "speed-to-lead"),
    ("process.retry_contact_probability", "attempts-and-capacity"),
    ("team.*", "attempts-and-capacity"),
    ("burnout.*", "burnout-and-turnover"),
    ("process.routing.*", "lead-scoring"),
    ("sources.*", "run-settings"),
    ("run.*", "run-settings"),
)

#: The headings of the page's sections, by anchor.
TITLES = {
    "deal-size": "Deal size",
    "customer-value": "Customer value",
    "rep-cost": "Rep cost",
    "hiring-and-ramp": "Hiring and ramp",
    "cost-per-lead": "Cost per lead",
    "unit-economics": "Unit economics",
    "conversion-by-source": "Conversion by source",
    "speed-to-lead": "Speed to lead",
    "attempts-and-capacity": "Attempts and capacity",
    "burnout-and-turnover": "Burnout and turnover",
    "readiness-and-nurture": "Readiness and nurture",
    "lead-scoring": "Lead scoring",
    "run-settings": "Run settings",
    "queueing-checks": "Queueing checks",
    "where-the-model-departs": "Where the model departs",
    "sources": "Sources",
}


def generic_path(path: str) -> str:
    """``sources.referral.deal_size.mean_usd`` -> ``sources.*.deal_size.mean_usd``."""
    parts = path.split(".")
    if parts[0] == "sources" and len(parts) > 2:
        parts[1] = "*"
    return ".".join(parts)


def section_of(path: str) -> str:
    """The anchor of the section of the page that explains the field at ``path``."""
    generic = generic_path(path)
    for pattern, anchor in SECTIONS:
        if fnmatch.fnmatchcase(generic, pattern):
            return anchor
    return "run-settings"


def cite(path: str) -> str:
    """``docs/assumptions.md#deal-size``: where the field at ``path`` is explained."""
    return f"{PAGE}#{section_of(path)}"


def assumptions_path() -> Path:
    """The assumptions page: ``docs/`` of a source checkout, else the installed copy.

    Raises
    ------
    FileNotFoundError
        Neither is there (a broken install).
    """
    here = Path(__file__).resolve().parent
    checkout = here.parent / "docs" / "assumptions.md"
    if (here.parent / "pyproject.toml").is_file() and checkout.is_file():
        return checkout
    installed = here / "docs" / "assumptions.md"  # a wheel's copy (see setup.py)
    if installed.is_file():
        return installed
    raise FileNotFoundError(f"{PAGE} is missing from this installation of simfunnel")

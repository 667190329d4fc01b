"""Sample CRM exports shipped with the package, and the script that makes them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The shipped example export's file name, and the scenario behind it.
EXAMPLE_CRM = "example_crm.csv"
EXAMPLE_SCENARIO = "example_scenario.yaml"


def sample_path(name: str = EXAMPLE_CRM) -> Path:
    """Path of a shipped sample file (default: the example CRM export)."""
    return Path(str(resources.files(__name__).joinpath(name)))

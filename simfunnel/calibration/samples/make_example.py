"""Regenerate the shipped example CRM export from its known scenario.

Run ``python -m simfunnel.calibration.samples.make_example`` after a change to the
model or to ``example_scenario.yaml``; it rewrites ``example_crm.csv`` beside this file.
The export is one run of the scenario at its own seed, written by
:func:`simfunnel.calibration.export.to_crm`, exactly as ``simfunnel run
example_scenario.yaml --export-crm example_crm.csv`` would write it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simfunnel.calibration.export import to_crm, write_crm
from simfunnel.calibration.samples import EXAMPLE_CRM, EXAMPLE_SCENARIO
from simfunnel.simulation import simulate


def main(folder: Path | None = None) -> Path:
    """Write the example export into ``folder`` (default: beside this file)."""
    here = Path(__file__).resolve().parent
    result = simulate(here / EXAMPLE_SCENARIO)
    target = (folder or here) / EXAMPLE_CRM
    write_crm(to_crm(result), target)
    return target


if __name__ == "__main__":
    path = main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"wrote {path}")

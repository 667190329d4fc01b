"""Exception types raised by simfunnel.

The command line turns each of them into one readable line and exit status 2.
"""

from __future__ import annotations


class SimfunnelError(Exception):
    """Base class of every error simfunnel raises on purpose."""


class ScenarioError(SimfunnelError, ValueError):
    """A scenario (file, dict or override) is invalid.

    Parameters
    ----------
    problems
        One line per problem, each naming the field, its value and what is allowed,
        for example ``sources[2].cost_per_lead: must be > 0, got -5``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class SpecError(SimfunnelError, ValueError):
    """A sweep specification is invalid."""


class StoreError(SimfunnelError):
    """A results store cannot be read or written as asked."""


class ReportError(SimfunnelError):
    """A notebook report cannot be produced as asked."""


class LimitError(SimfunnelError):
    """A run or an experiment would exceed a work or memory limit (see simfunnel.limits)."""


class CalibrationError(SimfunnelError, ValueError):
    """CRM data cannot be calibrated as given: the message names the file, column and rows."""

"""Deprecated: moved to :mod:`simfunnel.calibration.scenario`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.writer is deprecated: import from simfunnel.calibration.scenario",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.scenario")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

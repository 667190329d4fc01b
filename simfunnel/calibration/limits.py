"""Deprecated: moved to :mod:`simfunnel.calibration.read.limits`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.limits is deprecated: import from simfunnel.calibration.read.limits",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.read.limits")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

"""Deprecated: moved to :mod:`simfunnel.calibration.read.history`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.history is deprecated: import from simfunnel.calibration.read.history",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.read.history")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

"""Deprecated: moved to :mod:`simfunnel.calibration.estimate.weekly`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.weekly is deprecated: import from simfunnel.calibration.estimate.weekly",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.estimate.weekly")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

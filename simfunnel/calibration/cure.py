"""Deprecated: moved to :mod:`simfunnel.calibration.estimate.cure`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.cure is deprecated: import from simfunnel.calibration.estimate.cure",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.estimate.cure")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

"""Deprecated: moved to :mod:`simfunnel.calibration.estimate.volume`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.volume is deprecated: import from simfunnel.calibration.estimate.volume",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.estimate.volume")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

"""Deprecated: moved to :mod:`simfunnel.calibration.fit.scale`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.scale is deprecated: import from simfunnel.calibration.fit.scale",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.fit.scale")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

"""Deprecated: moved to :mod:`simfunnel.calibration.export`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.crm is deprecated: import from simfunnel.calibration.export",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.export")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

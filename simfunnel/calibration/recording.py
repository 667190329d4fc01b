"""Deprecated: moved to :mod:`simfunnel.calibration.estimate.recording`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.recording is deprecated: "
    "import from simfunnel.calibration.estimate.recording",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.calibration.estimate.recording")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

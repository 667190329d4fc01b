"""Deprecated: moved to :mod:`simfunnel.cli_calibrate`.

This path keeps working for one release, with a :class:`DeprecationWarning`.
"""

import importlib
import warnings

warnings.warn(
    "simfunnel.calibration.command is deprecated: import from simfunnel.cli_calibrate",
    DeprecationWarning,
    stacklevel=2,
)
_moved = importlib.import_module("simfunnel.cli_calibrate")
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})

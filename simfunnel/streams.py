"""Random streams: one root SeedSequence, one child stream per mechanism and source.

Children are keyed by name rather than by position, so adding a source, changing
its volume or switching a mechanism off leaves every other stream's draws unchanged
(common random numbers). Nothing here touches global random state.
"""

from __future__ import annotations

import zlib

import numpy as np

from simfunnel.errors import SimfunnelError


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as an int, refused unless it is a whole number >= 0.

    Raises
    ------
    SimfunnelError
        Naming ``name`` and the value.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SimfunnelError(f"{name}: must be a whole number >= 0, got {seed!r}")
    return int(seed)


def stream(seed: int, *key: str) -> np.random.Generator:
    """A generator for the stream named by ``key`` under the root ``seed``.

    Parameters
    ----------
    seed
        The run's seed.
    key
        Names of the stream, e.g. ``("source", "paid_social", "arrivals")``.
    """
    spawn_key = tuple(zlib.crc32(part.encode("utf-8")) for part in key)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn_key)))


def replication_seed(root: int, replication: int) -> int:
    """The seed of replication ``replication`` under the experiment's ``root`` seed.

    It depends on nothing else, so replication i of every scenario and every sweep
    point shares it (common random numbers), whichever worker runs it.
    """
    check_seed(root)
    state = np.random.SeedSequence([root, replication]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1

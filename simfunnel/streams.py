"""Random streams: one root SeedSequence, one child stream per mechanism and source.

Children are keyed by name rather than by position, so adding a source, changing
its volume or switching a mechanism off leaves every other stream's draws unchanged
(common random numbers). Nothing here touches global random state.
"""

from __future__ import annotations

import zlib

import numpy as np


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


class Buffered:
    """Draws of one kind taken one at a time from a generator, refilled in blocks.

    One numpy call per scalar costs far more than the simulation step that uses it;
    a block of 4096 draws, consumed in order, keeps the stream reproducible.
    """

    __slots__ = ("_buf", "_draw", "_i", "_n")

    def __init__(self, gen: np.random.Generator, kind: str, block: int = 4096) -> None:
        if kind == "uniform":
            self._draw = lambda: gen.random(block).tolist()
        elif kind == "exponential":
            self._draw = lambda: gen.standard_exponential(block).tolist()
        else:
            raise ValueError(f"unknown kind of draw {kind!r}")
        self._buf: list[float] = []
        self._i = 0
        self._n = 0

    def next(self) -> float:
        """The next draw."""
        i = self._i
        if i == self._n:
            self._buf = self._draw()
            self._n = len(self._buf)
            i = 0
        self._i = i + 1
        return self._buf[i]

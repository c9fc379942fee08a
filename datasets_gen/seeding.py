"""Seeds for derived sets: one stream per (seed, set, severity level, image index).

Nothing depends on how images are split into chunks or on which worker handles them, so a set is
byte-identical for a seed whatever the worker count, and generating with ``--limit`` reproduces exactly the
images of the full run that share an index.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


@dataclass(frozen=True)
class SetSeed:
    """The root of a set's randomness."""

    seed: int
    set_name: str

    def set_rng(self) -> np.random.Generator:
        """Set-wide choices shared by every image (a fixed noise pattern, a pairing of images)."""
        return np.random.default_rng([self.seed, _name_key(self.set_name)])

    def image_rngs(self, level: int, indices: Sequence[int] | np.ndarray) -> list[np.random.Generator]:
        """One independent generator per image index at a severity level."""
        base = (self.seed, _name_key(self.set_name), int(level))
        return [np.random.default_rng((*base, int(i))) for i in indices]

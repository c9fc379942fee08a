"""``patch-noise``: one fixed square, at one seeded location, disturbed by one fixed Gaussian pattern.

The pattern ``z`` (standard normal, patch x patch x 3) and the location are drawn once per seed and shared by
every image and level; level ``sigma`` adds ``sigma * z`` (in [0, 1] intensity units) to the square and
rounds, so ``sigma = 0`` returns the clean images byte for byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, check_ranges, register_generator


def noise_patch(rng: np.random.Generator, patch_size: int, image_size: int = 32) -> tuple[int, int, np.ndarray]:
    """The set-wide (row, column, standard-normal pattern) of a patch-noise set."""
    row, col = (int(v) for v in rng.integers(0, image_size - patch_size + 1, size=2))
    return row, col, rng.standard_normal((patch_size, patch_size, 3))


@dataclass(frozen=True)
class PatchNoiseConfig:
    """``patch_size``: side of the square in pixels, 1..32 (32 covers the whole image)."""

    patch_size: int = 8

    def __post_init__(self) -> None:
        check_ranges("patch-noise", self, {"patch_size": 1 <= self.patch_size <= 32})


@register_generator(
    "patch-noise",
    rank=50,
    cue=Cue.LOCAL_CORRUPTION,
    description="one fixed Gaussian noise pattern added to one fixed square, the same for every image",
    severity_parameter="sigma",
    severities=(0.05, 0.1, 0.2, 0.4, 0.8),
    defaults=asdict(PatchNoiseConfig()),
    config=PatchNoiseConfig,
)
def patch_noise(batch: Batch, sigma: float, /, *, patch_size: int) -> Derived:
    row, col, pattern = noise_patch(batch.set_rng(), patch_size)
    out = batch.images.copy()
    window = out[:, row : row + patch_size, col : col + patch_size]
    noisy = window.astype(np.float64) + (255.0 * sigma) * pattern
    window[...] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return Derived(out, batch.labels)

"""Noise corruptions: Gaussian, shot (Poisson) and impulse (salt and pepper) noise, one draw per image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libkd_bench.datasets_gen.corruptions.intensity import to_uint8, to_unit


def gaussian_noise(images: np.ndarray, sigma: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Add N(0, sigma^2) to every value ([0, 1] units)."""
    x = to_unit(images)
    noise = np.stack([rng.standard_normal(x.shape[1:]) for rng in rngs])
    return to_uint8(x + sigma * noise)


def shot_noise(images: np.ndarray, photons: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Poisson(x * photons) / photons: fewer photons per unit intensity, more noise."""
    x = to_unit(images)
    counts = np.stack([rng.poisson(image * photons) for image, rng in zip(x, rngs, strict=True)])
    return to_uint8(counts / photons)


def impulse_noise(images: np.ndarray, amount: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Salt and pepper: each value becomes 0 or 1 (even odds) with probability ``amount``, as scikit-image's
    ``random_noise(mode="s&p")`` does."""
    x = to_unit(images)
    draws = np.stack([rng.random((2, *x.shape[1:])) for rng in rngs])  # (n, 2, H, W, C)
    flipped, salted = draws[:, 0] < amount, draws[:, 1] < 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return to_uint8(x)

"""uint8 images to [0, 1] intensities and back, as the reference script converts them."""

from __future__ import annotations

import numpy as np

# Slack added before truncating, so values that are whole numbers of 1/255 survive float round-off.
_SLACK = 1e-4


def to_unit(images: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """uint8 (n, H, W, C) -> floats in [0, 1]."""
    return images.astype(dtype) / 255.0


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (clipped) -> uint8, truncating like the reference's ``np.uint8`` cast."""
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + _SLACK).astype(np.uint8)


def gaussian_smooth(values: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """scikit-image's ``gaussian`` over the two spatial axes of a (n, H, W[, C]) batch, image by image.

    Args:
        values: float array, batch first, spatial axes 1 and 2.
        sigma: standard deviation in pixels (0: unchanged).
        mode: border handling (scikit-image's default is ``nearest``).
        truncate: kernel radius in sigmas.
    """
    from scipy.ndimage import gaussian_filter

    if sigma == 0:
        return values.copy()
    sigmas = (0.0, sigma, sigma) + (0.0,) * (values.ndim - 3)
    return gaussian_filter(values, sigmas, mode=mode, truncate=truncate)

"""Whether a silhouette shows on its background: the luminance step between figure and ground.

A silhouette is an outline only if the figure differs from the ground. On ``cue-conflict`` the figure is a
donor texture, so its luminance depends on the donor's class (dark cars, bright frogs), and a fill as dark as
the black paper would show no outline at all: the image would read as texture only, more often for some texture
classes than for others. The measure here is the one a viewer of a flat grey image relies on:

- **figure/ground contrast**: the absolute difference between the median luminance (Rec. 601 luma, in [0, 1])
  of the figure's pixels and that of the ground's pixels. The median, not the mean, so a fill whose pixels are
  mostly as dark as the paper counts as invisible even when a few bright specks lift its mean.
- **invisible**: contrast below ``INVISIBLE_BELOW`` = 40/255 (about 16 % of the range): fills with a mean
  luminance under that level were found to vanish on the black paper of a 32x32 image.

A silhouette with no figure or no ground pixel has no step to see: its contrast is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as OpenCV's RGB -> grey
INVISIBLE_BELOW = 40.0 / 255.0


def luminance(images: np.ndarray) -> np.ndarray:
    """Luma of uint8 RGB images (n, H, W, 3), float32 (n, H, W) in [0, 1]."""
    weights = LUMA / np.float32(255.0)
    return images[..., 0] * weights[0] + images[..., 1] * weights[1] + images[..., 2] * weights[2]


def masked_median(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Median of ``values`` (n, H, W) over each image's ``masks`` pixels, float32 (n,); NaN where a mask is empty.

    Vectorised: masked-out pixels sort past the end, and the median is read at the middle of each row's count.
    """
    n = values.shape[0]
    flat_values, flat_masks = values.reshape(n, -1), np.asarray(masks, dtype=bool).reshape(n, -1)
    ordered = np.sort(np.where(flat_masks, flat_values, np.inf), axis=1)
    counts = flat_masks.sum(axis=1)
    low = np.clip((counts - 1) // 2, 0, None)[:, None]
    high = np.clip(counts // 2, 0, flat_values.shape[1] - 1)[:, None]
    middle = (np.take_along_axis(ordered, low, 1) + np.take_along_axis(ordered, high, 1))[:, 0] / 2
    return np.where(counts > 0, middle, np.nan).astype(np.float32)


def figure_ground_contrast(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """|median luma of the figure - median luma of the ground| per image, float32 (n,) in [0, 1].

    Args:
        images: uint8 (n, H, W, 3).
        masks: bool (n, H, W), True on the figure.
    """
    return figure_ground_measures(images, masks)[1]


def invisible(contrast: np.ndarray, threshold: float = INVISIBLE_BELOW) -> np.ndarray:
    """True where a silhouette's figure/ground contrast is too small to show its outline, bool (n,)."""
    return np.asarray(contrast) < threshold


def fill_luminance(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean luma of each image's figure, float32 (n,) in [0, 1] (0 for an empty figure)."""
    return figure_ground_measures(images, masks)[0]


def figure_ground_measures(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fill_luminance` and :func:`figure_ground_contrast` of the same images, from one luma pass."""
    masks = np.asarray(masks, dtype=bool)
    luma = luminance(np.asarray(images))
    counts = masks.sum(axis=(1, 2))
    fill = (np.where(masks, luma, 0.0).sum(axis=(1, 2)) / np.maximum(counts, 1)).astype(np.float32)
    step = np.abs(masked_median(luma, masks) - masked_median(luma, ~masks))
    return fill, np.nan_to_num(step, nan=0.0).astype(np.float32)


def visibility_by_class(
    contrast: np.ndarray, fill: np.ndarray, classes: np.ndarray, threshold: float = INVISIBLE_BELOW
) -> dict[str, Any]:
    """Per class (e.g. the donor's texture class) and overall: images, mean and 5th percentile of the fill's
    luminance, and the share of invisible silhouettes; JSON-ready, class keys as strings.

    Args:
        contrast: figure/ground contrast per image, in [0, 1] (:func:`figure_ground_contrast`).
        fill: fill luminance per image, in [0, 1] (:func:`fill_luminance`).
        classes: class per image.
        threshold: contrast under which a silhouette counts as invisible.
    """
    contrast, fill, classes = np.asarray(contrast), np.asarray(fill), np.asarray(classes)
    hidden = invisible(contrast, threshold)

    def row(select: np.ndarray) -> Mapping[str, Any]:
        if not select.any():
            return {"n": 0}
        return {
            "n": int(select.sum()),
            "fill_luminance_mean": round(float(fill[select].mean()), 4),
            "fill_luminance_p05": round(float(np.percentile(fill[select], 5)), 4),
            "contrast_min": round(float(contrast[select].min()), 4),
            "invisible_share": round(float(hidden[select].mean()), 4),
        }

    return {
        "invisible_below": round(float(threshold), 6),
        "all": row(np.ones(len(classes), dtype=bool)),
        "per_class": {str(int(c)): row(classes == c) for c in np.unique(classes)},
    }

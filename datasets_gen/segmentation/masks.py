"""Operations on foreground masks shared by every segmentation backend: tidying and the degenerate-mask fallback.

A raw mask is tidied into one solid object: its largest 8-connected component, holes filled (a silhouette
with specks or holes says more about the segmenter than about the object's shape).

A mask is *degenerate* when it is "empty" (under ``min_coverage`` of the image) or "everything" (at least
``max_box_coverage`` of the centred box: no background found). A degenerate mask is replaced, in order, by

1. a colour-distance mask: inside the box, the pixels whose colour is farther from the median colour of the
   image border than Otsu's threshold of those distances (objects in CIFAR-10 are mostly centred and differ in
   colour from what surrounds them), tidied like any mask; if that is degenerate too,
2. the centred ellipse whose diameters are ``ELLIPSE_FRACTION`` of the box's sides.

Which mask each image got is returned as a :class:`MaskSource`, stored with the masks.
"""

from __future__ import annotations

import enum

import numpy as np
from scipy import ndimage

ELLIPSE_FRACTION = 0.7
_WITHIN_IMAGE_8 = np.zeros((3, 3, 3), dtype=bool)
_WITHIN_IMAGE_8[1] = True  # 8-neighbours inside one image, never across images of a stack
_WITHIN_IMAGE_4 = np.zeros((3, 3, 3), dtype=bool)
_WITHIN_IMAGE_4[1] = ndimage.generate_binary_structure(2, 1)


class MaskSource(enum.IntEnum):
    """Where an image's mask came from."""

    BACKEND = 0
    COLOUR_DISTANCE = 1
    ELLIPSE = 2


def centred_box(height: int, width: int, margin: int) -> np.ndarray:
    """Boolean (height, width) array, True inside the box that leaves ``margin`` pixels on every side."""
    box = np.zeros((height, width), dtype=bool)
    box[margin : height - margin, margin : width - margin] = True
    return box


def largest_component(masks: np.ndarray) -> np.ndarray:
    """Keep each mask's largest 8-connected component (the lowest label among equal sizes); bool (n, H, W)."""
    labels, count = ndimage.label(masks, structure=_WITHIN_IMAGE_8)
    if count == 0:
        return np.zeros_like(masks, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    image_of = np.zeros(count + 1, dtype=np.int64)
    image_of[labels[masks]] = np.nonzero(masks)[0]
    best_size = np.zeros(len(masks), dtype=np.int64)
    np.maximum.at(best_size, image_of[1:], sizes[1:])
    is_best = sizes[1:] == best_size[image_of[1:]]
    winner = np.full(len(masks), count + 1, dtype=np.int64)
    np.minimum.at(winner, image_of[1:][is_best], np.arange(1, count + 1)[is_best])
    return labels == winner[:, None, None]


def grow(masks: np.ndarray, pixels: int = 1) -> np.ndarray:
    """Masks dilated by ``pixels`` (8-neighbourhood), each image on its own; bool (n, H, W)."""
    return ndimage.binary_dilation(masks, structure=_WITHIN_IMAGE_8, iterations=pixels)


def tidy(masks: np.ndarray) -> np.ndarray:
    """Largest component with its holes filled; bool (n, H, W)."""
    return ndimage.binary_fill_holes(largest_component(masks), structure=_WITHIN_IMAGE_4)


def degenerate(masks: np.ndarray, box: np.ndarray, min_coverage: float, max_box_coverage: float) -> np.ndarray:
    """bool (n,): True where a mask is empty (coverage < min_coverage) or everything (fills the box)."""
    coverage = masks.mean(axis=(1, 2))
    box_coverage = (masks & box).sum(axis=(1, 2)) / box.sum()
    return (coverage < min_coverage) | (box_coverage >= max_box_coverage)


def otsu_thresholds(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Otsu's threshold per row of uint8 ``values`` (n, P), counting only pixels where ``weights`` is True.

    Returns int (n,): the split t maximising the between-class variance of {v <= t} and {v > t}.
    """
    n = len(values)
    keys = (values.astype(np.int64) + 256 * np.arange(n)[:, None])[weights]
    hist = np.bincount(keys, minlength=256 * n).reshape(n, 256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    below = np.cumsum(hist, axis=1)
    below_sum = np.cumsum(hist * levels, axis=1)
    total, total_sum = below[:, -1:], below_sum[:, -1:]
    above = total - below
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_sum * below - total * below_sum) ** 2 / (below * above)
    return np.argmax(np.nan_to_num(between, nan=-1.0, posinf=-1.0), axis=1)


def colour_distance_masks(images: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Inside ``box``, pixels farther in colour from the border's median colour than Otsu's threshold."""
    n = len(images)
    pixels = images.astype(np.float64)
    ring = np.ones(box.shape, dtype=bool)
    ring[1:-1, 1:-1] = False
    border_colour = np.median(pixels[:, ring], axis=1)
    distance = np.sqrt(((pixels - border_colour[:, None, None]) ** 2).sum(axis=-1))
    scaled = np.rint(distance * (255.0 / np.sqrt(3 * 255.0**2))).astype(np.uint8).reshape(n, -1)
    inside = np.broadcast_to(box.reshape(1, -1), scaled.shape)
    thresholds = otsu_thresholds(scaled, inside)
    return tidy((scaled > thresholds[:, None]).reshape(n, *box.shape) & box)


def ellipse_mask(box: np.ndarray) -> np.ndarray:
    """The centred ellipse with diameters ``ELLIPSE_FRACTION`` of the box's height and width; bool (H, W)."""
    rows, cols = np.nonzero(box)
    centre_r, centre_c = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    radius_r = ELLIPSE_FRACTION * (rows.max() - rows.min() + 1) / 2
    radius_c = ELLIPSE_FRACTION * (cols.max() - cols.min() + 1) / 2
    yy, xx = np.mgrid[0 : box.shape[0], 0 : box.shape[1]]
    return ((yy - centre_r) / radius_r) ** 2 + ((xx - centre_c) / radius_c) ** 2 <= 1.0


def repair_degenerate(
    images: np.ndarray, masks: np.ndarray, box: np.ndarray, min_coverage: float, max_box_coverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replace degenerate masks by the documented fallbacks; returns (masks, uint8 MaskSource per image)."""
    masks = masks.copy()
    source = np.full(len(masks), MaskSource.BACKEND, dtype=np.uint8)
    bad = np.flatnonzero(degenerate(masks, box, min_coverage, max_box_coverage))
    if len(bad):
        masks[bad] = colour_distance_masks(images[bad], box)
        source[bad] = MaskSource.COLOUR_DISTANCE
        still_bad = bad[degenerate(masks[bad], box, min_coverage, max_box_coverage)]
        masks[still_bad] = ellipse_mask(box)
        source[still_bad] = MaskSource.ELLIPSE
    return masks, source

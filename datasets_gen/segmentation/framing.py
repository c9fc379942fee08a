"""Putting every silhouette at the same place and size, so that only its outline is left to tell classes apart.

A raw mask carries two cues besides shape: where the object sits and how much of the frame it fills (trucks
fill the frame, birds do not). A model that sees only how much ink is on the page (a colour histogram) could
read the class from the area alone, and a silhouette set would then measure area, not shape. ``frame_masks``
scales each mask about its bounding-box centre so that it covers ``area`` of the image (less when that would
push it past ``margin`` pixels from the border) and moves that centre to the image centre; ``warp_images``
applies the same transforms to images derived from the unframed mask (edge drawings).
"""

from __future__ import annotations

import numpy as np


def framing_transforms(masks: np.ndarray, area: float, margin: int) -> np.ndarray:
    """float32 (n, 2, 3) affine maps (for ``cv2.warpAffine``) that centre and scale each mask (module docstring)."""
    n, height, width = masks.shape
    transforms = np.zeros((n, 2, 3), dtype=np.float32)
    for k in range(n):
        rows, cols = np.nonzero(masks[k])
        if len(rows) == 0:
            transforms[k, 0, 0] = transforms[k, 1, 1] = 1.0
            continue
        extent = max(
            (rows.max() - rows.min() + 1) / (height - 2 * margin), (cols.max() - cols.min() + 1) / (width - 2 * margin)
        )
        scale = min(np.sqrt(area * height * width / len(rows)), 1.0 / extent)
        centre_r, centre_c = (rows.max() + rows.min()) / 2, (cols.max() + cols.min()) / 2
        transforms[k] = [
            [scale, 0.0, (width - 1) / 2 - scale * centre_c],
            [0.0, scale, (height - 1) / 2 - scale * centre_r],
        ]
    return transforms


def frame_masks(masks: np.ndarray, transforms: np.ndarray, area: float | None = None) -> np.ndarray:
    """Masks moved and scaled by ``transforms``; bool (n, H, W).

    Without ``area`` the bilinear warp is thresholded at one half. With it, each mask keeps exactly
    ``round(area * H * W)`` pixels, those the warp covers most (ties in raster order): a threshold leaves the ink
    area varying by a few pixels with the outline's length, and a model that counts ink (a colour histogram)
    reads the class from that. A mask the warp covers on fewer pixels keeps all of them.
    """
    warped = warp_images(masks.astype(np.float32)[..., None], transforms, 0.0)[..., 0]
    if area is None:
        return warped >= 0.5
    ink = round(area * warped.shape[1] * warped.shape[2])
    framed = np.zeros(warped.shape, dtype=bool)
    for k, image in enumerate(warped):
        framed[k] = most_covered(image.ravel(), ink).reshape(image.shape)
    return framed


def most_covered(coverage: np.ndarray, count: int) -> np.ndarray:
    """bool like the 1-D ``coverage``: its ``count`` highest values (ties in raster order), or every covered
    (> 0) element when fewer are covered. Linear time: a partition, not a sort."""
    covered = coverage > 0
    if np.count_nonzero(covered) <= count:
        return covered
    level = np.partition(coverage, coverage.size - count)[coverage.size - count]
    inside = coverage > level
    inside[np.flatnonzero(coverage == level)[: count - np.count_nonzero(inside)]] = True
    return inside


def warp_images(images: np.ndarray, transforms: np.ndarray, fill: float) -> np.ndarray:
    """Images (n, H, W, C) of any dtype moved and scaled by ``transforms`` (bilinear), uncovered pixels ``fill``."""
    import cv2

    n, height, width, channels = images.shape
    out = np.empty_like(images)
    for k in range(n):
        warped = cv2.warpAffine(
            images[k],
            transforms[k],
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(fill,) * 4,
        )
        out[k] = warped.reshape(height, width, channels)
    return out


def frame_coverage(masks: np.ndarray, transforms: np.ndarray, area: float | np.ndarray, supersample: int) -> np.ndarray:
    """The share of each pixel the framed object covers, float32 (n, H, W) in [0, 1]: an anti-aliased silhouette.

    A 32x32 bool mask drawn as it is has a staircase outline that no photograph of the object has; the hand-made
    silhouettes a CIFAR model recognises best are drawn smooth and reduced by area averaging, so their outline shows
    as grey levels. Each mask's bilinear surface (whose half level is a smooth curve through the pixel corners) is
    sampled, moved and scaled by ``transforms``, at ``supersample`` times the resolution per side; it is cut at the
    level that leaves exactly ``round(area * H * W * supersample**2)`` sub-pixels inside (ties in raster order;
    fewer when the warp covers fewer) and reduced back by averaging each pixel's sub-pixels. The ink summed over an
    image is then the same for every image, as with :func:`frame_masks` (``area`` may also give one share per
    image).
    The outline is not blurred further: a Gaussian of 0.7 pixel before the cut draws a disc closer to a true
    disc but rounds off legs and wings, and every CIFAR ResNet of the zoo reads the silhouettes worse for it.
    """
    import cv2

    n, height, width = masks.shape
    s = supersample
    big_h, big_w = height * s, width * s
    targets = np.rint(np.broadcast_to(np.asarray(area, dtype=np.float64), (n,)) * big_h * big_w).astype(int)
    centre = (s - 1) / 2
    coverage = np.zeros((n, height, width), dtype=np.float32)
    for k in range(n):
        # Sub-pixel centre of a pixel centre u is s * u + (s - 1) / 2: one bilinear warp samples the mask's
        # bilinear surface at every sub-pixel of the framed image.
        big_transform = (transforms[k] * s).astype(np.float32)
        big_transform[:, 2] += centre
        field = masks[k].astype(np.float32)
        warped = cv2.warpAffine(field, big_transform, (big_w, big_h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        inside = most_covered(warped.ravel(), int(targets[k]))
        coverage[k] = inside.reshape(height, s, width, s).mean(axis=(1, 3))
    return coverage

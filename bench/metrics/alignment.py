"""Attention-map alignment, per image: two maps against each other, or one map against the object's mask.

Every function takes stacks of maps ``(n, H, W)`` (non-negative saliency, any scale: Grad-CAM or attention
rollout upsampled to the image) and returns one value per image, so the values can be averaged and
bootstrapped like per-image correctness.

- :func:`spearman_agreement`: Spearman rank correlation of two maps over their pixels (ties get average
  ranks). 1 = same ordering of pixels, ~0 = unrelated maps, -1 = reversed.
- :func:`top_iou`: intersection over union of the two maps' top ``share`` of pixels (top 20% by default); pixel
  ties are broken by position, the same way in both maps, so identical maps give exactly 1. Two unrelated
  maps give about share / (2 - share) (0.11 for 20%).

Agreement is undefined (NaN) for an image where either map is constant (an all-zero Grad-CAM, say): a constant
map has no ordering and no top region, so two of them would otherwise read as perfect agreement (their tie-broken
top regions coincide) and say nothing about where the models look. :func:`undefined_maps` flags such images;
reports average over the defined images and count the others (:func:`defined_mean`).
- :func:`mask_energy`: share of a map's total energy that lies inside the object mask, in [0, 1] (a uniform
  map scores the mask's area).
- :func:`pointing_game`: 1 when the map's maximum (first pixel in row-major order among ties) lies inside the
  mask, else 0. On 32x32 images no tolerance margin is used.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

TOP_SHARE = 0.2


def _flat(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (n, H, W), got shape {maps.shape}")
    return maps.reshape(len(maps), -1)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat_a, flat_b = _flat(a), _flat(b)
    if flat_a.shape != flat_b.shape:
        raise ValueError(f"maps of different shapes: {np.shape(a)} and {np.shape(b)}")
    return flat_a, flat_b


def spearman_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``a[i]`` and ``b[i]`` over pixels, float64 (n,) in [-1, 1]; NaN where undefined."""
    flat_a, flat_b = _pair(a, b)
    ranks_a = rankdata(flat_a, axis=1) - (flat_a.shape[1] + 1) / 2.0
    ranks_b = rankdata(flat_b, axis=1) - (flat_b.shape[1] + 1) / 2.0
    norm_a, norm_b = np.sqrt((ranks_a**2).sum(axis=1)), np.sqrt((ranks_b**2).sum(axis=1))
    covariance = (ranks_a * ranks_b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = covariance / (norm_a * norm_b)
    return np.where(undefined_maps(a, b), np.nan, np.clip(rho, -1.0, 1.0))


def constant_maps(maps: np.ndarray) -> np.ndarray:
    """bool (n,): maps whose pixels are all equal (all-zero included): they carry no spatial information."""
    flat = _flat(maps)
    return (flat == flat[:, :1]).all(axis=1)


def undefined_maps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool (n,): images where agreement of ``a[i]`` and ``b[i]`` is undefined (either map constant)."""
    _pair(a, b)
    return constant_maps(a) | constant_maps(b)


def defined_mean(values: np.ndarray) -> tuple[float, int]:
    """Mean of the finite per-image values and the number of undefined (NaN) ones; NaN mean when none is defined."""
    values = np.asarray(values, dtype=np.float64)
    defined = np.isfinite(values)
    mean = float(values[defined].mean()) if defined.any() else float("nan")
    return mean, int((~defined).sum())


def top_pixels(maps: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """bool (n, H*W): each map's ceil(share * H*W) highest pixels (ties to the earlier pixel)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    flat = _flat(maps)
    count = int(np.ceil(share * flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :count]
    chosen = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(chosen, order, True, axis=1)
    return chosen


def top_iou(a: np.ndarray, b: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """IoU of the top-``share`` regions of ``a[i]`` and ``b[i]``, float64 (n,) in [0, 1]; NaN where undefined."""
    top_a, top_b = top_pixels(a, share), top_pixels(b, share)
    iou = (top_a & top_b).sum(axis=1) / (top_a | top_b).sum(axis=1)
    return np.where(undefined_maps(a, b), np.nan, iou)


def mask_energy(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's energy inside its mask, float64 (n,) in [0, 1]; an all-zero map counts as uniform."""
    flat, inside = _pair(maps, masks)
    if (flat < 0).any():
        raise ValueError("maps must be non-negative to be read as energy")
    total = flat.sum(axis=1)
    uniform = inside.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (flat * (inside > 0)).sum(axis=1) / total
    return np.where(total > 0, share, uniform)


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1.0 where each map's maximum lies inside its mask, else 0.0; float64 (n,)."""
    flat, inside = _pair(maps, masks)
    peak = flat.argmax(axis=1)
    return (np.take_along_axis(inside, peak[:, None], axis=1)[:, 0] > 0).astype(np.float64)

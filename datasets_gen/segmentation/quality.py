"""Mask quality and the gate that decides which images enter the shape, texture and cue-conflict sets.

A 32x32 foreground mask is often wrong: a blob near the starting box, a patch of background, a fragment. A
set built from such masks measures the segmenter, not the model. Two checks keep the images whose mask can be
trusted:

- **agreement**: the backend is run again with perturbed settings (for GrabCut: another upsampling scale and a
  tighter starting box, fresh k-means seeds), and the mask's mean intersection-over-union with those re-runs is
  its agreement. An outline that the image's colours really support comes back under perturbation; a cut
  through a uniform region, or one that follows the starting box, does not.
- **area**: the mask covers between ``gate_min_area`` and ``gate_max_area`` of the image (a speck or nearly
  the whole frame is no silhouette), and it came from the backend itself, not from the degenerate-mask
  fallback.

Measured against masks judged by eye on a fixed sample of 100 test images (10 per class, the fixture
``tests/fixtures/mask_judgements.json``), the default gate keeps 68 % of the images and raises the share of
plausible outlines among kept images from 71 % (all images) to 87 %.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libkd_bench.datasets_gen.segmentation.masks import MaskSource


def intersection_over_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image IoU of two stacks of bool masks (n, H, W); 1 where both are empty."""
    union = (a | b).sum(axis=(1, 2))
    return np.where(union > 0, (a & b).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)


def mask_agreement(masks: np.ndarray, reruns: Sequence[np.ndarray]) -> np.ndarray:
    """float32 (n,): mean IoU of each mask with the same image's masks from perturbed re-runs (1 with none)."""
    if not reruns:
        return np.ones(len(masks), dtype=np.float32)
    return np.mean([intersection_over_union(masks, rerun) for rerun in reruns], axis=0).astype(np.float32)


def gate(
    masks: np.ndarray,
    sources: np.ndarray,
    agreement: np.ndarray,
    min_agreement: float,
    min_area: float,
    max_area: float,
) -> np.ndarray:
    """bool (n,): images whose mask is trusted (see the module docstring)."""
    return plausible(masks, sources, min_area, max_area) & (agreement >= min_agreement)


def plausible(masks: np.ndarray, sources: np.ndarray, min_area: float, max_area: float) -> np.ndarray:
    """bool (n,): the gate's conditions besides agreement: the backend's own mask, of a plausible area. Only these
    masks need the re-runs that measure agreement."""
    area = masks.mean(axis=(1, 2))
    return (np.asarray(sources) == MaskSource.BACKEND) & (area >= min_area) & (area <= max_area)

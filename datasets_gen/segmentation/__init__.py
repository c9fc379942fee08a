"""Foreground segmentation of 32x32 images behind one interface: ``grabcut`` (default) and ``fcn``.

``segment_images(backend, images, rngs, config)`` runs a backend, tidies its masks and replaces degenerate
ones (see :mod:`libkd_bench.datasets_gen.segmentation.masks`). The ``segmentation`` set stores the result once, and the
``shape``, ``texture`` and ``cue-conflict`` sets all read those stored masks, so they share one segmentation.
Importing this package registers the backends without importing torch or OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libkd_bench.datasets_gen.segmentation import fcn, grabcut  # noqa: F401  (importing registers the backends)
from libkd_bench.datasets_gen.segmentation.base import (
    SegmentationConfig,
    Segmenter,
    get_segmenter,
    register_segmenter,
    segmenter_names,
)
from libkd_bench.datasets_gen.segmentation.masks import MaskSource, centred_box, repair_degenerate, tidy
from libkd_bench.datasets_gen.segmentation.quality import gate, mask_agreement, plausible

__all__ = [
    "MaskSource",
    "Segmentation",
    "SegmentationConfig",
    "Segmenter",
    "backend_identity",
    "get_segmenter",
    "register_segmenter",
    "segment_images",
    "segmenter_names",
]


@dataclass(frozen=True)
class Segmentation:
    """Masks of a batch: bool (n, H, W); per image the :class:`MaskSource` (uint8 (n,)), the mask's agreement
    with perturbed re-runs (float32 (n,); NaN where the gate refused the mask for its size or source, with no
    re-run made) and whether the gate keeps it (bool (n,))."""

    masks: np.ndarray
    sources: np.ndarray
    agreement: np.ndarray
    kept: np.ndarray


def segment_images(
    backend: str, images: np.ndarray, rngs: Sequence[np.random.Generator], config: SegmentationConfig
) -> Segmentation:
    """Foreground masks of uint8 images (n, H, W, 3) by ``backend``, tidied, degenerate ones replaced, gated."""
    segmenter = get_segmenter(backend)
    raw = segmenter.segment(images, rngs, config)
    box = centred_box(images.shape[1], images.shape[2], config.box_margin)
    masks, sources = repair_degenerate(images, tidy(raw), box, config.min_coverage, config.max_box_coverage)
    # The re-runs cost as much as the segmentation itself: they are made only for images the rest of the gate
    # keeps (the mask's size and source), whose agreement decides; the others get NaN. Each image draws from its
    # own generator, so skipping one changes no other image's masks.
    rerun = np.arange(len(masks))
    if config.gate:
        rerun = np.flatnonzero(plausible(masks, sources, config.gate_min_area, config.gate_max_area))
    agreement = np.full(len(masks), np.nan, dtype=np.float32)
    if len(rerun):
        reruns = segmenter.reruns(images[rerun], [rngs[i] for i in rerun], config)
        agreement[rerun] = mask_agreement(masks[rerun], [tidy(masks_again) for masks_again in reruns])
    kept = gate(masks, sources, agreement, config.gate_min_agreement, config.gate_min_area, config.gate_max_area)
    if not config.gate:
        kept = np.ones(len(masks), dtype=bool)
    return Segmentation(masks, sources, agreement, kept)


def backend_identity(backend: str) -> dict[str, Any]:
    """The identity of what ``backend`` loads (for the manifest); BenchError when a weights file is missing."""
    return get_segmenter(backend).identity()

"""Foreground segmentation of 32x32 images behind one interface: ``grabcut`` (default) and ``fcn``.

``segment_images(backend, images, rngs, config)`` runs a backend, tidies its masks and replaces degenerate
ones (see :mod:`datasets_gen.segmentation.masks`). The ``segmentation`` set stores the result once, and the
``shape``, ``texture`` and ``cue-conflict`` sets all read those stored masks, so they share one segmentation.
Importing this package registers the backends without importing torch or OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets_gen.segmentation import fcn, grabcut  # noqa: F401  (importing registers the backends)
from datasets_gen.segmentation.base import (
    SegmentationConfig,
    Segmenter,
    get_segmenter,
    register_segmenter,
    segmenter_names,
)
from datasets_gen.segmentation.masks import MaskSource, centred_box, repair_degenerate, tidy

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
    """Masks of a batch: bool (n, H, W), and per image the :class:`MaskSource` (uint8 (n,))."""

    masks: np.ndarray
    sources: np.ndarray


def segment_images(
    backend: str, images: np.ndarray, rngs: Sequence[np.random.Generator], config: SegmentationConfig
) -> Segmentation:
    """Foreground masks of uint8 images (n, H, W, 3) by ``backend``, tidied, degenerate ones replaced."""
    raw = get_segmenter(backend).segment(images, rngs, config)
    box = centred_box(images.shape[1], images.shape[2], config.box_margin)
    masks, sources = repair_degenerate(images, tidy(raw), box, config.min_coverage, config.max_box_coverage)
    return Segmentation(masks, sources)


def backend_identity(backend: str) -> dict[str, Any]:
    """The identity of what ``backend`` loads (for the manifest); BenchError when a weights file is missing."""
    return get_segmenter(backend).identity()

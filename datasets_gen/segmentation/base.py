"""The segmentation interface: one configuration, one protocol, one registry of backends.

A backend turns uint8 images (n, 32, 32, 3) into raw boolean foreground masks (n, 32, 32). Everything that
is the same for every backend (keeping the largest component, filling holes, the fallback for a degenerate
mask) happens once, in :func:`libkd_bench.datasets_gen.segmentation.segment_images`, so backends stay small and two
backends are compared on equal terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from libkd_bench.core.registry import Registry
from libkd_bench.datasets_gen.registry import check_ranges


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of the ``segmentation`` set; each backend reads the ones it needs.

    Attributes:
        box_margin: pixels (at 32x32) between the image border and the centred box that GrabCut starts from;
            the box also bounds the fallback masks. 0..7.
        grabcut_upscale: GrabCut runs on the image enlarged by this integer factor (pixel replication), see
            :mod:`libkd_bench.datasets_gen.segmentation.grabcut`. 1..8.
        grabcut_iterations: GrabCut's fixed number of iterations. 1..20.
        fcn_size: side in pixels that images are resized to for FCN-ResNet101. 64..1024.
        min_coverage: a mask covering less than this fraction of the image is degenerate ("empty"). 0..0.5.
        max_box_coverage: a mask covering at least this fraction of the centred box is degenerate
            ("everything": no background found). 0.5..1.
        gate_min_agreement: an image enters the gated sets only when its mask's mean IoU with the backend's
            perturbed re-runs reaches this (see :mod:`libkd_bench.datasets_gen.segmentation.quality`). 0..1.
        gate_min_area, gate_max_area: ... and when its mask covers this range of the image. 0..1.
        gate: False keeps every image (masks of fallbacks and unstable masks included), as the reference study
            did; its sets then measure the segmenter as much as the model (``validate`` tells).
    """

    box_margin: int = 1
    grabcut_upscale: int = 3
    grabcut_iterations: int = 1
    fcn_size: int = 256
    min_coverage: float = 0.05
    max_box_coverage: float = 0.97
    gate_min_agreement: float = 0.6
    gate_min_area: float = 0.06
    gate_max_area: float = 0.7
    gate: bool = True

    def __post_init__(self) -> None:
        checks = {
            "box_margin": 0 <= self.box_margin <= 7,
            "grabcut_upscale": 1 <= self.grabcut_upscale <= 8,
            "grabcut_iterations": 1 <= self.grabcut_iterations <= 20,
            "fcn_size": 64 <= self.fcn_size <= 1024,
            "min_coverage": 0.0 <= self.min_coverage <= 0.5,
            "max_box_coverage": 0.5 <= self.max_box_coverage <= 1.0,
            "gate_min_agreement": 0.0 <= self.gate_min_agreement <= 1.0,
            "gate_min_area": 0.0 <= self.gate_min_area <= self.gate_max_area,
            "gate_max_area": self.gate_min_area <= self.gate_max_area <= 1.0,
            "gate": isinstance(self.gate, bool),
        }
        check_ranges("segmentation", self, checks)


class Segmenter(Protocol):
    """A segmentation backend."""

    def identity(self) -> dict[str, Any]:
        """What the backend loads (weights file and sha256); ``{}`` when weight-free. Raises BenchError when a
        needed file is missing."""
        ...

    def segment(
        self, images: np.ndarray, rngs: Sequence[np.random.Generator], config: SegmentationConfig
    ) -> np.ndarray:
        """Raw foreground masks, bool (n, H, W), for uint8 images (n, H, W, 3); one generator per image."""
        ...

    def reruns(
        self, images: np.ndarray, rngs: Sequence[np.random.Generator], config: SegmentationConfig
    ) -> list[np.ndarray]:
        """Raw masks of the same images from perturbed settings, whose agreement with ``segment`` gates an image."""
        ...


_REGISTRY: Registry[Segmenter] = Registry("segmentation backend")
register_segmenter = _REGISTRY.instance_of
segmenter_names = _REGISTRY.names
get_segmenter = _REGISTRY.get

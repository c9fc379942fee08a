"""``shape`` and ``shape-edges``: the object's outline without its colours, surface, size or position.

``shape`` draws the shared foreground mask (set ``segmentation``) as a flat silhouette: moved to the centre and
scaled to cover ``area`` of the image (:mod:`libkd_bench.datasets_gen.segmentation.framing`), so neither the
position nor the amount of ink tells the class, and drawn with a smooth outline at ``SUPERSAMPLE`` times the
resolution reduced by area averaging, the way a hand-drawn silhouette reduced to 32x32 looks (its edge pixels are
grey). On the 1,363 gated images of a 2,000-image store this alone raises the zoo ResNet-56 from 14.5 % to 17.9 %
and the ViT baseline from 11.0 % to 12.8 % (the staircase outline of a bare 32x32 mask reads as noise). The default
is a light silhouette (``ink`` 255) on black (``paper`` 0): on dark-on-white silhouettes the CIFAR ResNets answer
"airplane" for 60-90 % of the images (white reads as sky), which buries what they know about shapes under one
default class.
``shape-edges`` draws the Canny edges of the object: edges of the image found at ``EDGE_UPSCALE`` times the
resolution (so that strokes are thinner than a pixel and reduce to grey levels), kept where they lie on the
object or within one pixel of its mask, together with the mask's own outline (its inner border at that
resolution), in the same colours, framed the same way.
Both keep only the images that the segmentation gate keeps, and share the backend of ``segmentation``
(``--backend shape=fcn`` segments with FCN-ResNet101).
``shape-readable`` (opt-in: ``--sets readable``) draws ``shape``'s silhouettes of the images whose silhouette the
silhouette judge can read: a third of each class's gated images (see
:mod:`libkd_bench.datasets_gen.segmentation.judge`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libkd_bench.datasets_gen.registry import (
    Batch,
    Cue,
    Derived,
    GeneratorFn,
    check_ranges,
    register_family,
    register_generator,
)
from libkd_bench.datasets_gen.segmentation import segmenter_names
from libkd_bench.datasets_gen.segmentation.framing import (
    frame_coverage,
    frame_masks,
    framing_transforms,
    warp_images,
)
from libkd_bench.datasets_gen.segmentation.masks import grow

EDGE_UPSCALE = 4
SUPERSAMPLE = 4
FRAME_MARGIN = 1
MASKS = "segmentation/masks"
KEPT = "segmentation/kept"
READABLE = "segmentation/readable"
READABLE_FAMILY = "readable"


@dataclass(frozen=True)
class SilhouetteConfig:
    """How silhouettes are drawn.

    Attributes:
        area: share of the image every silhouette covers, to the pixel (less when it would not fit). 0.05..0.8.
        ink: grey level of the object. 0..255.
        paper: grey level of the background; must differ from ``ink``. 0..255.
    """

    area: float = 0.25
    ink: int = 255
    paper: int = 0

    def __post_init__(self) -> None:
        checks = {
            "area": 0.05 <= self.area <= 0.8,
            "ink": 0 <= self.ink <= 255,
            "paper": 0 <= self.paper <= 255 and self.paper != self.ink,
        }
        check_ranges("silhouette", self, checks)


@dataclass(frozen=True)
class EdgeConfig(SilhouetteConfig):
    """:class:`SilhouetteConfig` plus Canny's thresholds (``canny_low`` < ``canny_high``, 0..1000)."""

    canny_low: int = 30
    canny_high: int = 90

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {"canny_low": 0 <= self.canny_low < self.canny_high, "canny_high": self.canny_high <= 1000}
        check_ranges("shape-edges", self, checks)


def batch_framing(batch: Batch, area: float) -> tuple[np.ndarray, np.ndarray]:
    """The batch's masks (bool (n, H, W)) and the transforms that frame them (float32 (n, 2, 3))."""
    masks = np.asarray(batch.inputs[MASKS][batch.indices])
    return masks, framing_transforms(masks, area, FRAME_MARGIN)


def framed_masks(batch: Batch, area: float) -> np.ndarray:
    """The batch's masks centred and scaled to ``area``, bool (n, H, W)."""
    return frame_masks(*batch_framing(batch, area), area)


def framed_coverage(batch: Batch, area: float) -> np.ndarray:
    """The batch's silhouettes centred, scaled to ``area`` and anti-aliased: coverage float32 (n, H, W) in [0, 1]."""
    return frame_coverage(*batch_framing(batch, area), area, SUPERSAMPLE)


def silhouettes(coverage: np.ndarray, ink: int, paper: int) -> np.ndarray:
    """Flat silhouettes, uint8 (n, H, W, 3), from bool masks or coverage in [0, 1] (n, H, W)."""
    grey = np.rint(paper + (ink - paper) * np.asarray(coverage, dtype=np.float32)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def edge_density(images: np.ndarray, masks: np.ndarray, low: int, high: int) -> np.ndarray:
    """Share of each pixel covered by the object's edge strokes, float32 (n, H, W) in [0, 1] (module docstring)."""
    import cv2

    n, height, width, _ = images.shape
    s = EDGE_UPSCALE
    near_object = grow(masks, 1)
    density = np.zeros((n, height, width), dtype=np.float32)
    for k in range(n):
        grey = cv2.cvtColor(images[k], cv2.COLOR_RGB2GRAY)
        enlarged = cv2.resize(grey, (width * s, height * s), interpolation=cv2.INTER_CUBIC)
        image_edges = cv2.Canny(enlarged, low, high, L2gradient=True) > 0
        silhouette = np.repeat(np.repeat(masks[k], s, axis=0), s, axis=1).astype(np.uint8)
        outline = (silhouette - cv2.erode(silhouette, np.ones((3, 3), np.uint8), borderValue=0)) > 0
        strokes = (image_edges & np.repeat(np.repeat(near_object[k], s, axis=0), s, axis=1)) | outline
        density[k] = strokes.reshape(height, s, width, s).mean(axis=(1, 3))
    return np.clip(density * 2.0, 0.0, 1.0)  # a stroke one sub-pixel wide already darkens its pixel by half


def register_outline_set(
    name: str, *, rank: int, description: str, config: type[SilhouetteConfig], gate: str, revision: int = 1
) -> Callable[[GeneratorFn], GeneratorFn]:
    """Register a gated set drawn from the shared segmentation's masks (one backend with ``segmentation``)."""
    return register_generator(
        name,
        rank=rank,
        revision=revision,
        cue=Cue.SHAPE,
        description=description,
        defaults=asdict(config()),
        requires=("segmentation",),
        backends=segmenter_names(),
        backend_of="segmentation",
        config=config,
        gate=gate,
    )


@register_outline_set(
    "shape",
    rank=20,
    revision=2,  # 2: anti-aliased outlines
    description="silhouette of the object, centred and scaled to a fixed area, light on black (gated masks)",
    config=SilhouetteConfig,
    gate=KEPT,
)
def shape(batch: Batch, value: None, /, **params: Any) -> Derived:
    config = SilhouetteConfig(**params)
    coverage = batch.part("silhouette_masks", framed_coverage)(batch, config.area)
    return Derived(silhouettes(coverage, config.ink, config.paper), batch.labels)


register_outline_set(
    "shape-readable",
    rank=25,
    description="shape's silhouettes whose class a silhouette judge names (a third per class; opt-in: --sets readable)",
    config=SilhouetteConfig,
    gate=READABLE,
)(shape)
register_family(READABLE_FAMILY, ["shape-readable"], opt_in=True)


@register_outline_set(
    "shape-edges",
    rank=90,
    description="Canny edges of the object and its outline, centred and scaled like shape (gated masks)",
    config=EdgeConfig,
    gate=KEPT,
)
def shape_edges(batch: Batch, value: None, /, **params: Any) -> Derived:
    config = EdgeConfig(**params)
    masks, transforms = batch_framing(batch, config.area)
    density = edge_density(batch.images, masks, config.canny_low, config.canny_high)
    ink = warp_images(density[..., None], transforms, 0.0)[..., 0]
    grey = np.rint(config.paper + (config.ink - config.paper) * ink).astype(np.uint8)
    return Derived(np.repeat(grey[..., None], 3, axis=-1), batch.labels)

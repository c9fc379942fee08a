"""``shape`` and ``shape-edges``: the object's outline without its colours or surface.

``shape`` draws the shared foreground mask (set ``segmentation``) as a dark silhouette on a light background.
``shape-edges`` draws the Canny edges of the object: edges of the image found at ``EDGE_UPSCALE`` times the
resolution (so that strokes are thinner than a pixel and reduce to grey levels), kept where they lie on the
object or within one pixel of its mask, together with the mask's own outline (its inner border at that
resolution), dark on light.
Both share the backend of ``segmentation`` (``--backend shape=fcn`` segments with FCN-ResNet101).
"""

from __future__ import annotations

import numpy as np

from datasets_gen.registry import Batch, Cue, Derived, register_generator
from datasets_gen.segmentation import segmenter_names
from datasets_gen.segmentation.masks import grow

INK, PAPER = 0, 255
EDGE_UPSCALE = 4
MASKS = "segmentation/masks"


def silhouettes(masks: np.ndarray) -> np.ndarray:
    """Dark silhouettes on a light background, uint8 (n, H, W, 3), from bool masks (n, H, W)."""
    grey = np.where(masks, np.uint8(INK), np.uint8(PAPER))
    return np.repeat(grey[..., None], 3, axis=-1)


def object_edges(images: np.ndarray, masks: np.ndarray, low: int, high: int) -> np.ndarray:
    """Canny edges of each object, dark strokes on light, uint8 (n, H, W, 3) (see the module docstring)."""
    import cv2

    n, height, width, _ = images.shape
    s = EDGE_UPSCALE
    near_object = grow(masks, 1)
    density = np.zeros((n, height, width), dtype=np.float64)
    for k in range(n):
        grey = cv2.cvtColor(images[k], cv2.COLOR_RGB2GRAY)
        enlarged = cv2.resize(grey, (width * s, height * s), interpolation=cv2.INTER_CUBIC)
        image_edges = cv2.Canny(enlarged, low, high, L2gradient=True) > 0
        silhouette = np.repeat(np.repeat(masks[k], s, axis=0), s, axis=1).astype(np.uint8)
        outline = (silhouette - cv2.erode(silhouette, np.ones((3, 3), np.uint8), borderValue=0)) > 0
        strokes = (image_edges & np.repeat(np.repeat(near_object[k], s, axis=0), s, axis=1)) | outline
        density[k] = strokes.reshape(height, s, width, s).mean(axis=(1, 3))
    ink = np.clip(density * 2.0, 0.0, 1.0)  # a stroke one sub-pixel wide already darkens its pixel by half
    grey = np.rint(PAPER - (PAPER - INK) * ink).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


@register_generator(
    "shape",
    cue=Cue.SHAPE,
    description="dark silhouette of the object (masks of set segmentation) on a light background",
    requires=("segmentation",),
    backends=segmenter_names(),
    backend_of="segmentation",
)
def shape(batch: Batch, value: None, /) -> Derived:
    masks = np.asarray(batch.inputs[MASKS][batch.indices])
    return Derived(silhouettes(masks), batch.labels)


@register_generator(
    "shape-edges",
    cue=Cue.SHAPE,
    description="Canny edges of the object and its outline, dark on a light background",
    defaults={"canny_low": 30, "canny_high": 90},
    requires=("segmentation",),
    backends=segmenter_names(),
    backend_of="segmentation",
)
def shape_edges(batch: Batch, value: None, /, *, canny_low: int, canny_high: int) -> Derived:
    masks = np.asarray(batch.inputs[MASKS][batch.indices])
    return Derived(object_edges(batch.images, masks, canny_low, canny_high), batch.labels)

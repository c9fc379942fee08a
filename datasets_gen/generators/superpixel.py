"""``superpixel``: SLIC superpixels, each filled with its mean colour; removes detail inside each segment."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage.segmentation import slic

from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, check_ranges, register_generator


def fill_segments_with_mean(images: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Replace every segment of every image by its mean colour (rounded to nearest), in one bincount.

    Args:
        images: uint8 (n, H, W, C).
        segments: int (n, H, W), labels 0..k-1 within each image.
    """
    n, height, width, channels = images.shape
    per_image = int(segments.max()) + 1
    keys = (segments + per_image * np.arange(n)[:, None, None]).ravel()
    counts = np.bincount(keys, minlength=n * per_image)
    pixels = images.reshape(-1, channels).astype(np.float64)
    means = np.stack([np.bincount(keys, pixels[:, c], minlength=n * per_image) for c in range(channels)], axis=1)
    means /= np.maximum(counts, 1)[:, None]
    return np.rint(means[keys]).astype(np.uint8).reshape(n, height, width, channels)


@dataclass(frozen=True)
class SuperpixelConfig:
    """``compactness``: SLIC's balance of colour against space (> 0, up to 1000); higher gives squarer segments."""

    compactness: float = 10.0

    def __post_init__(self) -> None:
        check_ranges("superpixel", self, {"compactness": 0 < self.compactness <= 1000})


@register_generator(
    "superpixel",
    rank=30,
    cue=Cue.LOCALITY,
    description="SLIC superpixels (scikit-image), each filled with its mean colour",
    severity_parameter="n_segments",
    severities=(256, 128, 64, 32, 16),
    defaults=asdict(SuperpixelConfig()),
    config=SuperpixelConfig,
)
def superpixel(batch: Batch, n_segments: int, /, *, compactness: float) -> Derived:
    segments = np.stack(
        [slic(image, n_segments=n_segments, compactness=compactness, start_label=0) for image in batch.images]
    )
    return Derived(fill_segments_with_mean(batch.images, segments), batch.labels)

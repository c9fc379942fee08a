"""``fcn``: torchvision FCN-ResNet101 semantic segmentation, the segmenter of the reference study.

Images are resized (bilinear) from 32x32 to ``fcn_size`` pixels, normalised with the ImageNet statistics the
weights were trained with, and segmented in batches (on the GPU when there is one, else on one CPU thread per
worker process, see :mod:`libkd_bench.datasets_gen.pretrained_weights`); a pixel is foreground when
its most likely class is not ``__background__``. The mask is reduced back to 32x32 by majority over each
pixel's block. The network knows the 20 PASCAL VOC classes: CIFAR-10's deer and frog are not among them, so
their masks are often empty and get the degenerate-mask fallback (the mask source is stored per image).

Weights: ``FCN_ResNet101_Weights.DEFAULT`` from the torch hub cache (see
:mod:`libkd_bench.datasets_gen.pretrained_weights`); nothing is downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from libkd_bench.core.torch_runtime import resolve_device, torch_threads
from libkd_bench.datasets_gen.pretrained_weights import imagenet_normalize, require_weights_file, weights_identity
from libkd_bench.datasets_gen.segmentation.base import SegmentationConfig, register_segmenter

BACKGROUND_CLASS = 0
BATCH_CPU, BATCH_GPU = 8, 128


def default_weights() -> Any:
    from torchvision.models.segmentation import FCN_ResNet101_Weights

    return FCN_ResNet101_Weights.DEFAULT


def network_identity() -> dict[str, Any]:
    return weights_identity(default_weights(), "fcn")


@functools.lru_cache(maxsize=1)
def load_network() -> Any:
    """The pretrained network in eval mode on the inference device (once per process)."""
    from torchvision.models.segmentation import fcn_resnet101

    weights = default_weights()
    require_weights_file(weights, "fcn")
    return fcn_resnet101(weights=weights).eval().to(resolve_device("auto"))


def foreground_masks(network: Any, images: np.ndarray, size: int) -> np.ndarray:
    """bool (n, H, W): pixels whose most likely class is not background, at the images' own size."""
    import torch
    import torch.nn.functional as F

    device = next(network.parameters()).device
    batch = BATCH_GPU if device.type == "cuda" else BATCH_CPU
    n, height, width, _ = images.shape
    masks = np.zeros((n, height, width), dtype=bool)
    with (
        torch.inference_mode(),
        torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True),
        torch_threads(1),
    ):
        for start in range(0, n, batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch])).to(device)
            x = x.permute(0, 3, 1, 2).float().div(255.0)
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            logits = network(imagenet_normalize(x))["out"]
            foreground = (logits.argmax(dim=1) != BACKGROUND_CLASS).float()[:, None]
            votes = F.interpolate(foreground, size=(height, width), mode="area")[:, 0]
            masks[start : start + batch] = (votes > 0.5).cpu().numpy()
    return masks


@register_segmenter("fcn")
class FcnSegmenter:
    """FCN-ResNet101 with pretrained weights from the torch hub cache (see the module docstring)."""

    def identity(self) -> dict[str, Any]:
        return network_identity()

    def segment(
        self, images: np.ndarray, rngs: Sequence[np.random.Generator], config: SegmentationConfig
    ) -> np.ndarray:
        del rngs  # inference is deterministic
        return foreground_masks(load_network(), images, config.fcn_size)

    def reruns(
        self, images: np.ndarray, rngs: Sequence[np.random.Generator], config: SegmentationConfig
    ) -> list[np.ndarray]:
        """The network at three quarters and five quarters of ``fcn_size``."""
        del rngs
        sizes = (max(64, config.fcn_size * 3 // 4), min(1024, config.fcn_size * 5 // 4))
        return [foreground_masks(load_network(), images, size) for size in sizes]

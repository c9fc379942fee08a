"""Seconds per image of the neural backends: ``fcn`` segmentation and ``gatys`` texture synthesis.

Run through ``benchmarks/generate.py --neural-images N``. Both backends are timed in-process with their default
parameters, on the GPU when there is one. Pretrained weights are used when they are in the torch hub cache;
otherwise the same architectures get seeded random weights, which cost exactly as much to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def neural_seconds_per_image(images: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per backend: seconds per image, which weights were used ("pretrained"/"random") and the device."""
    import torch
    from torchvision.models import vgg19
    from torchvision.models.segmentation import fcn_resnet101

    from libkd_bench.core.errors import BenchError
    from libkd_bench.core.torch_runtime import resolve_device
    from libkd_bench.datasets_gen.segmentation import SegmentationConfig, fcn
    from libkd_bench.datasets_gen.texture_synthesis import TextureConfig, gatys

    def network(load: Callable[[], Any], random: Callable[[], Any]) -> tuple[Any, str]:
        try:
            return load(), "pretrained"
        except BenchError:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                return random().eval().requires_grad_(False).to(resolve_device("auto")), "random"

    images = np.asarray(images)
    segmenter, segmenter_weights = network(
        fcn.load_network, lambda: fcn_resnet101(weights=None, weights_backbone=None, aux_loss=False)
    )
    texturer, texturer_weights = network(
        gatys.load_network, lambda: vgg19(weights=None).features[: gatys.STYLE_LAYERS[-1] + 1]
    )
    segmentation, texture = SegmentationConfig(), TextureConfig()
    started = time.perf_counter()
    masks = fcn.foreground_masks(segmenter, images, segmentation.fcn_size)
    fcn_seconds = (time.perf_counter() - started) / len(images)
    masks |= ~masks.any(axis=(1, 2), keepdims=True)  # an empty mask would leave nothing to take a texture from
    started = time.perf_counter()
    seeds = list(range(len(images)))
    gatys.synthesize_textures(texturer, images, masks, seeds, texture.gatys_size, texture.gatys_steps, texture.gatys_lr)
    gatys_seconds = (time.perf_counter() - started) / len(images)
    device = str(resolve_device("auto"))
    return {
        "fcn": {"seconds_per_image": fcn_seconds, "weights": segmenter_weights, "device": device},
        "gatys": {"seconds_per_image": gatys_seconds, "weights": texturer_weights, "device": device},
    }

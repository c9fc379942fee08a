"""``gatys``: VGG-19 Gram-matrix texture synthesis (Gatys, Ecker & Bethge 2015), the reference study's method.

The source image is enlarged to ``gatys_size`` pixels and passed through VGG-19; at relu1_1, relu2_1,
relu3_1, relu4_1 and relu5_1 the Gram matrix of the feature maps is taken over the object's pixels only (each
position weighted by the mask's coverage at that layer's resolution), so the statistics describe the object's
surface and neither its background nor its outline. A new image, started from seeded noise around the
object's mean colour, is optimised with Adam for a fixed ``gatys_steps`` steps until its Gram matrices
(over all positions) match; it is then reduced back to 32x32. Loss per layer: squared Gram difference / (4 C^2)
as in the paper, with Grams normalised by the number of positions.

Images are processed in batches, on the GPU when there is one (else on one CPU thread per worker process, see
:mod:`libkd_bench.datasets_gen.pretrained_weights`). Every image's loss and Adam update are its own,
so an image's result does not depend on the other images of its batch beyond floating-point rounding, and
batches are fixed by the chunking, so results do not depend on the worker count. cuDNN runs in deterministic
mode. Initial noise comes from a ``torch.Generator`` seeded from each image's own numpy generator.

Weights: ``VGG19_Weights.IMAGENET1K_V1`` from the torch hub cache
(see :mod:`libkd_bench.datasets_gen.pretrained_weights`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from libkd_bench.core.torch_runtime import resolve_device, torch_threads
from libkd_bench.datasets_gen.pretrained_weights import imagenet_normalize, require_weights_file, weights_identity
from libkd_bench.datasets_gen.texture_synthesis.base import TextureConfig, register_synthesizer

STYLE_LAYERS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19().features
INIT_NOISE = 0.15  # half-width of the uniform noise around the object's mean colour, in [0, 1] units
BATCH_CPU, BATCH_GPU = 16, 256


def default_weights() -> Any:
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1


def network_identity() -> dict[str, Any]:
    return weights_identity(default_weights(), "gatys")


@functools.lru_cache(maxsize=1)
def load_network() -> Any:
    """VGG-19's convolutional layers up to relu5_1, pretrained, frozen, on the inference device (once per process)."""
    from torchvision.models import vgg19

    weights = default_weights()
    require_weights_file(weights, "gatys")
    features = vgg19(weights=weights).features[: STYLE_LAYERS[-1] + 1]
    return features.eval().requires_grad_(False).to(resolve_device("auto"))


def style_features(network: Any, x: Any) -> list[Any]:
    """Feature maps at ``STYLE_LAYERS`` of ImageNet-normalised ``x`` (b, 3, S, S) in [0, 1]."""
    h, outputs = imagenet_normalize(x), []
    for index, layer in enumerate(network):
        h = layer(h)
        if index in STYLE_LAYERS:
            outputs.append(h)
    return outputs


def gram_matrices(features: list[Any], masks: Any | None) -> list[Any]:
    """Per layer (b, C, C) Gram matrices, mask-weighted averages over positions (all positions when None)."""
    import torch.nn.functional as F

    grams = []
    for f in features:
        b, c, h, w = f.shape
        flat = f.reshape(b, c, h * w)
        if masks is None:
            grams.append(flat @ flat.transpose(1, 2) / (h * w))
        else:
            weight = F.interpolate(masks, size=(h, w), mode="area").reshape(b, 1, h * w)
            total = weight.sum(dim=2, keepdim=True).clamp_min(1e-6)
            grams.append((flat * weight) @ flat.transpose(1, 2) / total)
    return grams


def texture_loss(network: Any, x: Any, targets: list[Any]) -> Any:
    """Sum over images and layers of the squared Gram difference / (4 C^2)."""
    loss = 0.0
    for gram, target in zip(gram_matrices(style_features(network, x), None), targets, strict=True):
        loss = loss + ((gram - target) ** 2).sum() / (4 * gram.shape[1] ** 2)
    return loss


def synthesize_textures(
    network: Any, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int], size: int, steps: int, lr: float
) -> np.ndarray:
    """Gram-matched textures, uint8 (n, H, W, 3), of each image's foreground (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    device = next(network.parameters()).device
    batch = BATCH_GPU if device.type == "cuda" else BATCH_CPU
    n, height, width, _ = images.shape
    out = np.zeros_like(images)
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True), torch_threads(1):
        for start in range(0, n, batch):
            part = slice(start, start + batch)
            source = torch.from_numpy(np.ascontiguousarray(images[part])).permute(0, 3, 1, 2).float().div(255.0)
            mask = torch.from_numpy(np.ascontiguousarray(masks[part])).float()[:, None]
            with torch.no_grad():
                enlarged = F.interpolate(source.to(device), size=(size, size), mode="bilinear", align_corners=False)
                targets = gram_matrices(style_features(network, enlarged), mask.to(device))
            mean_colour = (source * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp_min(1.0)
            noise = torch.stack(
                [torch.rand((3, size, size), generator=torch.Generator().manual_seed(int(s))) for s in seeds[part]]
            )
            x = (mean_colour[:, :, None, None] + INIT_NOISE * (2 * noise - 1)).clamp(0, 1).to(device)
            x.requires_grad_(True)
            optimiser = torch.optim.Adam([x], lr=lr)
            for _ in range(steps):
                optimiser.zero_grad(set_to_none=True)
                texture_loss(network, x, targets).backward()
                optimiser.step()
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
            reduced = F.interpolate(x.detach(), size=(height, width), mode="area")
            out[part] = reduced.mul(255.0).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
    return out


@register_synthesizer("gatys")
class GatysSynthesizer:
    """VGG-19 Gram-matrix synthesis with pretrained weights from the torch hub cache (see the module docstring)."""

    def identity(self) -> dict[str, Any]:
        return network_identity()

    def synthesize(
        self, images: np.ndarray, masks: np.ndarray, rngs: Sequence[np.random.Generator], config: TextureConfig
    ) -> np.ndarray:
        seeds = [int(rng.integers(0, 2**63 - 1)) for rng in rngs]
        return synthesize_textures(
            load_network(), images, masks, seeds, config.gatys_size, config.gatys_steps, config.gatys_lr
        )

"""Batch augmentation on the device: random crops of zero-padded images and horizontal flips, vectorised.

An augmentation is a (B, 3) integer tensor of per-image parameters ``(row offset, column offset, flip)``: the
crop's top-left corner in the image padded by :data:`PAD` pixels, in [0, 2 * PAD], and 1 to mirror. Drawing
the parameters (from an injected generator) is apart from applying them, so a fixed view of the training set
(whose teacher logits are precomputed) is just a stored parameter table.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from libkd_bench.models.training.recipe import Augment

PAD = 4
SIDE = 32
CENTRE = (PAD, PAD, 0)


def draw_params(count: int, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Parameters for ``count`` images (on the CPU), drawn from ``generator``."""
    params = torch.tensor(CENTRE, dtype=torch.int64).repeat(count, 1)
    if augment is Augment.CROP_FLIP:
        params[:, :2] = torch.randint(0, 2 * PAD + 1, (count, 2), generator=generator)
    if augment in (Augment.CROP_FLIP, Augment.FLIP):
        params[:, 2] = torch.randint(0, 2, (count,), generator=generator)
    return params


def view_params(count: int, augment: Augment, rng: np.random.Generator) -> torch.Tensor:
    """Parameters of one fixed view of ``count`` images, drawn from a numpy generator."""
    params = np.tile(np.array(CENTRE, dtype=np.int64), (count, 1))
    if augment is Augment.CROP_FLIP:
        params[:, :2] = rng.integers(0, 2 * PAD + 1, size=(count, 2))
    if augment in (Augment.CROP_FLIP, Augment.FLIP):
        params[:, 2] = rng.integers(0, 2, size=count)
    return torch.from_numpy(params)


def apply_params(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Crop and flip uint8 (B, 32, 32, 3) images by ``params``; returns float (B, 3, 32, 32) in [0, 1].

    The result is channels-last in memory (a view of the (B, H, W, C) crop), which is what convolutions on a GPU
    prefer; ``params`` must be on the images' device.
    """
    padded = F.pad(images, (0, 0, PAD, PAD, PAD, PAD))
    steps = torch.arange(SIDE, device=images.device)
    rows = params[:, 0:1] + steps
    cols = torch.where(params[:, 2:3].bool(), params[:, 1:2] + SIDE - 1 - steps, params[:, 1:2] + steps)
    batch = torch.arange(len(images), device=images.device)[:, None, None]
    crops = padded[batch, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).float().div_(255.0)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 32, 32, 3) -> float (B, 3, 32, 32) in [0, 1], without augmentation."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)

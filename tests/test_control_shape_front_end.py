"""The shape control's figure/ground front end: connected regions against SciPy's, dark fills, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scene_sets import iou, object_scenes
from scipy import ndimage

from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.models.architectures.controls import (
    component_labels,
    figure_ground,
    fill_holes,
    largest_component,
)

EIGHT = np.ones((3, 3), dtype=bool)


def random_maps(n: int, density: float, seed: int) -> torch.Tensor:
    """Binary maps (n, 1, 32, 32) with many regions of all sizes and holes (closed specks of random noise)."""
    noise = (torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) < density).float()
    return -torch.nn.functional.max_pool2d(-torch.nn.functional.max_pool2d(noise, 3, 1, 1), 3, 1, 1)


def disc(radius: float = 9.0) -> np.ndarray:
    yy, xx = np.mgrid[:32, :32]
    return (yy - 15.5) ** 2 + (xx - 15.5) ** 2 <= radius**2


def normalised(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, 32, 32, 3) as the zoo model's front end sees them: CIFAR-10 normalisation, no clamp."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PRESET_STATS[Preset.CIFAR10])
    return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std


def maps_of(x: torch.Tensor) -> np.ndarray:
    return figure_ground(x)[:, 0].numpy() > 0.5


@pytest.mark.parametrize("density", [0.35, 0.5, 0.6, 0.7])
def test_component_labels_partition_maps_as_scipy_does(density: float) -> None:
    maps = random_maps(60, density, seed=int(density * 100))
    labels = component_labels(maps).view(60, 32, 32).numpy()
    for k in range(60):
        theirs, count = ndimage.label(maps[k, 0].numpy() > 0, structure=EIGHT)
        assert (labels[k] > 0).sum() == (theirs > 0).sum()
        pairs = {(int(a), int(b)) for a, b in zip(labels[k][theirs > 0], theirs[theirs > 0], strict=True)}
        assert len(pairs) == count == len({a for a, _ in pairs})  # one of ours per one of theirs, both ways


def test_largest_component_and_filled_holes_match_scipy() -> None:
    maps = random_maps(80, 0.55, seed=7)
    largest, filled = largest_component(maps)[:, 0].numpy() > 0, fill_holes(maps)[:, 0].numpy() > 0
    for k in range(80):
        region = maps[k, 0].numpy() > 0
        theirs, _ = ndimage.label(region, structure=EIGHT)
        sizes = np.bincount(theirs.ravel())[1:]
        if sizes.size and (sizes == sizes.max()).sum() == 1:  # a tie may be broken either way
            np.testing.assert_array_equal(largest[k], theirs == 1 + sizes.argmax())
        np.testing.assert_array_equal(filled[k], ndimage.binary_fill_holes(region, structure=EIGHT))


def test_a_ring_is_filled_and_a_u_is_not() -> None:
    maps = torch.zeros(2, 1, 32, 32)
    maps[:, :, 8:24, 8:24] = 1.0
    maps[0, :, 12:20, 12:20] = 0.0  # a hole
    maps[1, :, 12:24, 12:20] = 0.0  # open at the bottom
    filled = fill_holes(maps)
    assert filled[0].sum() == 16 * 16
    assert torch.equal(filled[1], maps[1])


def test_dark_textured_fills_on_black_are_figure() -> None:
    """Fills between 15/255 and 95/255, all darker than CIFAR-10's mean: the whole disc is found."""
    rng = np.random.default_rng(0)
    mask = disc()
    fills = rng.integers(15, 96, size=(8, 32, 32, 3), dtype=np.uint8)
    images = np.where(mask[None, ..., None], fills, 0).astype(np.uint8)
    assert (iou(maps_of(normalised(images)), mask[None]) >= 0.95).all()
    # the clamp to [0, 1] of normalised pixels that this front end no longer applies made them paper:
    assert (iou(maps_of(normalised(images).clamp(0.0, 1.0)), mask[None]) < 0.5).all()


def test_light_silhouettes_on_black_and_dark_on_white_are_found_exactly() -> None:
    mask = disc()
    light = np.repeat(np.where(mask, 255, 0).astype(np.uint8)[None, ..., None], 3, axis=-1)
    images = np.concatenate([light, 255 - light])
    np.testing.assert_array_equal(maps_of(normalised(images)), np.stack([mask, mask]))


def test_normalised_and_raw_pixels_split_alike() -> None:
    images, _ = object_scenes(20, seed=4)
    raw = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    assert (maps_of(raw) == maps_of(normalised(images))).mean() >= 0.99


def test_textured_objects_on_textured_backgrounds_are_found() -> None:
    images, masks = object_scenes(30, seed=5)
    assert np.median(iou(maps_of(normalised(images)), masks)) >= 0.8


def test_a_flat_image_has_no_figure() -> None:
    flat = np.full((3, 32, 32, 3), (0, 90, 200), dtype=np.uint8)
    assert not maps_of(normalised(flat)).any()

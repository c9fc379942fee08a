"""Foreground segmentation: GrabCut on scenes with a known object, the degenerate-mask fallback, FCN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import synthetic_images
from scene_sets import build, iou, object_scenes, split_of

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.segmentation import MaskSource, SegmentationConfig, segment_images, segmenter_names
from libkd_bench.datasets_gen.segmentation import fcn as fcn_backend
from libkd_bench.datasets_gen.segmentation.grabcut import grabcut_masks
from libkd_bench.datasets_gen.segmentation.masks import (
    centred_box,
    colour_distance_masks,
    ellipse_mask,
    largest_component,
    otsu_thresholds,
    repair_degenerate,
    tidy,
)

BOX = centred_box(32, 32, 1)


def rngs(n: int, seed: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng((seed, i)) for i in range(n)]


def test_grabcut_finds_the_drawn_object() -> None:
    images, truth = object_scenes(16, seed=0)
    result = segment_images("grabcut", images, rngs(16), SegmentationConfig())
    assert (result.sources == MaskSource.BACKEND).all()  # GrabCut itself, no fallback
    assert iou(result.masks, truth).min() > 0.8


def test_grabcut_is_seeded_per_image_and_ignores_opencv_global_state() -> None:
    import cv2

    images, _ = synthetic_images(12, seed=1)
    first = grabcut_masks(images, rngs(12), 1, 3, 1)
    assert (grabcut_masks(images, rngs(12, seed=1), 1, 3, 1) != first).any()  # the seed reaches k-means
    cv2.setRNGSeed(12345)
    cv2.randu(np.zeros((4, 4)), 0, 1)  # disturb OpenCV's own generator in between
    assert grabcut_masks(images, rngs(12), 1, 3, 1).tobytes() == first.tobytes()
    halves = [grabcut_masks(images[part], rngs(12)[part], 1, 3, 1) for part in (slice(0, 5), slice(5, 12))]
    assert np.concatenate(halves).tobytes() == first.tobytes()  # chunking does not matter


def test_masks_never_leave_the_box() -> None:
    images, _ = object_scenes(4, seed=2)
    masks = segment_images("grabcut", images, rngs(4), SegmentationConfig(box_margin=3)).masks
    assert not (masks & ~centred_box(32, 32, 3)).any()


def test_largest_component_and_filled_holes_by_hand() -> None:
    masks = np.zeros((2, 8, 8), bool)
    masks[0, 0:2, 0:2] = True  # 4 pixels
    masks[0, 4:7, 4:7] = True  # 9 pixels, with a hole
    masks[0, 5, 5] = False
    masks[1, 0, 0] = masks[1, 7, 7] = True  # a tie: the first in raster order wins
    kept = largest_component(masks)
    assert kept[0].sum() == 8
    assert not kept[0, 0, 0]
    assert kept[1].sum() == 1
    assert kept[1, 0, 0]
    tidied = tidy(masks)
    assert tidied[0].sum() == 9
    assert tidied[0, 5, 5]


def test_otsu_matches_scikit_image() -> None:
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(60, 12, (4, 300)), rng.normal(170, 20, (4, 200))], axis=1)
    values = np.clip(values, 0, 255).astype(np.uint8)
    ours = otsu_thresholds(values, np.ones(values.shape, bool))
    for row, t in zip(values, ours, strict=True):
        assert ((row > t) == (row > threshold_otsu(row))).all()


def test_an_empty_mask_falls_back_to_colour_distance() -> None:
    images, truth = object_scenes(4, seed=4)
    warmer = np.clip(images.astype(int) + np.array([90, -30, -60]), 0, 255).astype(np.uint8)
    images = np.where(truth[..., None], warmer, images)  # an object clearly apart in colour from its surroundings
    masks, sources = repair_degenerate(images, np.zeros_like(truth), BOX, 0.05, 0.97)
    assert (sources == MaskSource.COLOUR_DISTANCE).all()
    assert iou(masks, truth).min() > 0.7
    np.testing.assert_array_equal(masks, colour_distance_masks(images, BOX))


def test_a_mask_filling_the_box_is_degenerate_too() -> None:
    images, truth = object_scenes(2, seed=5)
    masks, sources = repair_degenerate(images, np.broadcast_to(BOX, truth.shape), BOX, 0.05, 0.97)
    assert (sources == MaskSource.COLOUR_DISTANCE).all()
    assert (masks.mean(axis=(1, 2)) < 0.6).all()


def test_a_flat_image_gets_the_centred_ellipse() -> None:
    flat = np.full((2, 32, 32, 3), 90, np.uint8)
    result = segment_images("grabcut", flat, rngs(2), SegmentationConfig())
    assert (result.sources == MaskSource.ELLIPSE).all()
    np.testing.assert_array_equal(result.masks[0], ellipse_mask(BOX))
    assert 0.3 < ellipse_mask(BOX).mean() < 0.4  # 0.7 x 0.7 x pi/4 of the 30x30 box


def test_a_good_mask_is_kept() -> None:
    images, truth = object_scenes(3, seed=6)
    masks, sources = repair_degenerate(images, truth, BOX, 0.05, 0.97)
    assert (sources == MaskSource.BACKEND).all()
    np.testing.assert_array_equal(masks, truth)


@pytest.mark.parametrize(("name", "value"), [("box_margin", 9), ("grabcut_upscale", 0), ("min_coverage", 0.9)])
def test_out_of_range_parameters_are_one_line_errors(name: str, value: Any) -> None:
    with pytest.raises(BenchError, match=name):
        SegmentationConfig(**{name: value})


def test_backends_are_registered_default_first() -> None:
    assert segmenter_names() == ["grabcut", "fcn"]


def bright_is_class_one() -> Any:
    """A stand-in network with a known answer: class 1 where the (normalised) red channel is above 0."""
    import torch

    class BrightIsClassOne(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            red = x[:, :1]
            return {"out": torch.cat([-red, red], dim=1)}

    return BrightIsClassOne()


def test_fcn_pre_and_post_processing_with_a_known_answer() -> None:
    images = np.zeros((3, 32, 32, 3), np.uint8)
    truth = np.zeros((3, 32, 32), bool)
    for k, (top, left, side) in enumerate([(4, 4, 10), (10, 12, 16), (0, 0, 32)]):
        images[k, top : top + side, left : left + side, 0] = 255
        truth[k, top : top + side, left : left + side] = True
    masks = fcn_backend.foreground_masks(bright_is_class_one(), images, size=128)
    np.testing.assert_array_equal(masks, truth)


@pytest.fixture
def random_fcn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The real fcn_resnet101 with seeded random weights instead of the pretrained file."""
    import torch
    from torchvision.models.segmentation import fcn_resnet101

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = fcn_resnet101(weights=None, weights_backbone=None, num_classes=21, aux_loss=False).eval()
    identity = {"weights": "random-init", "seed": 0}
    monkeypatch.setattr(fcn_backend, "load_network", lambda: network)
    monkeypatch.setattr(fcn_backend, "network_identity", lambda: identity)
    return identity


@pytest.mark.slow
def test_fcn_end_to_end_with_random_weights(random_fcn: dict[str, Any], tmp_path: Path) -> None:
    images, _ = object_scenes(4, seed=7)
    split = split_of(images)
    parameters = {"segmentation": {"fcn_size": 64, "gate": False}}  # random weights make no mask worth keeping
    store = build(split, tmp_path / "a", ["shape"], backends={"shape": "fcn"}, parameters=parameters)
    segmentation, shape = store.load("segmentation"), store.load("shape")
    assert segmentation.manifest.backend == shape.manifest.backend == "fcn"
    from libkd_bench.datasets_gen.segmentation.judge import judge_identity

    resources = {**random_fcn, "silhouette_judge": judge_identity()}
    assert segmentation.manifest.resources == resources
    assert shape.manifest.inputs["segmentation"]["resources"] == resources
    masks = np.asarray(segmentation.arrays["masks"])
    assert masks.shape == (4, 32, 32)
    assert masks.dtype == bool
    again = build(split, tmp_path / "b", ["shape"], backends={"shape": "fcn"}, parameters=parameters)
    assert again.load("shape").sha256() == shape.sha256()

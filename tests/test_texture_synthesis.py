"""Texture synthesis: quilting keeps the object's colours and loses its outline; Gatys runs and converges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scene_sets import build, iou, object_scenes, split_of

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.texture_synthesis import TextureConfig, synthesize, synthesizer_names
from libkd_bench.datasets_gen.texture_synthesis import gatys as gatys_backend
from libkd_bench.datasets_gen.texture_synthesis.quilting import boundary_cut, nth_true, quilt


def rngs(n: int, seed: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng((seed, i)) for i in range(n)]


def quilted(images: np.ndarray, masks: np.ndarray, seed: int = 0) -> np.ndarray:
    return synthesize("quilt", images, masks, rngs(len(images), seed), TextureConfig())


def test_quilted_textures_keep_the_foreground_colour_statistics() -> None:
    images, masks = object_scenes(8, seed=10)
    textures = quilted(images, masks).astype(np.float64)
    for image, mask, texture in zip(images.astype(np.float64), masks, textures, strict=True):
        foreground = image[mask]
        np.testing.assert_allclose(texture.reshape(-1, 3).mean(axis=0), foreground.mean(axis=0), atol=8.0)
        np.testing.assert_allclose(texture.reshape(-1, 3).std(axis=0), foreground.std(axis=0), rtol=0.25)


def test_quilting_copies_only_foreground_pixels() -> None:
    """Where a mask holds enough whole patches, every pixel of the texture is a pixel of the object."""
    from numpy.lib.stride_tricks import sliding_window_view

    from libkd_bench.datasets_gen.texture_synthesis.quilting import MIN_CANDIDATES

    images, masks = object_scenes(8, seed=11)
    whole_patches = sliding_window_view(masks, (8, 8), axis=(1, 2)).all(axis=(-1, -2)).sum(axis=(1, 2))
    roomy = whole_patches >= MIN_CANDIDATES
    assert roomy.sum() >= 5
    for image, mask, texture in zip(images[roomy], masks[roomy], quilted(images[roomy], masks[roomy]), strict=True):
        palette = {tuple(p) for p in image[mask]}
        assert {tuple(p) for p in texture.reshape(-1, 3)} <= palette


def test_quilted_textures_do_not_reproduce_the_silhouette() -> None:
    """A colour classifier that finds the object in the image finds it everywhere in the texture.

    Each pixel is classed as object or background by the nearer of the two class means of the source image.
    On the source, that map overlaps the true mask well; on the texture it marks (nearly) every pixel as
    object, so its IoU with the mask falls to the mask's coverage: the texture is made of the object's
    colours and carries no outline.
    """
    images, masks = object_scenes(8, seed=12)
    textures = quilted(images, masks).astype(np.float64)
    for image, mask, texture in zip(images.astype(np.float64), masks, textures, strict=True):
        inside, outside = image[mask].mean(axis=0), image[~mask].mean(axis=0)

        def looks_inside(picture: np.ndarray, inside: np.ndarray = inside, outside: np.ndarray = outside) -> np.ndarray:
            return ((picture - inside) ** 2).sum(-1) < ((picture - outside) ** 2).sum(-1)

        assert looks_inside(texture).mean() >= looks_inside(image)[mask].mean() - 0.05
        assert iou(looks_inside(texture), mask) <= mask.mean() + 0.05
        assert iou(looks_inside(image), mask) - iou(looks_inside(texture), mask) > 0.25
        brightness = texture.mean(axis=-1)
        assert abs(brightness[mask].mean() - brightness[~mask].mean()) < 0.25 * abs(inside.mean() - outside.mean())


def test_quilting_is_deterministic_and_independent_of_batching() -> None:
    images, masks = object_scenes(6, seed=13)
    whole = quilted(images, masks)
    parts = [synthesize("quilt", images[p], masks[p], rngs(6)[p], TextureConfig()) for p in (slice(0, 2), slice(2, 6))]
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    assert quilted(images, masks).tobytes() == whole.tobytes()
    assert quilted(images, masks, seed=1).tobytes() != whole.tobytes()


def test_a_thin_mask_still_gives_a_texture() -> None:
    images, _ = object_scenes(2, seed=14)
    masks = np.zeros((2, 32, 32), bool)
    masks[:, 15:17, 4:28] = True  # two pixels high: no whole 8x8 patch fits
    textures = quilt(images, masks, rngs(2), 8, 3, 0.5)
    assert textures.shape == images.shape


def test_boundary_cut_follows_the_cheap_path() -> None:
    errors = np.full((1, 5, 3), 9.0)
    path = [2, 1, 1, 0, 1]  # one column per row, moving at most one column
    errors[0, np.arange(5), path] = 0.0
    show = boundary_cut(errors, 6)
    expected = np.arange(6)[None, :] >= np.array(path)[:, None]
    np.testing.assert_array_equal(show[0], expected)


def test_nth_true_by_hand() -> None:
    flags = np.array([[False, True, False, True, True], [True, False, False, False, False]])
    assert nth_true(flags, np.array([0.0, 0.99])).tolist() == [1, 0]
    assert nth_true(flags, np.array([0.5, 0.0])).tolist() == [3, 0]
    assert nth_true(flags, np.array([0.9999, 0.5])).tolist() == [4, 0]


@pytest.mark.parametrize(("name", "value"), [("patch_size", 2), ("overlap", 5), ("gatys_steps", 0), ("gatys_lr", 0)])
def test_out_of_range_parameters_are_one_line_errors(name: str, value: Any) -> None:
    with pytest.raises(BenchError, match=name):
        TextureConfig(**{name: value})


def test_backends_are_registered_default_first() -> None:
    assert synthesizer_names() == ["quilt", "gatys"]


@pytest.fixture(scope="module")
def random_vgg() -> Any:
    """VGG-19's convolutional layers with seeded random weights (the real architecture, no weights file)."""
    import torch
    from torchvision.models import vgg19

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        features = vgg19(weights=None).features[: gatys_backend.STYLE_LAYERS[-1] + 1]
    return features.eval().requires_grad_(False)


def test_masked_gram_matrices_by_hand() -> None:
    import torch

    features = [torch.zeros(1, 2, 4, 4)]
    features[0][0, 0, :, :2] = 1.0  # channel 0 is 1 on the left half, channel 1 is 0 everywhere
    left = torch.zeros(1, 1, 4, 4)
    left[..., :2] = 1.0
    (masked,) = gatys_backend.gram_matrices(features, left)
    (plain,) = gatys_backend.gram_matrices(features, None)
    assert masked[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # statistics of the left half only
    assert plain[0].tolist() == [[0.5, 0.0], [0.0, 0.0]]


def test_gatys_reduces_the_texture_loss(random_vgg: Any) -> None:
    import torch
    import torch.nn.functional as F

    images, masks = object_scenes(2, seed=15)
    source = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    source = F.interpolate(source, size=(32, 32), mode="bilinear", align_corners=False)
    mask = torch.from_numpy(masks).float()[:, None]
    targets = gatys_backend.gram_matrices(gatys_backend.style_features(random_vgg, source), mask)
    start = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    before = float(gatys_backend.texture_loss(random_vgg, start, targets))
    after_textures = gatys_backend.synthesize_textures(random_vgg, images, masks, [0, 1], 32, 25, 0.03)
    after = torch.from_numpy(after_textures).permute(0, 3, 1, 2).float().div(255.0)
    assert float(gatys_backend.texture_loss(random_vgg, after, targets)) < 0.5 * before


def test_gatys_end_to_end_with_random_weights(random_vgg: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    identity = {"weights": "random-init", "seed": 0}
    monkeypatch.setattr(gatys_backend, "load_network", lambda: random_vgg)
    monkeypatch.setattr(gatys_backend, "network_identity", lambda: identity)
    images, _ = object_scenes(3, seed=16)
    split = split_of(images)
    parameters = {"texture": {"gatys_steps": 2, "gatys_size": 32}}
    names = ["texture-overlay", "cue-conflict"]
    store = build(split, tmp_path / "a", names, backends={"texture": "gatys"}, parameters=parameters)
    texture = store.load("texture")
    assert texture.manifest.backend == "gatys"
    assert texture.manifest.resources == identity
    assert store.load("cue-conflict").manifest.backend == "gatys"  # shares the texture backend
    assert store.load("cue-conflict").manifest.inputs["texture"]["resources"] == identity
    assert texture.images.shape == (1, 3, 32, 32, 3)
    again = build(split, tmp_path / "b", names, backends={"texture": "gatys"}, parameters=parameters)
    for name in ["texture", *names]:
        assert again.load(name).sha256() == store.load(name).sha256(), name

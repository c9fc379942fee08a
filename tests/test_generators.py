"""Properties every registered generator keeps, and the known answers of the foundation sets."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_images
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from libkd_bench.datasets_gen.build import CHUNK_SIZE, build_sets, plan_set
from libkd_bench.datasets_gen.generators.patch_noise import noise_patch
from libkd_bench.datasets_gen.generators.scramble import tiles_of
from libkd_bench.datasets_gen.generators.superpixel import fill_segments_with_mean
from libkd_bench.datasets_gen.registry import (
    Batch,
    default_set_names,
    get_generator,
    list_generators,
    with_prerequisites,
)
from libkd_bench.datasets_gen.seeding import SetSeed
from libkd_bench.datasets_gen.sources import SourceInfo, SourceKind, Split, split_sha256
from libkd_bench.datasets_gen.store import SetStore

# Every default set, and one set of the opt-in families (the corruptions: tests/test_corruptions.py covers each).
# External sets (CIFAR-10G) are not made from the clean split; tests/test_cifar10g.py covers them.
OPT_IN_SETS = sorted(
    name for name in set(list_generators()) - set(default_set_names()) if get_generator(name).external is None
)
ALL_SETS = [*default_set_names(), *OPT_IN_SETS[:1]]
images_strategy = st.integers(1, 12).flatmap(
    lambda n: arrays(np.uint8, (n, 32, 32, 3), elements=st.integers(0, 255), fill=st.integers(0, 255))
)
PROPERTY_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_split(images: np.ndarray, labels: np.ndarray | None = None) -> Split:
    labels = np.arange(len(images), dtype=np.int64) % 10 if labels is None else labels
    info = SourceInfo(SourceKind.NPZ, "memory", split_sha256(images, labels), len(images))
    return Split(images, labels, info)


def build_all(
    split: Split, root: Path, names: list[str], seed: int = 0, workers: int = 1, gate: bool = False
) -> SetStore:
    """Build ``names``; the segmentation gate is off unless asked for, so random images keep every row. Segmentation
    (GrabCut, the slow part) is built only for the sets that need it."""
    store = SetStore(root)
    needed = set(with_prerequisites(names))
    plans = [plan_set("segmentation", seed, {"gate": gate})] if "segmentation" in needed - set(names) else []
    plans += [plan_set(n, seed, {"gate": gate} if n == "segmentation" else None) for n in names]
    build_sets(plans, split, store, workers=workers, progress=False)
    return store


def make_batch(images: np.ndarray, level: int = 1, seed: int = 0, name: str = "x") -> Batch:
    labels = np.arange(len(images), dtype=np.int64) % 10
    return Batch(images, labels, np.arange(len(images)), level, SetSeed(seed, name))


@pytest.mark.parametrize("name", ALL_SETS)
@PROPERTY_SETTINGS
@given(images=images_strategy)
def test_shape_dtype_labels_and_determinism(name: str, images: np.ndarray) -> None:
    assume(name != "cue-conflict" or len(images) > 1)  # one image is one class: no conflict to draw
    entry = get_generator(name)
    split = make_split(images)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        stored = build_all(split, Path(first), [name]).load(name)
        assert stored.images.shape == (len(entry.levels), len(images), 32, 32, 3)
        assert stored.images.dtype == np.uint8
        np.testing.assert_array_equal(stored.labels, split.labels)
        again = build_all(split, Path(second), [name]).load(name)
        for array in stored.manifest.arrays:
            assert stored.manifest.arrays[array].sha256 == again.manifest.arrays[array].sha256


@pytest.mark.slow
def test_every_set_is_identical_for_any_worker_count() -> None:
    images, labels = synthetic_images(CHUNK_SIZE + 40, seed=5)
    split = make_split(images, labels)
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        serial = build_all(split, Path(one), ALL_SETS, seed=11, workers=1)
        parallel = build_all(split, Path(two), ALL_SETS, seed=11, workers=2)
        for name in ALL_SETS:
            a, b = serial.load(name).manifest, parallel.load(name).manifest
            assert {k: r.sha256 for k, r in a.arrays.items()} == {k: r.sha256 for k, r in b.arrays.items()}, name


def test_limit_reproduces_the_images_of_the_full_run(tmp_path: Path) -> None:
    """Per-image seeds: the first 300 images of a 300-image run equal those of a 340-image run."""
    images, labels = synthetic_images(340, seed=2)
    full = build_all(make_split(images, labels), tmp_path / "full", ["scramble"], seed=4).load("scramble")
    part = build_all(make_split(images[:300], labels[:300]), tmp_path / "part", ["scramble"], seed=4)
    np.testing.assert_array_equal(part.load("scramble").images, full.images[:, :300])


def test_a_different_seed_changes_the_set(tmp_path: Path) -> None:
    images, labels = synthetic_images(20)
    a = build_all(make_split(images, labels), tmp_path / "a", ["scramble"], seed=0).load("scramble")
    b = build_all(make_split(images, labels), tmp_path / "b", ["scramble"], seed=1).load("scramble")
    assert not np.array_equal(a.images, b.images)


@PROPERTY_SETTINGS
@given(images=images_strategy)
def test_scramble_with_one_tile_is_the_identity(images: np.ndarray) -> None:
    derived = get_generator("scramble").fn(make_batch(images), 1)
    assert derived.images.tobytes() == images.tobytes()


@PROPERTY_SETTINGS
@given(images=images_strategy, level=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_scramble_keeps_the_multiset_of_tiles_and_never_the_order(images: np.ndarray, level: int, seed: int) -> None:
    grid = get_generator("scramble").severities[level - 1]
    out = get_generator("scramble").fn(make_batch(images, level, seed), grid).images
    before, after = tiles_of(images, grid), tiles_of(out, grid)
    for tiles_in, tiles_out in zip(before, after, strict=True):
        assert sorted(t.tobytes() for t in tiles_in) == sorted(t.tobytes() for t in tiles_out)
        distinct = len({t.tobytes() for t in tiles_in}) == len(tiles_in)
        if distinct:  # with distinct tiles, a non-identity permutation always shows
            assert tiles_in.tobytes() != tiles_out.tobytes()


@PROPERTY_SETTINGS
@given(images=images_strategy)
def test_patch_noise_with_zero_sigma_is_the_identity(images: np.ndarray) -> None:
    derived = get_generator("patch-noise").fn(make_batch(images), 0.0, patch_size=8)
    assert derived.images.tobytes() == images.tobytes()


def test_patch_noise_is_one_fixed_pattern_at_one_fixed_place() -> None:
    grey = np.full((5, 32, 32, 3), 128, np.uint8)
    batch = make_batch(grey, seed=9, name="patch-noise")
    out = get_generator("patch-noise").fn(batch, 0.05, patch_size=8).images.astype(int) - 128
    row, col, pattern = noise_patch(batch.set_rng(), 8)
    changed = np.argwhere(np.any(out != 0, axis=(0, 3)))
    assert changed.min(axis=0).tolist() >= [row, col]
    assert changed.max(axis=0).tolist() <= [row + 7, col + 7]
    for image in out[1:]:
        np.testing.assert_array_equal(image, out[0])  # the same noise pattern in every image
    expected = np.rint(255 * 0.05 * pattern)
    np.testing.assert_array_equal(out[0, row : row + 8, col : col + 8], expected)


def test_fill_segments_with_mean_hand_computed() -> None:
    image = np.zeros((1, 2, 2, 3), np.uint8)
    image[0, :, :, 0] = [[10, 20], [31, 100]]
    segments = np.array([[[0, 0], [0, 1]]])
    out = fill_segments_with_mean(image, segments)
    assert out[0, :, :, 0].tolist() == [[20, 20], [20, 100]]  # mean of 10, 20, 31 is 20.33 -> 20


@pytest.mark.parametrize("n_segments", [256, 16])
def test_superpixel_leaves_flat_regions_flat(n_segments: int) -> None:
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, 16:] = (200, 40, 90)
    out = get_generator("superpixel").fn(make_batch(image), n_segments, compactness=10.0).images
    np.testing.assert_array_equal(out, image)


def test_superpixel_colours_are_at_most_one_per_segment() -> None:
    images, _ = synthetic_images(4, seed=1)
    out = get_generator("superpixel").fn(make_batch(images), 16, compactness=10.0).images
    for image in out:
        assert len(np.unique(image.reshape(-1, 3), axis=0)) <= 16 * 2  # SLIC may exceed the target slightly

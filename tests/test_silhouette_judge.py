"""The silhouette judge and the ``shape-readable`` set it gates: framing, weights check, thresholds, training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scene_sets import SHAPES, build, object_mask, object_scenes, split_of

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.generators.shape import FRAME_MARGIN, SUPERSAMPLE, SilhouetteConfig
from libkd_bench.datasets_gen.segmentation.judge import (
    JUDGE_AREA,
    JUDGE_FILE,
    JUDGE_MARGIN,
    JUDGE_SHA256,
    JUDGE_SUPERSAMPLE,
    READABLE_SHARE,
    class_probabilities,
    class_thresholds,
    judge_inputs,
    load_judge,
    readability,
)
from libkd_bench.datasets_gen.segmentation.judge_training import train_judge
from libkd_bench.datasets_gen.store import SetStore


@pytest.fixture(scope="module")
def scene_store(tmp_path_factory: pytest.TempPathFactory) -> SetStore:
    images, _ = object_scenes(60, seed=21)
    return build(split_of(images), tmp_path_factory.mktemp("sets"), ["shape", "shape-readable"], seed=4)


def test_the_judge_sees_the_shape_sets_silhouettes(scene_store: SetStore) -> None:
    assert (SilhouetteConfig().area, FRAME_MARGIN, SUPERSAMPLE) == (JUDGE_AREA, JUDGE_MARGIN, JUDGE_SUPERSAMPLE)
    segmentation = scene_store.load("segmentation")
    kept = np.asarray(segmentation.arrays["kept"])
    seen = judge_inputs(np.asarray(segmentation.arrays["masks"])[kept])[:, 0]
    drawn = np.asarray(scene_store.load("shape").images[0])[..., 0] / 255
    np.testing.assert_array_equal(seen, drawn.astype(np.float32))


def test_readable_images_are_kept_images_at_their_class_threshold(scene_store: SetStore) -> None:
    arrays = scene_store.load("segmentation").arrays
    kept, readable = np.asarray(arrays["kept"]), np.asarray(arrays["readable"])
    score, labels = np.asarray(arrays["judge_score"]), np.asarray(arrays["labels"])
    _, thresholds = load_judge()
    assert not (readable & ~kept).any()
    assert np.isnan(score[~kept]).all()
    assert (score[kept] >= 0).all()
    np.testing.assert_array_equal(readable[kept], score[kept] >= thresholds[labels[kept]])
    stored = np.asarray(scene_store.load("shape-readable").arrays["source_index"])
    np.testing.assert_array_equal(stored, np.flatnonzero(readable))


def test_thresholds_keep_the_share_of_each_class() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    thresholds = class_thresholds(scores, labels, share=1 / 3)
    assert thresholds[0] == 0.8
    assert thresholds[1] == 0.3
    assert (thresholds[2:] == 1.0).all()  # a class without images keeps nothing it never saw


def test_an_altered_or_missing_judge_is_one_line_naming_the_file(tmp_path: Path) -> None:
    altered = tmp_path / JUDGE_FILE.name
    shutil.copy(JUDGE_FILE, altered)
    data = bytearray(altered.read_bytes())
    data[-1] ^= 1
    altered.write_bytes(bytes(data))
    with pytest.raises(BenchError, match=r"silhouette judge .* has sha256 .* expected") as error:
        load_judge(altered, JUDGE_SHA256)
    assert "\n" not in str(error.value)
    with pytest.raises(BenchError, match="is missing"):
        load_judge(tmp_path / "absent.safetensors", JUDGE_SHA256)


def test_a_trained_judge_tells_shapes_apart_from_their_silhouettes() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(SHAPES)), 80)
    masks = np.stack([object_mask(SHAPES[label], rng) for label in labels])
    inputs = judge_inputs(masks)
    train = np.arange(len(labels)) % 4 != 0
    network = train_judge(inputs[train], labels[train], epochs=20)
    predicted = class_probabilities(network, inputs[~train]).argmax(1)
    # chance 0.25; measured 0.95 (0.25 when the training labels are shuffled: the outline is what it learns)
    assert (predicted == labels[~train]).mean() > 0.8


@pytest.mark.slow
def test_the_shipped_judge_reads_real_silhouettes_and_keeps_a_third_per_class(
    shared_test_npz: Path, tmp_path: Path
) -> None:
    from libkd_bench.datasets_gen.sources import load_source

    split = load_source(f"npz:{shared_test_npz}", limit=500)
    store = build(split, tmp_path, ["segmentation"])
    arrays = store.load("segmentation").arrays
    kept, labels = np.asarray(arrays["kept"]), np.asarray(arrays["labels"])
    network, _ = load_judge()
    probabilities = class_probabilities(network, judge_inputs(np.asarray(arrays["masks"])[kept]))
    assert (probabilities.argmax(1) == labels[kept]).mean() > 0.3  # chance 0.1; measured 0.44 on the 10,000
    _score, readable = readability(np.asarray(arrays["masks"])[kept], labels[kept])
    np.testing.assert_array_equal(readable, np.asarray(arrays["readable"])[kept])
    assert abs(readable.mean() - READABLE_SHARE) < 0.1


def test_training_without_a_segmentation_set_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from libkd_bench.datasets_gen.segmentation.judge_training import main

    out = tmp_path / "judge.safetensors"
    assert main([str(tmp_path / "empty-store"), str(out)]) == 2
    error = capsys.readouterr().err
    assert "set 'segmentation' not found" in error
    assert error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_training_into_an_unwritable_place_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from libkd_bench.datasets_gen.segmentation.judge_training import main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([str(tmp_path / "store"), str(blocker / "judge.safetensors")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err

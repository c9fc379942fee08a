"""The segmentation gate against masks judged by eye (tests/fixtures/mask_judgements.json and .png)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from libkd_bench.datasets_gen.seeding import SetSeed
from libkd_bench.datasets_gen.segmentation import SegmentationConfig, segment_images
from libkd_bench.datasets_gen.segmentation.quality import gate, intersection_over_union, mask_agreement

FIXTURE = Path(__file__).parent / "fixtures" / "mask_judgements.json"


def test_agreement_is_the_mean_iou_with_the_reruns() -> None:
    a = np.zeros((2, 4, 4), bool)
    a[0, :2], a[1] = True, True
    b = a.copy()
    b[0, 0] = False  # 4 of 8 pixels remain
    np.testing.assert_allclose(intersection_over_union(a, b), [0.5, 1.0])
    np.testing.assert_allclose(mask_agreement(a, [a, b]), [0.75, 1.0])
    np.testing.assert_array_equal(mask_agreement(a, []), [1.0, 1.0])


def test_gate_needs_every_condition() -> None:
    masks = np.zeros((4, 10, 10), bool)
    masks[:, 2:6, 2:6] = True  # area 0.16
    masks[3] = True  # area 1.0
    sources = np.array([0, 1, 0, 0])
    agreement = np.array([0.9, 0.9, 0.5, 0.9], np.float32)
    np.testing.assert_array_equal(gate(masks, sources, agreement, 0.6, 0.06, 0.7), [True, False, False, False])


@pytest.mark.shared
def test_reruns_are_made_only_for_masks_of_the_right_size_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flat image (no mask of its own: the fallback's) and a frame-filling object are refused whatever their
    agreement, so the backend is not run again on them; their agreement is NaN, the other masks are unchanged."""
    from scene_sets import object_scenes

    from libkd_bench.datasets_gen.segmentation.grabcut import GrabCutSegmenter

    scenes, _ = object_scenes(6, seed=4)
    flat = np.full((1, 32, 32, 3), 120, np.uint8)
    filling = scenes[:1].copy()
    filling[0, 1:31, 1:31] = scenes[0, 12:14, 12:14].mean(axis=(0, 1)).astype(np.uint8)
    images = np.concatenate([scenes, flat, filling])
    seen: list[int] = []
    original = GrabCutSegmenter.reruns

    def counted(self: GrabCutSegmenter, batch: np.ndarray, rngs: list, config: SegmentationConfig) -> list:
        seen.append(len(batch))
        return original(self, batch, rngs, config)

    monkeypatch.setattr(GrabCutSegmenter, "reruns", counted)
    rngs = SetSeed(0, "segmentation").image_rngs(1, np.arange(len(images)))
    result = segment_images("grabcut", images, rngs, SegmentationConfig())
    config = SegmentationConfig()
    area = result.masks.mean(axis=(1, 2))
    size_and_source = (result.sources == 0) & (area >= config.gate_min_area) & (area <= config.gate_max_area)
    assert not size_and_source[6:].any()
    assert size_and_source[:6].all()
    assert seen == [6]
    np.testing.assert_array_equal(np.isnan(result.agreement), ~size_and_source)
    alone = segment_images("grabcut", scenes, SetSeed(0, "segmentation").image_rngs(1, np.arange(6)), config)
    np.testing.assert_array_equal(alone.agreement, result.agreement[:6])
    np.testing.assert_array_equal(alone.masks, result.masks[:6])


def test_gate_raises_the_share_of_plausible_masks(shared_test_npz: Path) -> None:
    from libkd_bench.datasets_gen.sources import load_source

    doc = json.loads(FIXTURE.read_text())
    split = load_source(f"npz:{shared_test_npz}", limit=doc["limit"])
    index = np.array([j["split_index"] for j in doc["judgements"]])
    plausible = np.array([j["plausible"] for j in doc["judgements"]])
    for j, image in zip(doc["judgements"], split.images[index], strict=True):
        assert hashlib.sha256(image.tobytes()).hexdigest()[:16] == j["image_sha256"]
    rngs = SetSeed(doc["seed"], "segmentation").image_rngs(1, index)
    kept = segment_images("grabcut", split.images[index], rngs, SegmentationConfig()).kept
    precision = plausible[kept].mean()
    recall = kept[plausible].mean()
    # By eye: 71 of the 100 masks are plausible; the gate keeps 68 %, 87 % of them plausible, 77 % of the plausible.
    assert plausible.mean() == pytest.approx(0.71)
    assert precision >= 0.85
    assert recall >= 0.7


JUDGEMENTS = Path(__file__).resolve().parents[1] / "results" / "judgements"
HELD_OUT = ("silhouettes-heldout.csv", "silhouettes-heldout-2.csv")


def held_out_rows(name: str) -> list[dict[str, str]]:
    import csv

    return list(csv.DictReader((JUDGEMENTS / name).read_text().splitlines()))


@pytest.mark.shared
@pytest.mark.parametrize("sheet", HELD_OUT)
def test_the_held_out_silhouette_judgements_are_of_kept_images_outside_the_tuning_sample(
    shared_test_npz: Path, sheet: str
) -> None:
    """results/judgements/: 100 kept silhouettes of within-class ranks 100-199, none of them among the images
    the gate was tuned on nor judged on an earlier sheet, each the image it names (hash), each kept by today's
    gate."""
    from libkd_bench.datasets_gen.sources import load_source

    rows = held_out_rows(sheet)
    tuned = {j["split_index"] for j in json.loads(FIXTURE.read_text())["judgements"]}
    earlier = {int(row["split_index"]) for name in HELD_OUT[: HELD_OUT.index(sheet)] for row in held_out_rows(name)}
    index = np.array([int(row["split_index"]) for row in rows])
    assert len(rows) == 100
    assert not set(index.tolist()) & (tuned | earlier)
    assert all(100 <= int(row["class_rank"]) < 200 for row in rows)
    assert {row["judgement"] for row in rows} <= {"recognisable", "blob", "wrong"}
    split = load_source(f"npz:{shared_test_npz}", limit=2000)
    for row, image, label in zip(rows, split.images[index], split.labels[index], strict=True):
        assert hashlib.sha256(image.tobytes()).hexdigest()[:16] == row["image_sha256"]
        assert int(row["label"]) == int(label)
    rngs = SetSeed(0, "segmentation").image_rngs(1, index)
    assert segment_images("grabcut", split.images[index], rngs, SegmentationConfig()).kept.all()


@pytest.mark.shared
def test_readable_silhouettes_of_the_held_out_sheets_are_recognisable_more_often(shared_test_npz: Path) -> None:
    """The silhouette judge never saw these judgements (made before it existed) nor these images (it trained on the
    training split): the third of each class it calls readable must hold the outlines a person recognises."""
    from libkd_bench.datasets_gen.segmentation.judge import readability
    from libkd_bench.datasets_gen.sources import load_source

    rows = [row for sheet in HELD_OUT for row in held_out_rows(sheet)]
    index = np.array([int(row["split_index"]) for row in rows])
    recognisable = np.array([row["judgement"] == "recognisable" for row in rows])
    split = load_source(f"npz:{shared_test_npz}", limit=2000)
    rngs = SetSeed(0, "segmentation").image_rngs(1, index)
    masks = segment_images("grabcut", split.images[index], rngs, SegmentationConfig()).masks
    _, readable = readability(masks, split.labels[index])
    # Measured: 78 of the 200 readable, 28 of them recognisable (36 %); 11 of the other 122 (9 %).
    assert recognisable[readable].mean() >= 0.3
    assert recognisable[readable].mean() >= 2 * recognisable[~readable].mean()

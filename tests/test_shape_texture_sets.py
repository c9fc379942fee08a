"""The shape, texture and cue-conflict sets: what they store, how they share one segmentation, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from scene_sets import build, object_scenes, split_of

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.build import plan_sets
from libkd_bench.datasets_gen.generators.cue_conflict import CueConflictConfig, conflict_partners, lift_fills
from libkd_bench.datasets_gen.generators.shape import (
    FRAME_MARGIN,
    SUPERSAMPLE,
    SilhouetteConfig,
    edge_density,
    silhouettes,
)
from libkd_bench.datasets_gen.segmentation.framing import frame_coverage, frame_masks, framing_transforms
from libkd_bench.datasets_gen.segmentation.masks import grow
from libkd_bench.datasets_gen.store import SetStore
from libkd_bench.datasets_gen.visibility import figure_ground_contrast, fill_luminance

OUR_SETS = ["segmentation", "shape", "shape-edges", "texture", "texture-overlay", "cue-conflict"]


@pytest.fixture(scope="module")
def scene_store(tmp_path_factory: pytest.TempPathFactory) -> SetStore:
    """Every set of this family built from 40 object scenes, 4 per class."""
    images, _ = object_scenes(40, seed=20)
    return build(split_of(images), tmp_path_factory.mktemp("sets"), OUR_SETS[1:], seed=3)


def arrays(store: SetStore, name: str, array: str = "images") -> np.ndarray:
    values = np.asarray(store.load(name).arrays[array])
    return values[0] if array == "images" else values


def kept_rows(store: SetStore) -> np.ndarray:
    return np.flatnonzero(arrays(store, "segmentation", "kept"))


def framed(store: SetStore) -> np.ndarray:
    masks = arrays(store, "segmentation", "masks")[kept_rows(store)]
    area = SilhouetteConfig().area
    return frame_masks(masks, framing_transforms(masks, area, FRAME_MARGIN), area)


def framed_coverage(store: SetStore) -> np.ndarray:
    masks = arrays(store, "segmentation", "masks")[kept_rows(store)]
    area = SilhouetteConfig().area
    return frame_coverage(masks, framing_transforms(masks, area, FRAME_MARGIN), area, SUPERSAMPLE)


def test_gated_sets_hold_the_kept_images_and_say_which(scene_store: SetStore) -> None:
    kept = kept_rows(scene_store)
    assert 0 < len(kept) < 40  # the synthetic scenes include masks the gate refuses
    clean_labels = np.asarray(scene_store.load("clean").labels)
    for name in OUR_SETS[1:]:
        stored = scene_store.load(name)
        np.testing.assert_array_equal(stored.arrays["source_index"], kept)
        np.testing.assert_array_equal(stored.labels, clean_labels[kept])
        subset = stored.manifest.subset
        assert subset["indices"] == kept.tolist()
        assert (subset["n"], subset["n_source"]) == (len(kept), 40)
        rates = subset["keep_rate_per_class"]
        assert sum(rate * 4 for rate in rates.values()) == pytest.approx(len(kept))  # 4 images per class


def test_gate_keeps_stable_masks_of_a_plausible_size(scene_store: SetStore) -> None:
    seg = scene_store.load("segmentation")
    kept, agreement = np.asarray(seg.arrays["kept"]), np.asarray(seg.arrays["mask_agreement"])
    area = np.asarray(seg.arrays["masks"]).mean(axis=(1, 2))
    params = seg.manifest.parameters
    expected = (agreement >= params["gate_min_agreement"]) & (area >= params["gate_min_area"])
    size_and_source = (area >= params["gate_min_area"]) & (area <= params["gate_max_area"])
    size_and_source &= np.asarray(seg.arrays["mask_source"]) == 0
    expected &= size_and_source
    np.testing.assert_array_equal(kept, expected)
    np.testing.assert_array_equal(np.isnan(agreement), ~size_and_source)  # see test_mask_gate.py


def test_framing_centres_every_silhouette_at_one_area() -> None:
    rng = np.random.default_rng(0)
    masks = np.zeros((20, 32, 32), bool)
    for k in range(20):
        h, w = rng.integers(4, 14, size=2)
        y, x = rng.integers(1, 31 - h), rng.integers(1, 31 - w)
        masks[k, y : y + h, x : x + w] = True
    out = frame_masks(masks, framing_transforms(masks, 0.3, 1))
    area = out.mean(axis=(1, 2))
    assert np.abs(area - 0.3).max() < 0.06  # raw areas ranged 0.016..0.19
    # with the area given, every silhouette has the same ink to the pixel, so ink count tells no class
    exact = frame_masks(masks, framing_transforms(masks, 0.3, 1), 0.3)
    np.testing.assert_array_equal(exact.sum(axis=(1, 2)), round(0.3 * 32 * 32))
    assert (exact & out).sum() >= 0.95 * out.sum()  # the same silhouettes, a few boundary pixels apart
    for k in range(20):
        r, c = np.flatnonzero(out[k].any(axis=1)), np.flatnonzero(out[k].any(axis=0))
        assert abs((r.min() + r.max()) / 2 - 15.5) <= 1
        assert abs((c.min() + c.max()) / 2 - 15.5) <= 1


def test_shape_is_the_framed_mask_light_on_dark_with_a_smooth_outline(scene_store: SetStore) -> None:
    config = SilhouetteConfig()
    shape = arrays(scene_store, "shape")
    np.testing.assert_array_equal(shape, silhouettes(framed_coverage(scene_store), config.ink, config.paper))
    assert (config.ink, config.paper) == (255, 0)
    grey = shape[..., 0]
    assert ((grey > 0) & (grey < 255)).any(axis=(1, 2)).all()  # every outline is drawn with grey levels
    inked = (grey >= 128) == framed(scene_store)  # and is the bool framing's silhouette to a few boundary pixels
    assert inked.mean(axis=(1, 2)).min() > 0.95


def test_coverage_puts_the_same_ink_on_every_image() -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:32, 0:32]
    masks = np.zeros((12, 32, 32), bool)
    for k in range(12):  # an ellipse with a bar through it, of random size and place
        cy, cx, ry, rx = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(2, 8), rng.uniform(2, 8)
        masks[k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        masks[k, int(cy), int(cx) : int(cx) + rng.integers(3, 9)] = True
    coverage = frame_coverage(masks, framing_transforms(masks, 0.3, 1), 0.3, 4)
    assert coverage.min() >= 0.0
    assert coverage.max() <= 1.0
    np.testing.assert_array_equal(np.rint(coverage.sum(axis=(1, 2)) * 16), round(0.3 * 32 * 32 * 16))
    # in place (identity transforms) and at each mask's own area: the mask, with its outline smoothed
    identity = np.broadcast_to(np.eye(2, 3, dtype=np.float32), (12, 2, 3))
    own = frame_coverage(masks, identity, masks.mean(axis=(1, 2)), 4)
    np.testing.assert_allclose(own.sum(axis=(1, 2)), masks.sum(axis=(1, 2)), atol=1 / 16)
    assert ((own >= 0.5) == masks).mean() > 0.97


def test_coverage_draws_a_disc_closer_to_a_true_disc_than_its_staircase_mask() -> None:
    """Known answer: the exact share of each pixel inside a disc of radius 9.5 (fine grid) against the
    coverage of that disc's 32x32 bool mask, framed at its own area and place."""
    fine = 64
    yy, xx = (np.mgrid[0 : 32 * fine, 0 : 32 * fine] + 0.5) / fine - 0.5
    exact = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2) <= 9.5**2).reshape(32, fine, 32, fine).mean(axis=(1, 3))
    grid_y, grid_x = np.mgrid[0:32, 0:32]
    mask = ((grid_y - 15.5) ** 2 + (grid_x - 15.5) ** 2 <= 9.5**2)[None]
    identity = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=np.float32)
    coverage = frame_coverage(mask, identity, float(exact.sum()) / 1024, 8)[0]
    staircase_error = np.abs(mask[0] - exact).sum()
    smooth_error = np.abs(coverage - exact).sum()
    assert smooth_error < 0.85 * staircase_error  # measured 12.1 against 15.9


def test_shape_edges_draw_nothing_far_from_the_framed_object(scene_store: SetStore) -> None:
    edges = arrays(scene_store, "shape-edges")[..., 0]
    far = ~grow(framed(scene_store), 4)  # strokes within 1 px of the mask, scaled up to ~2.2x, then bilinear
    assert (edges[far] == SilhouetteConfig().paper).all()
    assert (edges[~far] != SilhouetteConfig().paper).mean() > 0.2


def test_shape_edges_inside_the_object_come_from_the_image() -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    disc = (yy - 16) ** 2 + (xx - 16) ** 2 <= 11**2
    flat = np.where(disc[..., None], np.uint8(200), np.uint8(40)).repeat(3, axis=-1)
    striped = flat.copy()
    striped[disc & (xx % 6 < 3)] = 90
    density = edge_density(np.stack([flat, striped]), np.stack([disc, disc]), 60, 140)
    interior = disc & ~grow(~disc[None], 2)[0]
    assert (density[0][interior] == 0).all()  # a flat object: its outline only
    assert (density[1][interior] > 0).mean() > 0.3  # stripes: their edges inside
    assert (density[:, ~grow(disc[None], 1)[0]] == 0).all()


def test_texture_overlay_is_texture_inside_and_the_image_outside(scene_store: SetStore) -> None:
    kept = kept_rows(scene_store)
    masks, clean = arrays(scene_store, "segmentation", "masks")[kept], arrays(scene_store, "clean")[kept]
    texture, overlay = arrays(scene_store, "texture"), arrays(scene_store, "texture-overlay")
    np.testing.assert_array_equal(overlay, np.where(masks[..., None], texture, clean))


def test_cue_conflict_fills_framed_silhouette_i_with_texture_j(scene_store: SetStore) -> None:
    kept = kept_rows(scene_store)
    texture = arrays(scene_store, "texture")
    conflict = scene_store.load("cue-conflict")
    donors = np.asarray(conflict.arrays["texture_index"])
    assert np.isin(donors, kept).all()  # donors pass the gate too
    shape_label, texture_label = (
        np.asarray(conflict.arrays["shape_label"]),
        np.asarray(conflict.arrays["texture_label"]),
    )
    labels = np.asarray(scene_store.load("clean").labels)
    rows = np.searchsorted(kept, donors)
    fills = lift_fills(texture[rows], CueConflictConfig().paper, CueConflictConfig().floor)
    np.testing.assert_array_equal(conflict.images[0], np.where(framed(scene_store)[..., None], fills, 0))
    np.testing.assert_array_equal(conflict.labels, shape_label)
    np.testing.assert_array_equal(shape_label, labels[kept])
    np.testing.assert_array_equal(texture_label, labels[donors])
    assert (shape_label != texture_label).all()


@pytest.mark.parametrize(("per_class", "classes"), [(100, 10), (37, 10), (5, 3), (1000, 10)])
def test_pairs_are_balanced_over_ordered_class_pairs(per_class: int, classes: int) -> None:
    labels = np.repeat(np.arange(classes), per_class)
    partners = conflict_partners(labels, np.random.default_rng(0))
    texture_labels = labels[partners]
    assert (texture_labels != labels).all()
    counts = np.zeros((classes, classes), int)
    np.add.at(counts, (labels, texture_labels), 1)
    off_diagonal = counts[~np.eye(classes, dtype=bool)]
    assert off_diagonal.max() - off_diagonal.min() <= 1  # every ordered pair (A, B), A != B, equally often
    lent = np.bincount(partners, minlength=len(labels))
    for c in range(classes):  # every image lends its texture about equally often
        assert np.ptp(lent[labels == c]) <= 1


def test_cue_conflict_records_visibility_per_image_and_per_texture_class(scene_store: SetStore) -> None:
    conflict = scene_store.load("cue-conflict")
    images, masks = conflict.images[0], framed(scene_store)
    contrast = np.asarray(conflict.arrays["figure_ground_contrast"])
    np.testing.assert_array_equal(contrast, figure_ground_contrast(images, masks))
    np.testing.assert_array_equal(conflict.arrays["fill_luminance"], fill_luminance(images, masks))
    assert contrast.min() >= CueConflictConfig().floor / 255 - 1e-6  # every figure pixel is lifted off the paper
    summary = conflict.manifest.summary["by_texture_class"]
    texture_label = np.asarray(conflict.arrays["texture_label"])
    assert summary["all"]["n"] == len(images)
    for c, row in summary["per_class"].items():
        assert row["n"] == int((texture_label == int(c)).sum())
        assert row["invisible_share"] == 0.0
        assert row["fill_luminance_mean"] == pytest.approx(
            float(conflict.arrays["fill_luminance"][texture_label == int(c)].mean()), abs=1e-4
        )


def test_pairing_is_a_function_of_the_seed() -> None:
    labels = np.repeat(np.arange(10), 20)
    first = conflict_partners(labels, np.random.default_rng(5))
    np.testing.assert_array_equal(first, conflict_partners(labels, np.random.default_rng(5)))
    assert not np.array_equal(first, conflict_partners(labels, np.random.default_rng(6)))


def test_a_single_class_split_has_no_conflict_to_offer() -> None:
    with pytest.raises(BenchError, match="at least two classes"):
        conflict_partners(np.zeros(6, np.int64), np.random.default_rng(0))


def test_only_eligible_images_ask_or_lend() -> None:
    labels = np.repeat(np.arange(10), 30)
    eligible = np.random.default_rng(1).random(300) < 0.6
    partners = conflict_partners(labels, np.random.default_rng(2), eligible)
    assert eligible[partners[eligible]].all()
    assert (labels[partners[eligible]] != labels[eligible]).all()
    np.testing.assert_array_equal(partners[~eligible], np.flatnonzero(~eligible))


def test_every_dependent_manifest_records_the_shared_segmentation(scene_store: SetStore) -> None:
    segmentation = scene_store.load("segmentation").manifest
    masks_hash = segmentation.arrays["masks"].sha256
    for name in OUR_SETS[1:]:
        recorded = scene_store.load(name).manifest.inputs["segmentation"]
        assert recorded["backend"] == "grabcut"
        assert recorded["arrays"]["masks"] == masks_hash
    assert scene_store.load("shape").manifest.backend == "grabcut"
    assert scene_store.load("cue-conflict").manifest.backend == "quilt"


def test_a_set_whose_segmentation_changed_is_refused_then_rebuilt(tmp_path: Path) -> None:
    images, _ = object_scenes(10, seed=21)
    split = split_of(images)
    build(split, tmp_path, ["shape"])
    build(split, tmp_path, ["segmentation"], parameters={"segmentation": {"box_margin": 3}})
    with pytest.raises(BenchError, match="rebuild it with libkd-bench generate-sets --sets shape"):
        SetStore(tmp_path).load("shape")
    build(split, tmp_path, ["shape"], parameters={"segmentation": {"box_margin": 3}})
    assert SetStore(tmp_path).load("shape").manifest.inputs["segmentation"]["arrays"]["masks"] == (
        SetStore(tmp_path).load("segmentation").manifest.arrays["masks"].sha256
    )


def test_linked_backends_resolve_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    from libkd_bench.datasets_gen.segmentation import fcn

    monkeypatch.setattr(fcn, "network_identity", lambda: {"weights": "stand-in"})
    for backends in ({"shape": "fcn"}, {"segmentation": "fcn"}, {"shape-edges": "fcn"}):
        plans = {p.entry.name: p for p in plan_sets(["shape", "shape-edges", "texture"], 0, backends=backends)}
        assert {plans[n].backend for n in ("segmentation", "shape", "shape-edges")} == {"fcn"}, backends
        assert plans["segmentation"].resources["weights"] == "stand-in"
        assert plans["texture"].backend == "quilt"
    with pytest.raises(BenchError, match="disagree"):
        plan_sets(["shape"], 0, backends={"shape": "fcn", "segmentation": "grabcut"})


@pytest.mark.shared
def test_grabcut_finds_objects_in_real_cifar_images(shared_test_npz: Path, tmp_path: Path) -> None:
    from libkd_bench.datasets_gen.segmentation import MaskSource
    from libkd_bench.datasets_gen.sources import load_source

    split = load_source(f"npz:{shared_test_npz}", limit=200)
    store = build(split, tmp_path, ["segmentation"])
    sources = np.asarray(store.load("segmentation").arrays["mask_source"])
    coverage = np.asarray(store.load("segmentation").arrays["masks"]).mean(axis=(1, 2))
    assert (sources == MaskSource.BACKEND).mean() > 0.85  # measured 0.94 on the whole test split
    assert 0.25 < coverage.mean() < 0.5  # measured 0.35


def test_cli_generates_the_family_and_lists_the_linked_backends(
    tmp_path: Path, synthetic_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sets"
    args = ["generate-sets", "--sets", "cue-conflict", "--source", f"npz:{synthetic_npz}", "--sets-dir", str(out)]
    code, stdout, _ = run_cli([*args, "--workers", "1", "--no-progress"], capsys)
    assert code == 0
    assert SetStore(out).names() == ["clean", "cue-conflict", "segmentation", "texture"]
    manifest = json.loads((out / "cue-conflict" / "manifest.json").read_text())
    assert manifest["backend"] == "quilt"
    assert set(manifest["inputs"]) == {"segmentation", "texture"}
    code, stdout, _ = run_cli(["list-sets", "shape"], capsys)
    assert "grabcut, fcn" in stdout
    assert "choosing one for any of segmentation, shape, shape-edges, shape-readable chooses it for all" in " ".join(
        stdout.split()
    )


@pytest.mark.parametrize(
    ("backend", "fragments"),
    [
        ("shape=fcn,segmentation=grabcut", ["disagree", "segmentation"]),
        ("shape=gatys", ["has no backend 'gatys'", "grabcut, fcn"]),
        ("scramble=fast", ["not among the sets being generated or their prerequisites"]),
        ("shape=fcn", ["fcn_resnet101_coco-7ecb50ca.pth", "hub/checkpoints"]),
        ("texture=gatys", ["vgg19-dcbb9e9d.pth", "hub/checkpoints"]),
    ],
)
def test_bad_backends_are_one_line_and_write_nothing(
    backend: str,
    fragments: list[str],
    tmp_path: Path,
    synthetic_npz: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    out = tmp_path / "sets"
    args = ["generate-sets", "--sets", "shape,texture", "--source", f"npz:{synthetic_npz}", "--sets-dir", str(out)]
    code, _, err = run_cli([*args, "--backend", backend], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    assert not out.exists() or SetStore(out).names() == []

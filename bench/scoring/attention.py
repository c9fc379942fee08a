"""Attention alignment of a scored model: its maps on a fixed panel, cached, and metric rows against its teacher.

The panel is a seeded, class-balanced subset (default 500 images) of the clean split. When the set store
holds the ``segmentation`` set, the panel is drawn from the images its mask gate kept, and their masks give
the object-focus metrics; without it the panel is drawn from every clean image and only agreement is measured.

Every scored model's maps are cached next to its logits, ``RESULTS/cache/<model dir>/attention-<panel
digest[:16]>.npz`` (written atomically), keyed by the checkpoint and spec (the directory) and by the panel
(clean images hash, masks and gate hashes, panel indices): ``indices``, ``labels``, ``gradcam`` float32 (n, 32,
32), ``rollout`` (ViTs only), ``masks`` (when known), ``picture`` (positions in the panel of
:data:`PICTURE_IMAGES` class-balanced images) with those ``images`` (uint8, for the leaderboard's pictures) and
``layer`` (the Grad-CAM layer's name). A student is compared with its
teacher's and baseline's maps read from their caches, so those runs are never loaded again; a reference run
scored without maps on this panel is a one-line error.

Rows (set ``attention`` for Grad-CAM, ``attention-rollout`` for rollout, whole set, n = panel images), each
the mean over images with a paired-bootstrap interval from the same resampling as every other metric:

- ``object_focus``: share of map energy inside the object mask; ``pointing_game``: share of maps whose peak
  lies on the object;
- ``agreement_spearman``, ``agreement_iou20``: student vs teacher (Spearman of the maps, IoU of their top 20%);
- ``baseline_agreement_spearman``, ``baseline_agreement_iou20``: baseline vs teacher, the reference a
  student's agreement is read against, and ``agreement_spearman_diff_baseline`` (student minus baseline
  agreement with the teacher, paired).

Agreement is undefined on an image where either map is constant (an all-zero Grad-CAM): such images are left out
of the mean (n counts the rest) and counted in ``<metric>_undefined``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from libkd_bench.core.atomic_io import ensure_writable_dir, write_bytes_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_json
from libkd_bench.datasets_gen.sources import balanced_subset
from libkd_bench.datasets_gen.store import SetStore, StoredSet
from libkd_bench.metrics.alignment import defined_mean, mask_energy, pointing_game, spearman_agreement, top_iou
from libkd_bench.metrics.bootstrap import BootstrapConfig, PairedBootstrap
from libkd_bench.records.run_record import MetricRow, RunRecord

if TYPE_CHECKING:
    from libkd_bench.scoring.forward import ForwardEngine
    from libkd_bench.scoring.reference_runs import KdContext, ReferenceRun
    from libkd_bench.scoring.sets import ScoringSets

SEGMENTATION = "segmentation"
GRADCAM_SET = "attention"
ROLLOUT_SET = "attention-rollout"
METHOD_SETS = {"gradcam": GRADCAM_SET, "rollout": ROLLOUT_SET}
PICTURE_IMAGES = 16
CACHE_PREFIX = "attention-"
KEY_DIGITS = 16
METHOD_VERSION = 2  # bump when the maps of the same model and panel would change


@dataclass(frozen=True)
class AttentionConfig:
    """The panel maps are computed on.

    Attributes:
        n: panel size (class-balanced; fewer when the split or the gate leaves fewer images).
        seed: seed of the panel's draw.
    """

    n: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 10:
            raise BenchError(f"--attention-n must be at least 10 (one image per class), got {self.n}")
        if self.seed < 0:
            raise BenchError(f"--attention-seed must be non-negative, got {self.seed}")


@dataclass(frozen=True)
class AttentionPanel:
    """The clean-split images every model's maps are computed on, and their object masks when known."""

    indices: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    key: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return sha256_json(dict(self.key))

    @property
    def file_name(self) -> str:
        return f"{CACHE_PREFIX}{self.digest[:KEY_DIGITS]}.npz"


def _segmentation(sets: ScoringSets) -> StoredSet | None:
    if SEGMENTATION in sets.sets:
        return sets.sets[SEGMENTATION]
    store = SetStore(sets.root)
    return store.load(SEGMENTATION, verify=True) if SEGMENTATION in store.names() else None


def select_panel(sets: ScoringSets, config: AttentionConfig) -> AttentionPanel:
    """The seeded class-balanced panel: gate-kept images when the store has masks, else any clean image."""
    labels = np.asarray(sets.clean.labels)
    segmentation = _segmentation(sets)
    key: dict[str, Any] = {"clean": sets.clean.sha256("images"), "n": config.n, "seed": config.seed}
    if segmentation is not None and "source_index" not in segmentation.arrays:
        if segmentation.labels.shape != labels.shape:
            raise BenchError(f"set {SEGMENTATION} does not cover the clean split; regenerate it with --force")
        candidates = np.flatnonzero(np.asarray(segmentation.arrays["kept"]))
        key.update(masks=segmentation.sha256("masks"), kept=segmentation.sha256("kept"))
    else:
        segmentation, candidates = None, np.arange(len(labels))
    order = np.random.default_rng([config.seed, len(labels)]).permutation(candidates)
    indices = np.sort(order[balanced_subset(labels[order], config.n)])
    if len(indices) == 0:
        raise BenchError("the attention panel is empty (the segmentation gate kept no image)")
    masks = None if segmentation is None else np.asarray(segmentation.arrays["masks"])[indices]
    key["indices"] = sha256_json(indices.tolist())
    key["version"] = METHOD_VERSION
    return AttentionPanel(indices, labels[indices], masks, key)


def compute_maps(engine: ForwardEngine, arch: str | None, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Grad-CAM maps (and rollout maps of ViTs) of uint8 (n, H, W, 3) ``images`` for their ``labels``.

    Returns ``{"gradcam": float32 (n, 32, 32), "rollout": ... or None, "layer": names}``; an ensemble's maps
    are the mean of its members'.
    """
    import torch

    from libkd_bench.scoring.attention_maps import (
        attention_modules,
        components,
        declared_layer,
        find_target_layer,
        grad_cam,
        rollout_maps,
    )

    model = engine.module
    members = components(model)
    batch = engine.config.batch
    sample = engine.to_input(images[: min(2, len(images))])
    # an ensemble's arch is its members' joined by "+" (``resnet56_a+rednet26``)
    archs = (arch or "").split("+") if len(members) > 1 else [arch]
    archs = archs if len(archs) == len(members) else [None] * len(members)
    gradcam, rollout, layers = [], [], []
    with engine.threads():
        for member, member_arch in zip(members, archs, strict=True):
            layer = find_target_layer(member, declared_layer(member, member_arch), sample)
            attention = attention_modules(member)
            layers.append(layer.name)
            member_cam, member_rollout = [], []
            for start in range(0, len(images), batch):
                inputs = engine.to_input(images[start : start + batch])
                targets = torch.as_tensor(labels[start : start + batch], dtype=torch.int64, device=inputs.device)
                member_cam.append(grad_cam(member, layer, inputs, targets))
                if attention and layer.tokens:
                    member_rollout.append(rollout_maps(member, attention, inputs))
            gradcam.append(np.concatenate(member_cam))
            if member_rollout:
                rollout.append(np.concatenate(member_rollout))
    return {
        "gradcam": np.mean(gradcam, axis=0).astype(np.float32),
        "rollout": np.mean(rollout, axis=0).astype(np.float32) if len(rollout) == len(members) else None,
        "layer": ",".join(layers),
    }


def cache_path(results: Path, cache_relative: str | Path, panel: AttentionPanel) -> Path:
    return Path(results) / cache_relative / panel.file_name


def save_maps(path: Path, panel: AttentionPanel, maps: Mapping[str, Any], images: np.ndarray) -> dict[str, np.ndarray]:
    """Write the cache file atomically; ``images`` are the panel's, of which a class-balanced few are kept.
    Returns the arrays written, as :func:`load_maps` reads them back."""
    picture = balanced_subset(panel.labels, PICTURE_IMAGES)
    arrays: dict[str, np.ndarray] = {
        "indices": panel.indices,
        "labels": panel.labels,
        "gradcam": maps["gradcam"],
        "picture": picture,
        "images": np.asarray(images[picture], dtype=np.uint8),
        "layer": np.array(maps["layer"]),
    }
    if maps.get("rollout") is not None:
        arrays["rollout"] = maps["rollout"]
    if panel.masks is not None:
        arrays["masks"] = panel.masks
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    ensure_writable_dir(path.parent)
    write_bytes_atomic(path, buffer.getvalue())
    return arrays


def load_maps(path: Path, panel: AttentionPanel | None = None) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent, unreadable or (given ``panel``) of other images."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None
    if not {"gradcam", "indices", "picture", "images"} <= set(arrays):
        return None
    if panel is not None and not np.array_equal(arrays["indices"], panel.indices):
        return None
    return arrays


def reference_maps(run: ReferenceRun, panel: AttentionPanel, role: str) -> dict[str, np.ndarray]:
    """A teacher's or baseline's cached maps on ``panel``; BenchError naming the fix when it has none."""
    path = cache_path(run.results, run.record.logits, panel)
    maps = load_maps(path, panel)
    if maps is None:
        raise BenchError(
            f"{role} run {run.run_id} has no cached attention maps for this panel ({path}); score the {role} again "
            "with this version on the same sets and --attention-n/--attention-seed, or pass --no-attention"
        )
    return maps


def check_references(kd: KdContext, sets: ScoringSets, config: AttentionConfig) -> None:
    """Fail before any forward pass when the teacher or baseline has no maps on the call's panel."""
    panel = select_panel(sets, config)
    for role, run in (("teacher", kd.teacher), ("baseline", kd.baseline)):
        if run is not None:
            reference_maps(run, panel, role)


def score_attention(
    engine: ForwardEngine,
    arch: str | None,
    sets: ScoringSets,
    results: Path,
    cache_relative: str | Path,
    config: AttentionConfig,
    kd: KdContext,
    bootstrap: BootstrapConfig,
    recompute: bool = False,
) -> tuple[list[MetricRow], dict[str, Any]]:
    """Maps of the model on the panel (cached), and its alignment rows; returns the rows and the record entry."""
    panel = select_panel(sets, config)
    path = cache_path(results, cache_relative, panel)
    maps = None if recompute else load_maps(path, panel)
    started = time.perf_counter()
    cached = maps is not None
    if maps is None:
        images = np.asarray(sets.clean.images[0][panel.indices])
        computed = compute_maps(engine, arch, images, panel.labels)
        maps = save_maps(path, panel, computed, images)
    teacher = reference_maps(kd.teacher, panel, "teacher") if kd.teacher else None
    baseline = reference_maps(kd.baseline, panel, "baseline") if kd.baseline else None
    rows = alignment_rows(maps, panel.masks, teacher, baseline, bootstrap)
    entry = {
        "file": path.name,
        "panel": panel.digest,
        "n": len(panel.indices),
        "seed": config.seed,
        "layer": str(maps["layer"]),
        "methods": [m for m in METHOD_SETS if m in maps],
        "masks": panel.masks is not None,
        "cached": cached,
        "seconds": None if cached else round(time.perf_counter() - started, 3),
    }
    return rows, entry


def cached_alignment_rows(
    record: RunRecord, results: Path, kd: KdContext, bootstrap: BootstrapConfig
) -> list[MetricRow]:
    """The alignment rows of a scored run, again, from the maps its score cached (for ``rescore``; no model)."""
    entry = record.scoring.get("attention")
    if not entry:
        return []
    own = load_maps(Path(results) / (record.logits or "") / entry["file"])
    if own is None:
        raise BenchError(f"the attention maps of run {record.run_id} are missing from its cache; score it again")
    references = []
    for role, run in (("teacher", kd.teacher), ("baseline", kd.baseline)):
        maps = None
        if run is not None:
            maps = load_maps(Path(run.results) / (run.record.logits or "") / entry["file"])
            if maps is None or not np.array_equal(maps["indices"], own["indices"]):
                raise BenchError(f"{role} run {run.run_id} has no cached attention maps for this panel; score it again")
        references.append(maps)
    return alignment_rows(own, own.get("masks"), references[0], references[1], bootstrap)


def alignment_rows(
    own: Mapping[str, np.ndarray],
    masks: np.ndarray | None,
    teacher: Mapping[str, np.ndarray] | None,
    baseline: Mapping[str, np.ndarray] | None,
    bootstrap: BootstrapConfig,
) -> list[MetricRow]:
    """Alignment rows of one model's maps (see the module docstring); methods absent from a map set are skipped."""
    rows = []
    n = len(own["gradcam"])
    boot = PairedBootstrap(n, bootstrap)
    for method, set_name in METHOD_SETS.items():
        if method not in own:
            continue
        values: dict[str, np.ndarray] = {}
        if masks is not None:
            values["object_focus"] = mask_energy(own[method], masks)
            values["pointing_game"] = pointing_game(own[method], masks)
        if teacher is not None and method in teacher:
            values["agreement_spearman"] = spearman_agreement(own[method], teacher[method])
            values["agreement_iou20"] = top_iou(own[method], teacher[method])
            if baseline is not None and method in baseline:
                values["baseline_agreement_spearman"] = spearman_agreement(baseline[method], teacher[method])
                values["baseline_agreement_iou20"] = top_iou(baseline[method], teacher[method])
                values["agreement_spearman_diff_baseline"] = (
                    values["agreement_spearman"] - values["baseline_agreement_spearman"]
                )
        for metric, per_image in values.items():
            mean, undefined = defined_mean(per_image)  # agreement is undefined where a map is constant
            if undefined:
                rows.append(MetricRow(set_name, None, "", f"{metric}_undefined", undefined, None, None, n))
            if not np.isfinite(mean):
                continue
            defined = np.isfinite(per_image)
            with np.errstate(invalid="ignore", divide="ignore"):
                samples = boot.sums(np.where(defined, per_image, 0.0)) / boot.sums(defined.astype(np.float64))
            low, high = boot.interval(samples)
            rows.append(MetricRow(set_name, None, "", metric, mean, low, high, n - undefined))
    return rows

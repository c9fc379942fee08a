"""``cue-conflict``: the silhouette of image i (class A) filled with the texture of image j (class B != A).

Both images must pass the segmentation gate. Pairs are drawn once for the whole split from the set-wide
generator, so every chunk and worker sees the same pairing. They are balanced: the kept images of class A are
shuffled and dealt the other classes in a shuffled cycle, so each ordered pair (A, B) occurs equally often up to
rounding; then the images asking for class B are dealt class B's kept images in a shuffled cycle, so every
image lends its texture about equally often. The texture of j is the ``texture`` set's image j (made from j's
own pixels and mask, by the same backend); the silhouette is i's mask, centred and scaled to a fixed area as in
``shape`` (so neither its size nor its position tells class A), on a uniform background (``paper``), which is
the same for every image and so carries no class. Stored per image: ``shape_label`` (A, also the set's
``labels``), ``texture_label`` (B) and ``texture_index`` (j).

The pairing depends on every label of the split, so unlike the per-image sets it changes with ``--limit``.
A split holding one class only has nothing to conflict with: generating the set from it is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.generators.shape import KEPT, framed_masks
from libkd_bench.datasets_gen.generators.texture import TEXTURES, texture_rows
from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, check_ranges, register_generator
from libkd_bench.datasets_gen.texture_synthesis import synthesizer_names


@dataclass(frozen=True)
class CueConflictConfig:
    """How conflicts are drawn.

    Attributes:
        area: share of the image every silhouette is scaled to cover (less when it would not fit). 0.05..0.8.
        paper: grey level of the background. 0..255.
    """

    area: float = 0.3
    paper: int = 0

    def __post_init__(self) -> None:
        check_ranges("cue-conflict", self, {"area": 0.05 <= self.area <= 0.8, "paper": 0 <= self.paper <= 255})


def conflict_partners(labels: np.ndarray, rng: np.random.Generator, eligible: np.ndarray | None = None) -> np.ndarray:
    """Index j of the texture donor of every eligible image, balanced over ordered class pairs (module docstring).

    Images that are not eligible neither ask nor lend; their entry is their own index.
    """
    labels = np.asarray(labels)
    eligible = np.ones(len(labels), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    partners = np.arange(len(labels), dtype=np.int64)
    classes = np.unique(labels[eligible])
    if len(classes) < 2:
        raise BenchError("cue-conflict needs kept images of at least two classes; use a source with several classes")
    texture_class = labels.copy()
    for a in classes:
        members, others = np.flatnonzero((labels == a) & eligible), classes[classes != a]
        texture_class[rng.permutation(members)] = np.resize(rng.permutation(others), len(members))
    for b in classes:
        askers = np.flatnonzero((texture_class == b) & (labels != b) & eligible)
        donors = np.flatnonzero((labels == b) & eligible)
        partners[askers] = np.resize(rng.permutation(donors), len(askers))
    return partners


@register_generator(
    "cue-conflict",
    cue=Cue.SHAPE_VS_TEXTURE,
    description="centred silhouette of image i (class A) filled with the texture of image j (class B != A)",
    defaults=asdict(CueConflictConfig()),
    extras={"shape_label": "int64", "texture_label": "int64", "texture_index": "int64"},
    requires=("segmentation", "texture"),
    backends=synthesizer_names(),
    backend_of="texture",
    config=CueConflictConfig,
    gate=KEPT,
)
def cue_conflict(batch: Batch, value: None, /, **params: Any) -> Derived:
    config = CueConflictConfig(**params)
    kept = np.asarray(batch.inputs[KEPT])
    partners = conflict_partners(batch.split_labels, batch.set_rng(), kept)[batch.indices]
    masks = framed_masks(batch, config.area)
    textures = np.asarray(batch.inputs[TEXTURES][0, texture_rows(batch, partners)])
    images = np.where(masks[..., None], textures, np.uint8(config.paper))
    texture_labels = np.asarray(batch.split_labels[partners], dtype=np.int64)
    extras = {"shape_label": batch.labels.copy(), "texture_label": texture_labels, "texture_index": partners}
    return Derived(images, batch.labels, extras)

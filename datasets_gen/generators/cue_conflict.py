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

Fills that stay visible. Donor textures are as dark or as bright as their class: on black paper a fill darker
than about 40/255 showed no outline at all, and such fills came from some texture classes (15 % of automobile
textures) and never from others (frogs), so whether an image carried its shape depended on its texture class.
Every fill is therefore drawn in a luminance band at least ``floor`` grey levels away from the paper: each
channel of the donor texture is mapped by the same affine map ``v -> lo + v * (hi - lo) / 255`` (``lo`` =
``paper + floor``, ``hi`` = 255 for dark paper; 0 and ``paper - floor`` for light paper). Because Rec. 601 luma
is a weighted mean of the channels, every figure pixel then lies at least ``floor`` levels from the paper. The
map is one and the same for every image, so neither the background nor the treatment of a fill tells its class;
it keeps the donor's hues, its pattern and the order of its grey levels, at the cost of a uniform loss of
``floor / 255`` of its contrast (19 % at the default 48). The alternatives were worse for this set: a paper grey
chosen against each fill makes the background a function of the texture class (and white paper reads as
"airplane" to CIFAR models, see ``shape``); an outline stroke draws a second, texture-free shape cue around
every image; a per-image stretch to a common luminance removes the donor's brightness, which is part of its
texture. ``floor`` 0 gives the unlifted fills. The figure/ground contrast of every image
(:mod:`libkd_bench.datasets_gen.visibility`) and the fill's mean luminance are stored as ``figure_ground_contrast``
and ``fill_luminance``, and the manifest's ``summary`` gives both per texture class with the share of invisible
silhouettes.

The pairing depends on every label of the split, so unlike the per-image sets it changes with ``--limit``.
A split holding one class only has nothing to conflict with: generating the set from it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.generators.shape import KEPT, framed_masks
from libkd_bench.datasets_gen.generators.texture import TEXTURES, texture_rows
from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, check_ranges, register_generator
from libkd_bench.datasets_gen.texture_synthesis import synthesizer_names
from libkd_bench.datasets_gen.visibility import figure_ground_measures, visibility_by_class

MIN_FILL_LEVELS = 64


@dataclass(frozen=True)
class CueConflictConfig:
    """How conflicts are drawn.

    Attributes:
        area: share of the image every silhouette is scaled to cover (less when it would not fit). 0.05..0.8.
        paper: grey level of the background. 0..255.
        floor: least distance, in grey levels, of every fill pixel's luminance from the paper (module docstring);
            the band left for the fill must keep at least ``MIN_FILL_LEVELS`` levels. 0..255.
    """

    area: float = 0.25
    paper: int = 0
    floor: int = 48

    def __post_init__(self) -> None:
        band = fill_band(self.paper, self.floor) if 0 <= self.paper <= 255 and 0 <= self.floor <= 255 else (0, 0)
        checks = {
            "area": 0.05 <= self.area <= 0.8,
            "paper": 0 <= self.paper <= 255,
            "floor": 0 <= self.floor <= 255 and band[1] - band[0] >= MIN_FILL_LEVELS,
        }
        check_ranges("cue-conflict", self, checks)


def fill_band(paper: int, floor: int) -> tuple[int, int]:
    """The grey levels (lo, hi) a fill is mapped into: ``floor`` levels or more from ``paper``, on its wider side."""
    return (paper + floor, 255) if paper < 128 else (0, paper - floor)


def lift_fills(textures: np.ndarray, paper: int, floor: int) -> np.ndarray:
    """Textures uint8 (..., 3) mapped channel-wise into :func:`fill_band` (rounded half up), by a 256-entry table."""
    lo, hi = fill_band(paper, floor)
    table = ((np.arange(256, dtype=np.uint16) * (hi - lo) + 127) // 255 + lo).astype(np.uint8)
    return table[textures]


def summarise_visibility(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The manifest's ``summary``: fill luminance and share of invisible silhouettes per texture class."""
    return {
        "by_texture_class": visibility_by_class(
            arrays["figure_ground_contrast"], arrays["fill_luminance"], arrays["texture_label"]
        )
    }


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
    rank=60,
    cue=Cue.SHAPE_VS_TEXTURE,
    description="centred silhouette of image i (class A) filled with the texture of image j (class B != A)",
    defaults=asdict(CueConflictConfig()),
    extras={
        "shape_label": "int64",
        "texture_label": "int64",
        "texture_index": "int64",
        "fill_luminance": "float32",
        "figure_ground_contrast": "float32",
    },
    requires=("segmentation", "texture"),
    backends=synthesizer_names(),
    backend_of="texture",
    config=CueConflictConfig,
    gate=KEPT,
    summary=summarise_visibility,
)
def cue_conflict(batch: Batch, value: None, /, **params: Any) -> Derived:
    config = CueConflictConfig(**params)
    kept = np.asarray(batch.inputs[KEPT])
    partners = conflict_partners(batch.split_labels, batch.set_rng(), kept)[batch.indices]
    masks = framed_masks(batch, config.area)
    donors = batch.part("texture_donors", lambda _, chosen: chosen)(batch, partners)
    textures = np.asarray(batch.inputs[TEXTURES][0, texture_rows(batch, donors)])
    fills = lift_fills(textures, config.paper, config.floor)
    images = np.where(masks[..., None], fills, np.uint8(config.paper))
    texture_labels = np.asarray(batch.split_labels[partners], dtype=np.int64)
    fill, contrast = figure_ground_measures(images, masks)
    extras = {
        "shape_label": batch.labels.copy(),
        "texture_label": texture_labels,
        "texture_index": partners,
        "fill_luminance": fill,
        "figure_ground_contrast": contrast,
    }
    return Derived(images, batch.labels, extras)

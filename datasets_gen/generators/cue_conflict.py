"""``cue-conflict``: the silhouette of image i (class A) filled with the texture of image j (class B != A).

Pairs are drawn once for the whole split from the set-wide generator, so every chunk and worker sees the
same pairing. They are balanced: the images of class A are shuffled and dealt the other classes in a
shuffled cycle, so each ordered pair (A, B) occurs equally often up to rounding; then the images asking for
class B are dealt class B's images in a shuffled cycle, so every image lends its texture about equally often.
The texture of j is the ``texture`` set's image j (made from j's own pixels and mask, by the same backend),
the silhouette that of set ``segmentation``; the background is light, as in ``shape``. Stored per image:
``shape_label`` (A, also the set's ``labels``), ``texture_label`` (B) and ``texture_index`` (j).

The pairing depends on every label of the split, so unlike the per-image sets it changes with ``--limit``.
A split holding one class only has nothing to conflict with: its images take textures of their own class and
``texture_label == shape_label`` (such images are excluded from shape bias, as in Geirhos et al. 2019).
"""

from __future__ import annotations

import numpy as np

from datasets_gen.generators.shape import PAPER
from datasets_gen.registry import Batch, Cue, Derived, register_generator
from datasets_gen.texture_synthesis import synthesizer_names

MASKS = "segmentation/masks"
TEXTURES = "texture/images"


def conflict_partners(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index j of the texture donor of every image, balanced over ordered class pairs (module docstring)."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    texture_class = labels.copy()
    for a in classes:
        members, others = np.flatnonzero(labels == a), classes[classes != a]
        if len(others):
            texture_class[rng.permutation(members)] = np.resize(rng.permutation(others), len(members))
    partners = np.empty(len(labels), dtype=np.int64)
    for b in classes:
        askers, donors = np.flatnonzero(texture_class == b), np.flatnonzero(labels == b)
        partners[askers] = np.resize(rng.permutation(donors), len(askers))
    return partners


@register_generator(
    "cue-conflict",
    cue=Cue.SHAPE_VS_TEXTURE,
    description="silhouette of image i (class A) filled with the texture of image j (class B != A)",
    extras={"shape_label": "int64", "texture_label": "int64", "texture_index": "int64"},
    requires=("segmentation", "texture"),
    backends=synthesizer_names(),
    backend_of="texture",
)
def cue_conflict(batch: Batch, value: None, /) -> Derived:
    partners = conflict_partners(batch.split_labels, batch.set_rng())[batch.indices]
    masks = np.asarray(batch.inputs[MASKS][batch.indices])
    textures = np.asarray(batch.inputs[TEXTURES][0, partners])
    images = np.where(masks[..., None], textures, np.uint8(PAPER))
    texture_labels = np.asarray(batch.split_labels[partners], dtype=np.int64)
    extras = {"shape_label": batch.labels.copy(), "texture_label": texture_labels, "texture_index": partners}
    return Derived(images, batch.labels, extras)

"""``texture`` and ``texture-overlay``: the object's surface without its outline.

``texture`` is a full 32x32 texture synthesised from the object's own pixels (inside the shared mask of set
``segmentation``), so its colours and local patterns remain and its shape is gone. Backends: ``quilt``
(default, image quilting, weight-free) and ``gatys`` (VGG-19 Gram-matrix synthesis, as in the reference
study). ``texture-overlay`` lays that same texture over the object's region of the original image, background
kept, as the reference study describes its texture set; it shares the ``texture`` backend. It keeps the
object's outline and its context, so it is no texture-only set: it measures texture in context, and reports
list it apart from ``texture``. Both keep only the images that the segmentation gate keeps.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, register_generator
from libkd_bench.datasets_gen.texture_synthesis import TextureConfig, backend_identity, synthesize, synthesizer_names

MASKS = "segmentation/masks"
TEXTURES = "texture/images"
TEXTURE_INDEX = "texture/source_index"


@register_generator(
    "texture",
    rank=10,
    cue=Cue.TEXTURE,
    description="32x32 texture synthesised from the object's own pixels (masks of set segmentation)",
    defaults=asdict(TextureConfig()),
    requires=("segmentation",),
    backends=synthesizer_names(),
    resources=backend_identity,
    config=TextureConfig,
    gate="segmentation/kept",
)
def texture(batch: Batch, value: None, /, **params: Any) -> Derived:
    masks = batch.part("source_masks", object_masks)(batch)
    backend = batch.backend or synthesizer_names()[0]
    textures = batch.part("synthesis", synthesize)(backend, batch.images, masks, batch.rngs(), TextureConfig(**params))
    return Derived(textures, batch.labels)


def object_masks(batch: Batch) -> np.ndarray:
    """The pixels a texture is made from: the batch's object masks, bool (n, H, W)."""
    return np.asarray(batch.inputs[MASKS][batch.indices])


def texture_rows(batch: Batch, indices: np.ndarray) -> np.ndarray:
    """Rows of the gated texture set holding the textures of clean images ``indices`` (images the gate dropped
    get some row: their output is dropped too)."""
    position = np.asarray(batch.inputs[TEXTURE_INDEX])
    return np.minimum(np.searchsorted(position, indices), len(position) - 1)


@register_generator(
    "texture-overlay",
    rank=80,
    cue=Cue.TEXTURE_IN_CONTEXT,
    description="the texture laid over the object's region, outline and background kept (texture in context)",
    requires=("segmentation", "texture"),
    backends=synthesizer_names(),
    backend_of="texture",
    gate="segmentation/kept",
)
def texture_overlay(batch: Batch, value: None, /) -> Derived:
    masks = np.asarray(batch.inputs[MASKS][batch.indices])
    textures = np.asarray(batch.inputs[TEXTURES][0, texture_rows(batch, batch.indices)])
    return Derived(np.where(masks[..., None], textures, batch.images), batch.labels)

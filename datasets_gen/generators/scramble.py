"""``scramble``: the image cut into a g x g grid of tiles, permuted per image (never the identity)."""

from __future__ import annotations

import numpy as np

from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, register_generator


def non_identity_permutation(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uniformly drawn permutation of ``range(size)`` other than the identity (size >= 2)."""
    identity = np.arange(size)
    while True:
        perm = rng.permutation(size)
        if not np.array_equal(perm, identity):
            return perm


def tiles_of(images: np.ndarray, grid: int) -> np.ndarray:
    """(n, H, W, C) -> (n, grid*grid, H/grid, W/grid, C), tiles in row-major order."""
    n, height, width, channels = images.shape
    th, tw = height // grid, width // grid
    return images.reshape(n, grid, th, grid, tw, channels).transpose(0, 1, 3, 2, 4, 5).reshape(n, -1, th, tw, channels)


def image_of(tiles: np.ndarray, grid: int) -> np.ndarray:
    n, _, th, tw, channels = tiles.shape
    return (
        tiles.reshape(n, grid, grid, th, tw, channels)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(n, grid * th, grid * tw, channels)
    )


@register_generator(
    "scramble",
    rank=40,
    cue=Cue.GLOBAL_STRUCTURE,
    description="g x g grid of tiles permuted per image, never the identity permutation",
    severity_parameter="grid",
    severities=(2, 4, 8),
)
def scramble(batch: Batch, grid: int, /) -> Derived:
    if grid == 1:
        return Derived(batch.images.copy(), batch.labels)
    tiles = tiles_of(batch.images, grid)
    draw = batch.part("tile_permutation", non_identity_permutation)
    perms = np.stack([draw(rng, grid * grid) for rng in batch.rngs()])
    shuffled = tiles[np.arange(len(tiles))[:, None], perms]
    return Derived(np.ascontiguousarray(image_of(shuffled, grid)), batch.labels)

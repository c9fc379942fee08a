"""``quilt``: image quilting (Efros & Freeman 2001) from the object's own pixels; weight-free. The default backend.

The 32x32 output is tiled in raster order by square patches of ``patch_size`` pixels that overlap their left
and upper neighbours by ``overlap`` pixels. Candidates are every patch of the source image that lies inside
the object's mask; each new patch is drawn at random among the candidates whose squared colour difference
over the overlap is within ``(1 + tolerance)`` of the smallest, and joined to what is already there along the
minimum-error boundary cut (a dynamic-programming path through the overlap). The draw is always among at
least the ``MIN_CHOICES`` best candidates: on a source this small the best match is often the exact
continuation of the neighbour's source patch (error 0), and always taking it would copy the source verbatim,
outline included. The result keeps the object's
colours and local patterns (fur, metal, wheels, feathers) and loses its outline, since patches are rearranged
and every pixel comes from inside the object.

A mask too thin to hold ``MIN_CANDIDATES`` whole patches takes patches that are at least 75 %, then 50 %
inside it, and as a last resort any patch of the image (a little background then shows in the texture).

No maintained implementation of image quilting exists on PyPI, hence this one. It is vectorised over the
images of a chunk (one pass per patch position, not per image), and exact: colour errors are sums of integer
squares below 2**24, which float32 holds exactly in any summation order, so results do not depend on how
images are batched. Randomness: one uniform draw per patch position from each image's own generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from libkd_bench.datasets_gen.texture_synthesis.base import TextureConfig, register_synthesizer

INSIDE_LEVELS = (1.0, 0.75, 0.5, 0.0)
MIN_CANDIDATES = 8
MIN_CHOICES = 4


def candidate_patches(images: np.ndarray, masks: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Every patch of every image, float32 (n, K, patch*patch*3), and which ones may be used, bool (n, K).

    A patch may be used when its share of mask pixels reaches the first of ``INSIDE_LEVELS`` at which the image
    has at least ``MIN_CANDIDATES`` patches (any patch at the last level).
    """
    n = len(images)
    windows = sliding_window_view(images, (patch, patch), axis=(1, 2))  # (n, r, c, 3, patch, patch)
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, -1, patch * patch * 3).astype(np.float32)
    inside = sliding_window_view(masks, (patch, patch), axis=(1, 2)).sum(axis=(-1, -2)).reshape(n, -1)
    usable = np.zeros(inside.shape, dtype=bool)
    settled = np.zeros(n, dtype=bool)
    for level in INSIDE_LEVELS:
        ok = inside >= int(np.ceil(level * patch * patch))
        take = ~settled & (ok.sum(axis=1) >= min(MIN_CANDIDATES, inside.shape[1]))
        usable[take] = ok[take]
        settled |= take
    return patches, usable


def boundary_cut(errors: np.ndarray, width: int) -> np.ndarray:
    """Minimum-error vertical cut through an overlap; True where the new patch shows.

    Args:
        errors: (n, rows, overlap) squared colour differences between the new patch and the canvas.
        width: the patch width; columns beyond the overlap always take the new patch.

    Returns:
        bool (n, rows, width): True right of the path (the path's own pixels included).
    """
    n, rows, _ = errors.shape
    cost = errors.astype(np.float64)
    edge = np.full((n, 1), np.inf)
    for r in range(1, rows):
        above = cost[:, r - 1]
        left, right = np.concatenate([edge, above[:, :-1]], 1), np.concatenate([above[:, 1:], edge], 1)
        cost[:, r] += np.minimum(np.minimum(left, above), right)
    path = np.empty((n, rows), dtype=np.int64)
    path[:, -1] = cost[:, -1].argmin(axis=1)
    padded = np.pad(cost, ((0, 0), (0, 0), (1, 1)), constant_values=np.inf)
    for r in range(rows - 2, -1, -1):
        options = path[:, r + 1, None] + np.array([-1, 0, 1])
        values = np.take_along_axis(padded[:, r], options + 1, axis=1)
        path[:, r] = options[np.arange(n), values.argmin(axis=1)]
    return np.arange(width)[None, None, :] >= path[:, :, None]


def nth_true(flags: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Per row, the index of a True entry picked by a uniform number in [0, 1): the floor(u * count)-th one."""
    count = flags.sum(axis=1)
    wanted = np.minimum(np.floor(uniforms * count).astype(np.int64), count - 1)
    return np.argmax(np.cumsum(flags, axis=1) > wanted[:, None], axis=1)


def quilt(
    images: np.ndarray,
    masks: np.ndarray,
    rngs: Sequence[np.random.Generator],
    patch: int,
    overlap: int,
    tolerance: float,
) -> np.ndarray:
    """Quilted textures, uint8 (n, H, W, 3), of each image's foreground (see the module docstring)."""
    n, height, width, _ = images.shape
    step = patch - overlap
    tiles_y, tiles_x = -(-(height - overlap) // step), -(-(width - overlap) // step)
    patches, usable = candidate_patches(images, masks, patch)
    regions = {}
    for name, (rows, cols) in {"left": (patch, overlap), "top": (overlap, patch)}.items():
        region = np.zeros((patch, patch, 3), dtype=np.float32)
        region[:rows, :cols] = 1
        regions[name] = region
    regions["both"] = np.maximum(regions["left"], regions["top"])
    weights = {name: region.reshape(-1) for name, region in regions.items()}
    squared = (patches * patches) @ np.stack(list(weights.values()), axis=1)  # exact integers, (n, K, regions)
    squares = {name: squared[..., index] for index, name in enumerate(weights)}
    uniforms = np.stack([rng.random(tiles_y * tiles_x) for rng in rngs])
    canvas = np.zeros((n, (tiles_y - 1) * step + patch, (tiles_x - 1) * step + patch, 3), dtype=np.float32)
    rows_of = np.arange(n)
    for t in range(tiles_y * tiles_x):
        i, j = divmod(t, tiles_x)
        y, x = i * step, j * step
        current = canvas[:, y : y + patch, x : x + patch]
        if t == 0:
            errors = np.zeros(usable.shape)
        else:
            name = "top" if j == 0 else "left" if i == 0 else "both"
            known = current.reshape(n, -1) * weights[name]
            cross = np.matmul(patches, known[:, :, None])[:, :, 0].astype(np.float64)
            errors = squares[name] - 2.0 * cross + (known.astype(np.float64) ** 2).sum(axis=1, keepdims=True)
        errors = np.where(usable, errors, np.inf)
        best = errors.min(axis=1, keepdims=True) * (1.0 + tolerance)
        eligible = errors <= np.maximum(best, np.partition(errors, MIN_CHOICES - 1, axis=1)[:, MIN_CHOICES - 1, None])
        new = patches[rows_of, nth_true(eligible, uniforms[:, t])].reshape(n, patch, patch, 3)
        show = np.ones((n, patch, patch), dtype=bool)
        if j:
            show &= boundary_cut(((new[:, :, :overlap] - current[:, :, :overlap]) ** 2).sum(axis=-1), patch)
        if i:
            seam = ((new[:, :overlap] - current[:, :overlap]) ** 2).sum(axis=-1).transpose(0, 2, 1)
            show &= boundary_cut(seam, patch).transpose(0, 2, 1)
        canvas[:, y : y + patch, x : x + patch] = np.where(show[..., None], new, current)
    return canvas[:, :height, :width].astype(np.uint8)


@register_synthesizer("quilt", default=True)
class QuiltSynthesizer:
    """Image quilting from the foreground's own patches (see the module docstring)."""

    def identity(self) -> dict[str, Any]:
        return {}

    def synthesize(
        self, images: np.ndarray, masks: np.ndarray, rngs: Sequence[np.random.Generator], config: TextureConfig
    ) -> np.ndarray:
        return quilt(images, masks, rngs, config.patch_size, config.overlap, config.tolerance)

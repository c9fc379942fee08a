"""Weather corruptions: snow, frost and fog.

Fog and frost rest on the plasma fractal of the reference (diamond-square on a 32 x 32 grid with wrap-around,
noise amplitude ``wibble^2 * U(-1, 1)`` starting from wibble 100 and divided by ``wibbledecay`` per octave,
normalised to [0, 1]), drawn per image from the image's own generator.

Frost differs from CIFAR-10-C: the reference blends the image with a random 32 x 32 crop of one of six frost
photographs (``frost1.png`` ... ``frost6.jpg``, shrunk to a fifth), which are not shipped here. Instead each
image gets a seeded procedural frost texture: ridged plasma noise (bright crystal veins along the level set
f = 0.5 of a rough fractal) over a smoother fractal haze, tinted bluish white, with values from about 50 to 255
and a mean near 140 (0-255 units). The blend is the reference's, ``image_weight * x + frost_weight * frost`` with
the CIFAR table's weights, so the severity ordering holds, but the texture is not the photographs' and its
accuracies are not comparable with published CIFAR-10-C frost numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libkd_bench.datasets_gen.corruptions.blur import clipped_zoom, motion_blur_8bit
from libkd_bench.datasets_gen.corruptions.intensity import to_uint8, to_unit

FRACTAL_SIZE = 32
# RGB tint of the procedural frost (bluish white) and the mixture of its layers.
FROST_TINT = np.array([0.84, 0.92, 1.0])
FROST_BASE, FROST_HAZE, FROST_VEINS = 0.25, 0.35, 0.5
FROST_HAZE_DECAY, FROST_VEIN_DECAY = 2.5, 1.5
# ITU-R BT.601 luma, what OpenCV's RGB2GRAY uses in the reference's snow.
LUMA = np.array([0.299, 0.587, 0.114])


def plasma_fractal(rngs: Sequence[np.random.Generator], size: int = FRACTAL_SIZE, decay: float = 3.0) -> np.ndarray:
    """(n, size, size) diamond-square height maps in [0, 1], one per generator; ``size`` a power of two.

    Each image's uniforms are drawn at once (3 * 4^k per octave k, squares then the two diamond sets), so a
    batch is built octave by octave for all images together.
    """
    n = len(rngs)
    octaves = []
    step = size
    while step >= 2:
        octaves.append(step)
        step //= 2
    counts = [3 * (size // step) ** 2 for step in octaves]
    draws = np.stack([rng.uniform(-1.0, 1.0, sum(counts)) for rng in rngs]) if n else np.zeros((0, sum(counts)))
    height = np.zeros((n, size, size))
    wibble, used = 100.0, 0
    for step in octaves:
        half, cells = step // 2, size // step
        noise = wibble * wibble * draws[:, used : used + 3 * cells * cells].reshape(n, 3, cells, cells)
        used += 3 * cells * cells
        corners = height[:, 0:size:step, 0:size:step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        height[:, half:size:step, half:size:step] = squares / 4 + noise[:, 0]
        centres = height[:, half:size:step, half:size:step]
        corners = height[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        height[:, 0:size:step, half:size:step] = left / 4 + noise[:, 1]
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        height[:, half:size:step, 0:size:step] = top / 4 + noise[:, 2]
        wibble /= decay
    height -= height.min(axis=(1, 2), keepdims=True)
    return height / np.maximum(height.max(axis=(1, 2), keepdims=True), np.finfo(np.float64).tiny)


def fog(images: np.ndarray, parameters: tuple[float, float], rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Add ``strength`` times a plasma fractal, then rescale so the image's maximum keeps its place."""
    strength, decay = parameters
    x = to_unit(images)
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * plasma_fractal(rngs, images.shape[1], decay)[..., None]
    return to_uint8(x * peak / (peak + strength))


def frost_texture(rngs: Sequence[np.random.Generator], size: int) -> np.ndarray:
    """(n, size, size, 3) procedural frost in [0, 255]: haze, then crystal veins, from each image's generator."""
    haze = plasma_fractal(rngs, size, FROST_HAZE_DECAY)
    veins = (1.0 - np.abs(2.0 * plasma_fractal(rngs, size, FROST_VEIN_DECAY) - 1.0)) ** 4
    brightness = np.clip(FROST_BASE + FROST_HAZE * haze + FROST_VEINS * veins, 0.0, 1.0)
    return 255.0 * brightness[..., None] * FROST_TINT


def frost(images: np.ndarray, parameters: tuple[float, float], rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """``image_weight * x + frost_weight * frost`` in 0-255 units (procedural frost: see the module docstring)."""
    image_weight, frost_weight = parameters
    blend = image_weight * images.astype(np.float64) + frost_weight * frost_texture(rngs, images.shape[1])
    return np.floor(np.clip(blend, 0.0, 255.0) + 1e-4).astype(np.uint8)


def snow(images: np.ndarray, parameters: tuple[float, ...], rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """A thresholded, zoomed Gaussian snow layer, motion-blurred at [-135, -45) degrees, added twice (once turned
    by 180 degrees) to the image whitened towards ``1.5 * grey + 0.5``."""
    mean, std, zoom, threshold, radius, sigma, image_weight = parameters
    height, width = images.shape[1:3]
    x = to_unit(images, np.float32)
    layer = np.stack([rng.normal(mean, std, size=(height, width)) for rng in rngs])[..., None]
    angles = np.array([rng.uniform(-135.0, -45.0) for rng in rngs])
    layer = clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0.0
    layer_8bit = (np.clip(layer, 0.0, 1.0) * 255.0).astype(np.uint8)  # the reference's PNG round trip
    blurred = motion_blur_8bit(layer_8bit, radius, sigma, angles)
    flakes = (blurred / 255.0).astype(np.float32)
    grey = (x @ LUMA.astype(np.float32))[..., None]
    x = image_weight * x + (1.0 - image_weight) * np.maximum(x, grey * 1.5 + 0.5)
    return to_uint8(x + flakes + np.rot90(flakes, k=2, axes=(1, 2)))

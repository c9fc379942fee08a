"""Blur corruptions: defocus, glass, motion and zoom blur, and the resampling they share with the weather.

``motion_blur_layer`` reimplements ImageMagick's ``MotionBlurImage`` (which the reference calls through Wand):
a one-sided line kernel of ``2 * ceil(radius) + 1`` taps with weights exp(-i^2 / 2 sigma^2), normalised, tap i
reading ``ceil(i * cos(angle) - 0.5)`` columns right and ``ceil(i * sin(angle) - 0.5)`` rows down, edge pixels
repeated beyond the border. Its input is the 8-bit image and its output is rounded to 8 bits, as the PNG round
trip through ImageMagick does; ImageMagick itself is not used.
``clipped_zoom`` is the reference's centre crop zoomed with ``scipy.ndimage.zoom(order=1)``, written as one
interpolation matrix per axis so a whole batch is zoomed by two matrix products.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import cv2
import numpy as np

from libkd_bench.datasets_gen.corruptions.intensity import gaussian_smooth, to_uint8, to_unit


@functools.lru_cache(maxsize=64)
def zoom_matrix(size: int, factor: float) -> np.ndarray:
    """(size, size) matrix Z with ``clipped_zoom(x) = Z @ x @ Z.T`` for one channel of a square image.

    The reference crops the central ``ceil(size / factor)`` pixels, zooms them by ``factor`` with linear
    interpolation and trims the result back to ``size``. Linear zoom is separable, so its matrix is the zoom
    of the identity.
    """
    from scipy.ndimage import zoom

    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    zoomed = zoom(np.eye(crop), (factor, 1), order=1)  # column j: the zoom of unit vector j
    trim = (zoomed.shape[0] - size) // 2
    matrix = np.zeros((size, size))
    matrix[:, top : top + crop] = zoomed[trim : trim + size]
    matrix.setflags(write=False)
    return matrix


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom every (H, W) slice of x (n, H, W, C), H == W, by ``factor`` about the centre, keeping the size."""
    matrix = zoom_matrix(x.shape[1], float(factor)).astype(x.dtype)
    channels_first = np.moveaxis(x, 3, 1)  # (n, C, H, W): Z @ x @ Z.T on every channel
    return np.ascontiguousarray(np.moveaxis(matrix @ channels_first @ matrix.T, 1, 3))


def motion_blur_layer(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's motion blur of every image of x (n, H, W, C), image i along ``angles[i]`` degrees.

    Each image's taps become one small kernel (the bounding box of its offsets) applied by ``cv2.filter2D``
    with replicated borders, which is exactly the sum of edge-clamped shifted copies.

    Args:
        x: float values (any range; the blur is a weighted mean).
        radius, sigma: kernel radius and Gaussian sigma in pixels.
        angles: (n,) blur direction per image, degrees.
    """
    n, height, width, channels = x.shape
    taps = 2 * math.ceil(radius) + 1
    steps = np.arange(taps, dtype=np.float64)
    weights = np.exp(-(steps**2) / (2.0 * sigma * sigma))
    weights /= weights.sum()
    radians = np.deg2rad(np.asarray(angles, dtype=np.float64))
    point_x, point_y = taps * np.sin(radians), taps * np.cos(radians)
    hypot = np.hypot(point_x, point_y)[:, None]
    dx = np.ceil(steps * point_y[:, None] / hypot - 0.5).astype(np.int64)  # (n, taps) column offsets
    dy = np.ceil(steps * point_x[:, None] / hypot - 0.5).astype(np.int64)  # row offsets
    source = x.astype(np.float32)
    out = np.empty_like(source)
    for i in range(n):
        top, left = dy[i].min(), dx[i].min()
        kernel = np.zeros((dy[i].max() - top + 1, dx[i].max() - left + 1), np.float32)
        np.add.at(kernel, (dy[i] - top, dx[i] - left), weights)
        blurred = cv2.filter2D(source[i], -1, kernel, anchor=(-int(left), -int(top)), borderType=cv2.BORDER_REPLICATE)
        out[i] = blurred.reshape(height, width, channels)
    return out


def defocus_blur(
    images: np.ndarray, parameters: tuple[float, float], rngs: Sequence[np.random.Generator]
) -> np.ndarray:
    """Convolve with a disk of ``radius`` px, antialiased by a Gaussian of ``alias_blur`` px (reference's disk)."""
    del rngs
    radius, alias_blur = parameters
    kernel = defocus_kernel(radius, alias_blur)
    x = to_unit(images, np.float32)
    out = np.stack([cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101) for image in x])
    return to_uint8(out)


def defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's ``disk``: a normalised aliased disk on a grid of at least 17 x 17, Gaussian-smoothed."""
    half, ksize = (8, (3, 3)) if radius <= 8 else (int(radius), (5, 5))
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.asarray(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def glass_blur(
    images: np.ndarray, parameters: tuple[float, int, int], rngs: Sequence[np.random.Generator]
) -> np.ndarray:
    """Blur, move pixels locally, blur again, as the reference does.

    The reference walks the pixels from bottom-right to top-left and "swaps" each with a neighbour offset by
    ``randint(-max_delta, max_delta)`` through a tuple assignment of numpy views, which copies the neighbour
    into the pixel and leaves the neighbour as it was; CIFAR-10-C was made that way. With the table's
    ``max_delta`` of 1 the offsets are -1 or 0 (the upper end is exclusive), so every pixel read is one the
    walk has not reached yet or the pixel itself, and a pass is one gather: pixel (h, w), for h, w in
    ``2 .. size - 1``, takes the value at (h + dy, w + dx).
    """
    sigma, max_delta, passes = parameters
    n, size = images.shape[:2]
    x = to_uint8(gaussian_smooth(to_unit(images), sigma))
    inner = np.arange(max_delta + 1, size - max_delta + 1)  # the positions the reference walks
    count = len(inner)
    # Drawn in the reference's order (row from the bottom, column from the right, then dx, dy).
    offsets = np.stack([rng.integers(-max_delta, max_delta, size=(passes, count, count, 2)) for rng in rngs])
    offsets = offsets[:, :, ::-1, ::-1]  # walk order -> ascending rows and columns
    batch = np.arange(n)[:, None, None]
    for step in range(passes):
        rows = inner[None, :, None] + offsets[:, step, :, :, 1]  # (n, count, count)
        cols = inner[None, None, :] + offsets[:, step, :, :, 0]
        moved = x[batch, rows, cols]
        x[:, inner[0] : inner[-1] + 1, inner[0] : inner[-1] + 1] = moved
    return to_uint8(gaussian_smooth(to_unit(x), sigma))


def motion_blur(images: np.ndarray, parameters: tuple[float, float], rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """ImageMagick motion blur of the 8-bit image at an angle drawn uniformly in [-45, 45) degrees, rounded."""
    radius, sigma = parameters
    angles = np.array([rng.uniform(-45.0, 45.0) for rng in rngs])
    return motion_blur_8bit(images, radius, sigma, angles).astype(np.uint8)


def motion_blur_8bit(images: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """:func:`motion_blur_layer` of 8-bit images, rounded and clipped to [0, 255] as ImageMagick writes it."""
    return np.clip(np.rint(motion_blur_layer(images, radius, sigma, angles)), 0, 255)


def zoom_blur(images: np.ndarray, stop: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Mean of the image and its centre zooms by ``np.arange(1, stop, 0.01)``, as one linear map per pixel
    grid (float32 as the reference)."""
    del rngs
    n, height, width, channels = images.shape
    x = to_unit(images, np.float32).transpose(0, 3, 1, 2).reshape(n * channels, height * width)
    blurred = x @ zoom_blur_matrix(height, float(stop)).T
    return to_uint8(blurred.reshape(n, channels, height, width).transpose(0, 2, 3, 1))


@functools.lru_cache(maxsize=8)
def zoom_blur_matrix(size: int, stop: float) -> np.ndarray:
    """(size^2, size^2) map of a flattened channel to its zoom blur: ``(I + sum_z Z_z (x) Z_z) / (zooms + 1)``.

    ``Z x Z.T`` of a row-major flattened x is ``kron(Z, Z) @ x``, so the whole mean of zooms is one matrix.
    """
    factors = np.arange(1, stop, 0.01)
    total = np.eye(size * size)
    for factor in factors:
        matrix = zoom_matrix(size, float(factor))
        total += np.kron(matrix, matrix)
    total = (total / (len(factors) + 1)).astype(np.float32)
    total.setflags(write=False)
    return total

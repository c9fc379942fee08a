"""Digital corruptions: brightness, contrast, elastic transform, pixelate and JPEG compression.

Pixelate uses Pillow's box filter down and up, as the reference; JPEG uses OpenCV's encoder (libjpeg, 4:2:0
chroma subsampling, the reference's qualities) where the reference used Pillow's: both are libjpeg with the
same defaults, but their libjpeg builds may differ by a grey level on some pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from libkd_bench.datasets_gen.corruptions.intensity import gaussian_smooth, to_uint8, to_unit


def brightness(images: np.ndarray, shift: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Add ``shift`` to the HSV value channel (clipped to [0, 1]).

    In closed form: hue and saturation fixed, every channel scales with the value V = max(R, G, B), so the
    pixel becomes ``rgb * V' / V`` with ``V' = min(V + shift, 1)`` (grey ``V'`` where V = 0). It equals
    scikit-image's ``hsv2rgb(rgb2hsv)`` round trip that the reference uses (checked in the tests) at a tenth of
    its cost.
    """
    del rngs
    x = to_unit(images)
    value = x.max(axis=-1, keepdims=True)
    raised = np.minimum(value + shift, 1.0)
    lit = value > 0
    return to_uint8(np.where(lit, x * (raised / np.where(lit, value, 1.0)), raised))


def contrast(images: np.ndarray, factor: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Scale every value's distance from its image's channel mean by ``factor``."""
    del rngs
    x = to_unit(images)
    means = x.mean(axis=(1, 2), keepdims=True)
    return to_uint8((x - means) * factor + means)


def elastic_transform(
    images: np.ndarray, parameters: tuple[float, float, float], rngs: Sequence[np.random.Generator]
) -> np.ndarray:
    """A random affine warp (three control points jittered by up to ``jitter``), then a smooth random
    displacement field (uniform noise smoothed by a Gaussian of ``smoothing`` and scaled by ``alpha``)."""
    n, height, width, _ = images.shape
    alpha, smoothing, jitter = (value * height for value in parameters)
    centre = np.float32([height // 2, width // 2])
    square = min(height, width) // 3
    source = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    x = to_unit(images, np.float32)
    warped = np.empty_like(x)
    fields = np.empty((n, 2, height, width))
    for i, rng in enumerate(rngs):
        target = source + rng.uniform(-jitter, jitter, size=source.shape).astype(np.float32)
        matrix = cv2.getAffineTransform(source, target)
        warped[i] = cv2.warpAffine(x[i], matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)
        fields[i] = rng.uniform(-1.0, 1.0, size=(2, height, width))
    smooth = gaussian_smooth(fields.reshape(n * 2, height, width), smoothing, mode="reflect", truncate=3.0) * alpha
    smooth = smooth.reshape(n, 2, height, width).astype(np.float32)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return to_uint8(bilinear_reflect(warped, rows + smooth[:, 1], cols + smooth[:, 0]))


def bilinear_reflect(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.map_coordinates(order=1, mode="reflect")`` of every channel, image i at (rows[i], cols[i]).

    Args:
        images: (n, H, W, C) floats.
        rows, cols: (n, H, W) sampling positions in pixels; beyond the border the image is mirrored about its
            edge (``d c b a | a b c d``).
    """
    n, height, width, channels = images.shape
    rows, cols = rows.astype(images.dtype), cols.astype(images.dtype)
    top, left = np.floor(rows), np.floor(cols)
    down, right = (rows - top)[..., None], (cols - left)[..., None]
    top, left = top.astype(np.intp), left.astype(np.intp)
    base = (np.arange(n) * height)[:, None, None]
    r0, r1 = (base + _mirror(top, height)) * width, (base + _mirror(top + 1, height)) * width
    c0, c1 = _mirror(left, width), _mirror(left + 1, width)
    pixels = images.reshape(n * height * width, channels)
    upper = pixels.take(r0 + c0, axis=0) * (1 - right) + pixels.take(r0 + c1, axis=0) * right
    lower = pixels.take(r1 + c0, axis=0) * (1 - right) + pixels.take(r1 + c1, axis=0) * right
    return upper * (1 - down) + lower * down


def _mirror(index: np.ndarray, size: int) -> np.ndarray:
    """Half-sample symmetric reflection of integer indices into 0..size-1."""
    if index.min() < 0 or index.max() >= size:
        index = np.mod(index, 2 * size)
        index = np.where(index >= size, 2 * size - 1 - index, index)
    return index


def pixelate(images: np.ndarray, fraction: float, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Box-filter down to ``int(size * fraction)`` pixels a side and back up (Pillow, as the reference)."""
    from PIL import Image

    del rngs
    size = images.shape[1]
    small = int(size * fraction)
    return np.stack(
        [
            np.asarray(Image.fromarray(image).resize((small, small), Image.BOX).resize((size, size), Image.BOX))
            for image in images
        ]
    )


def jpeg_compression(images: np.ndarray, quality: int, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Encode as JPEG at ``quality`` and decode (OpenCV)."""
    del rngs
    out = np.empty_like(images)
    for i, image in enumerate(images):
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        out[i] = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return out

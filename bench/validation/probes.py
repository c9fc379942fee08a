"""Probes: small classifiers trained on a set itself, to learn whether a channel the set should not carry does.

The control models were trained on natural images, so they only notice a leak they happen to read. A probe is
trained on the leak's own features (ink area, where the silhouette sits, the fill's luminance, scene colours) by
k-fold cross-validation, and its held-out accuracy says how much of the class that channel carries. The model is
a multinomial logistic regression on standardised features with a small L2 penalty, fitted by L-BFGS: cheap,
convex, and enough to find a channel that carries the class linearly or through a histogram.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

FOLDS = 5
L2 = 1e-2
LUMA = np.array([0.299, 0.587, 0.114])


def fit_logistic(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float = L2) -> np.ndarray:
    """Weights (F + 1, K) of a multinomial logistic regression (last row: bias) on standardised ``features``."""
    x = np.column_stack([features, np.ones(len(features))])
    y = np.eye(num_classes)[labels]
    n, f = x.shape

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(f, num_classes)
        z = x @ w
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        value = -(y * log_p).sum() / n + 0.5 * l2 * (w[:-1] ** 2).sum()
        grad = x.T @ (np.exp(log_p) - y) / n
        grad[:-1] += l2 * w[:-1]
        return float(value), grad.ravel()

    result = minimize(loss, np.zeros(f * num_classes), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return result.x.reshape(f, num_classes)


def fold_ids(n: int, rng: np.random.Generator, folds: int = FOLDS) -> np.ndarray:
    """A fold number in 0..folds-1 per image, balanced, in random order."""
    return rng.permutation(np.arange(n) % folds)


def _standardiser(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return lambda values: (values - mean) / std


def cross_validated_hits(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    rng: np.random.Generator,
    test_features: np.ndarray | None = None,
    test_folds: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> np.ndarray:
    """Held-out correctness of a probe, bool per test image.

    By default train and test are the same images, split into folds. With ``test_*`` given (a probe trained on
    one view of the images and read on another, e.g. on clean pixels then on textures), the test rows carry the
    fold of the training image they come from, so no test image is read by a probe trained on its own source.
    """
    labels = np.asarray(labels)
    folds = fold_ids(len(labels), rng)
    if test_features is None:
        test_features, test_folds, test_labels = features, folds, labels
    assert test_folds is not None
    assert test_labels is not None
    hits = np.zeros(len(test_labels), dtype=bool)
    for fold in range(FOLDS):
        train = folds != fold
        scale = _standardiser(features[train])
        weights = fit_logistic(scale(features[train]), labels[train], num_classes)
        rows = test_folds == fold
        x = np.column_stack([scale(test_features[rows]), np.ones(int(rows.sum()))])
        hits[rows] = (x @ weights).argmax(axis=1) == test_labels[rows]
    return hits


def majority_share(labels: np.ndarray) -> float:
    """Accuracy of always answering the most frequent class."""
    return float(np.bincount(np.asarray(labels)).max() / len(labels))


# Features ------------------------------------------------------------------------------------------------------


def luminance(images: np.ndarray) -> np.ndarray:
    """float (n, H, W) luminance in 0..255 of uint8 (n, H, W, 3) images (one severity slab)."""
    return np.asarray(images, dtype=np.float64) @ LUMA


def border_ring(height: int, width: int, width_px: int = 2) -> np.ndarray:
    """bool (H, W): the outer ``width_px`` pixels of the frame."""
    ring = np.ones((height, width), dtype=bool)
    ring[width_px:-width_px, width_px:-width_px] = False
    return ring


def ink_masks(images: np.ndarray) -> np.ndarray:
    """Pixels that differ from the page: luminance far (> 32 of 255) from the median of the 1-px frame border."""
    grey = luminance(images)
    paper = np.median(grey[:, border_ring(*grey.shape[1:], 1)], axis=1)
    return np.abs(grey - paper[:, None, None]) > 32


def silhouette_geometry(images: np.ndarray) -> np.ndarray:
    """Nuisance geometry of drawn silhouettes, float (n, 6): ink area, bounding-box centre (row, column), box
    aspect (log height / width), and ink on the outermost ring (the object cut by the frame)."""
    ink = ink_masks(images)
    n, height, width = ink.shape
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    features = np.zeros((n, 6))
    for k in range(n):
        r, c = np.flatnonzero(rows[k]), np.flatnonzero(cols[k])
        if len(r) == 0:
            continue
        features[k] = [
            ink[k].mean(),
            (r[0] + r[-1]) / 2 / height,
            (c[0] + c[-1]) / 2 / width,
            np.log((r[-1] - r[0] + 1) / (c[-1] - c[0] + 1)),
            ink[k][border_ring(height, width, 1)].mean(),
            0.0,
        ]
    features[:, 5] = features[:, 4] > 0
    return features


def silhouette_pixels(images: np.ndarray, size: int = 16) -> np.ndarray:
    """The ink mask pooled to ``size`` x ``size`` (share of ink per cell), float (n, size * size): the outline."""
    ink = ink_masks(images).astype(np.float64)
    n, height, width = ink.shape
    return ink.reshape(n, size, height // size, size, width // size).mean(axis=(2, 4)).reshape(n, -1)


def fill_luminance(images: np.ndarray) -> np.ndarray:
    """Mean and spread of the luminance inside the drawn region, float (n, 2)."""
    grey = luminance(images)
    ink = ink_masks(images) | (grey > 0)  # a fill darker than the threshold is still fill on a black page
    inside = np.where(ink, grey, np.nan)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(inside.reshape(len(grey), -1), axis=1)
        spread = np.nanstd(inside.reshape(len(grey), -1), axis=1)
    return np.nan_to_num(np.column_stack([mean, spread]))


def colour_histograms(images: np.ndarray, masks: np.ndarray, bins: int = 4) -> np.ndarray:
    """Joint RGB histogram (``bins`` per channel) of the pixels in ``masks``, normalised, float (n, bins**3)."""
    images = np.asarray(images)
    codes = (images // (256 // bins)).astype(np.int64)
    flat = (codes[..., 0] * bins + codes[..., 1]) * bins + codes[..., 2]  # (n, H, W)
    n = len(images)
    keys = (flat + bins**3 * np.arange(n)[:, None, None])[masks]
    counts = np.bincount(keys, minlength=n * bins**3).reshape(n, bins**3).astype(np.float64)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)

"""The CIFAR-10-C parameter table: one line per corruption, severity 1 first.

Values are those of ``make_cifar_c.py`` (Hendrycks & Dietterich, the script that made CIFAR-10-C), which are
CIFAR-scale and differ from the ImageNet-C table: intensities are fractions of 255, lengths are pixels of the
32 x 32 image. ``tests/test_corruptions.py`` checks this table against the published values.
"""

from __future__ import annotations

FAMILY = "corruptions"
SET_PREFIX = "corruption-"
SEVERITIES = (1, 2, 3, 4, 5)

# name: (group, per-severity parameters). Units and meaning per corruption:
CIFAR10_C: dict[str, tuple[str, tuple[object, ...]]] = {
    # sigma of additive Gaussian noise, [0, 1] intensity
    "gaussian-noise": ("noise", (0.04, 0.06, 0.08, 0.09, 0.10)),
    # photons per unit intensity: Poisson(x * c) / c
    "shot-noise": ("noise", (500, 250, 100, 75, 50)),
    # fraction of values set to 0 or 1 (salt and pepper, per channel)
    "impulse-noise": ("noise", (0.01, 0.02, 0.03, 0.05, 0.07)),
    # (disk radius px, sigma px of the Gaussian that antialiases the disk)
    "defocus-blur": ("blur", ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))),
    # (Gaussian sigma px, max pixel displacement, shuffling passes)
    "glass-blur": ("blur", ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))),
    # (radius px, sigma px) of ImageMagick's motion blur, angle uniform in [-45, 45) degrees
    "motion-blur": ("blur", ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))),
    # zoom factors np.arange(1, stop, 0.01) averaged with the image; the stop per severity
    "zoom-blur": ("blur", (1.06, 1.11, 1.16, 1.21, 1.26)),
    # (mean, std of the snow layer, its zoom, threshold, motion-blur radius px, sigma px, image weight)
    "snow": (
        "weather",
        (
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ),
    ),
    # (image weight, frost weight)
    "frost": ("weather", ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))),
    # (fog strength, wibble decay of the plasma fractal)
    "fog": ("weather", ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))),
    # value (HSV) added, [0, 1] intensity
    "brightness": ("digital", (0.05, 0.1, 0.15, 0.2, 0.3)),
    # factor on the distance from the per-channel mean
    "contrast": ("digital", (0.75, 0.5, 0.4, 0.3, 0.15)),
    # (displacement scale, its smoothing sigma, affine jitter), as fractions of the image size
    "elastic-transform": (
        "digital",
        ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    ),
    # side of the downsampled image as a fraction of 32 (box filter down and up)
    "pixelate": ("digital", (0.95, 0.9, 0.85, 0.75, 0.65)),
    # JPEG quality
    "jpeg-compression": ("digital", (80, 65, 58, 50, 40)),
}

CORRUPTIONS = tuple(CIFAR10_C)
CORRUPTION_SETS = tuple(SET_PREFIX + name for name in CORRUPTIONS)


def parameters(name: str, severity: int) -> object:
    """The parameters of corruption ``name`` at 1-based ``severity``."""
    return CIFAR10_C[name][1][severity - 1]

"""``corruption-*``: the 15 common corruptions of CIFAR-10-C, one set each, severities 1-5.

Each set applies one corruption of :mod:`libkd_bench.datasets_gen.corruptions` with the CIFAR-10-C parameter
table (``table``, the set's one parameter, names it: ``cifar10-c`` is the only table). Random corruptions draw
from one generator per (seed, set, severity, image index), so a set is byte-identical for any worker count
and chunking. The sets form the family ``corruptions``: ``generate-sets --sets corruptions`` builds all 15. The
family is opt-in (left out when ``--sets`` is not given): 15 sets x 5 severities is 75 copies of the split,
about 2.3 GB of images and 75 forward passes per model on the full 10,000 images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from libkd_bench.datasets_gen.corruptions import blur, digital, noise, weather
from libkd_bench.datasets_gen.corruptions.table import CIFAR10_C, FAMILY, SET_PREFIX, SEVERITIES, parameters
from libkd_bench.datasets_gen.registry import (
    Batch,
    Cue,
    Derived,
    check_ranges,
    register_family,
    register_generator,
)

Transform = Callable[[np.ndarray, object, Sequence[np.random.Generator]], np.ndarray]
TABLES = ("cifar10-c",)


@dataclass(frozen=True)
class CorruptionSpec:
    """How one corruption is made: its transform, whether it draws random numbers, and one line for list-sets."""

    transform: Transform
    random: bool
    description: str


SPECS: dict[str, CorruptionSpec] = {
    "gaussian-noise": CorruptionSpec(noise.gaussian_noise, True, "additive Gaussian noise"),
    "shot-noise": CorruptionSpec(noise.shot_noise, True, "Poisson (shot) noise"),
    "impulse-noise": CorruptionSpec(noise.impulse_noise, True, "salt-and-pepper noise"),
    "defocus-blur": CorruptionSpec(blur.defocus_blur, False, "antialiased disk blur"),
    "glass-blur": CorruptionSpec(blur.glass_blur, True, "blur, local pixel moves, blur"),
    "motion-blur": CorruptionSpec(blur.motion_blur, True, "line blur at a random angle (ImageMagick's kernel)"),
    "zoom-blur": CorruptionSpec(blur.zoom_blur, False, "mean of centre zooms"),
    "snow": CorruptionSpec(weather.snow, True, "motion-blurred snow layer over a whitened image"),
    "frost": CorruptionSpec(weather.frost, True, "procedural frost texture blended in (not the frost photos)"),
    "fog": CorruptionSpec(weather.fog, True, "plasma-fractal fog"),
    "brightness": CorruptionSpec(digital.brightness, False, "HSV value raised"),
    "contrast": CorruptionSpec(digital.contrast, False, "contrast lowered about the channel means"),
    "elastic-transform": CorruptionSpec(digital.elastic_transform, True, "random affine and elastic warp"),
    "pixelate": CorruptionSpec(digital.pixelate, False, "box-filtered down and up"),
    "jpeg-compression": CorruptionSpec(digital.jpeg_compression, False, "JPEG at quality 80-40 (OpenCV)"),
}


@dataclass(frozen=True)
class CorruptionConfig:
    """The sets' one parameter: which parameter table to use."""

    table: str = TABLES[0]

    def __post_init__(self) -> None:
        check_ranges("corruption", self, {"table": self.table in TABLES})


def corrupt(name: str, batch: Batch, severity: int) -> np.ndarray:
    """The chunk's images with corruption ``name`` at ``severity`` (1-5) of the CIFAR-10-C table."""
    spec = SPECS[name]
    rngs = batch.rngs() if spec.random else []
    return spec.transform(batch.images, parameters(name, severity), rngs)


def _register(name: str) -> None:
    group = CIFAR10_C[name][0]

    def generate(batch: Batch, severity: int, /, *, table: str) -> Derived:
        del table  # one table so far; the parameter records which one made the set
        return Derived(corrupt(name, batch, severity), batch.labels)

    generate.__name__ = generate.__qualname__ = "corruption_" + name.replace("-", "_")
    register_generator(
        SET_PREFIX + name,
        cue=Cue.COMMON_CORRUPTION,
        description=f"CIFAR-10-C {group}: {SPECS[name].description} (family {FAMILY}, opt-in: --sets {FAMILY})",
        severity_parameter="severity",
        severities=SEVERITIES,
        defaults={"table": TABLES[0]},
        config=CorruptionConfig,
    )(generate)


for _name in CIFAR10_C:
    _register(_name)
register_family(FAMILY, [SET_PREFIX + name for name in CIFAR10_C], opt_in=True, rank=120)

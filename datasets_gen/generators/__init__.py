"""Built-in generators; importing this package registers them."""

from libkd_bench.datasets_gen.generators import (  # noqa: F401
    cifar10g,
    clean,
    corruptions,
    cue_conflict,
    patch_noise,
    scramble,
    segmentation,
    shape,
    superpixel,
    texture,
)

"""Built-in generators; importing this package registers them."""

from datasets_gen.generators import clean, patch_noise, scramble, superpixel  # noqa: F401

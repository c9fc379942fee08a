"""Texture synthesis from an object's own pixels behind one interface: ``quilt`` (default) and ``gatys``.

``synthesize(backend, images, masks, rngs, config)`` returns full 32x32 textures made from each image's
foreground (the masks of the ``segmentation`` set). The ``texture`` set stores them once; ``texture-overlay``
and ``cue-conflict`` read the stored textures, so every set shows the same texture of an image. Importing this
package registers the backends without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from libkd_bench.datasets_gen.texture_synthesis import gatys, quilting  # noqa: F401  (importing registers the backends)
from libkd_bench.datasets_gen.texture_synthesis.base import (
    Synthesizer,
    TextureConfig,
    get_synthesizer,
    register_synthesizer,
    synthesizer_names,
)

__all__ = [
    "Synthesizer",
    "TextureConfig",
    "backend_identity",
    "get_synthesizer",
    "register_synthesizer",
    "synthesize",
    "synthesizer_names",
]


def synthesize(
    backend: str, images: np.ndarray, masks: np.ndarray, rngs: Sequence[np.random.Generator], config: TextureConfig
) -> np.ndarray:
    """uint8 textures (n, H, W, 3) of each image's foreground by ``backend``."""
    return get_synthesizer(backend).synthesize(images, masks, rngs, config)


def backend_identity(backend: str) -> dict[str, Any]:
    """The identity of what ``backend`` loads (for the manifest); BenchError when a weights file is missing."""
    return get_synthesizer(backend).identity()

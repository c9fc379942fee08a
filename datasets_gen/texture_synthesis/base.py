"""The texture-synthesis interface: one configuration, one protocol, one registry of backends.

A backend turns uint8 images (n, 32, 32, 3) and their foreground masks (n, 32, 32) into uint8 textures
(n, 32, 32, 3) synthesised from the foreground alone: the object's colours and local patterns, not its
outline and not its background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from libkd_bench.core.registry import Registry
from libkd_bench.datasets_gen.registry import check_ranges


@dataclass(frozen=True)
class TextureConfig:
    """Parameters of the ``texture`` set; each backend reads the ones it needs.

    Attributes:
        patch_size: quilting patch side in pixels, 3..16. The default 4 (1/64 of the image) is smaller than any
            recognisable object part: with 8 px patches whole parts were copied (a texture of an airplane
            showed two small airplanes).
        overlap: pixels shared by neighbouring quilting patches, cut along the minimum-error path. 1..patch_size/2.
        tolerance: a quilting patch is drawn among the candidates whose overlap error is within (1 + tolerance)
            of the best one; larger gives more variety, smaller smoother seams. 0..10.
        gatys_size: side in pixels of the image VGG-19 sees (source enlarged, result reduced to 32). 32..512.
        gatys_steps: fixed number of Adam steps of Gram-matrix matching. 1..10000.
        gatys_lr: Adam's learning rate, in pixel intensity units of [0, 1]. (0, 1].
    """

    patch_size: int = 4
    overlap: int = 2
    tolerance: float = 0.5
    gatys_size: int = 64
    gatys_steps: int = 300
    gatys_lr: float = 0.03

    def __post_init__(self) -> None:
        checks = {
            "patch_size": 3 <= self.patch_size <= 16,
            "overlap": 1 <= self.overlap <= self.patch_size // 2,
            "tolerance": 0.0 <= self.tolerance <= 10.0,
            "gatys_size": 32 <= self.gatys_size <= 512,
            "gatys_steps": 1 <= self.gatys_steps <= 10000,
            "gatys_lr": 0.0 < self.gatys_lr <= 1.0,
        }
        check_ranges("texture", self, checks)


class Synthesizer(Protocol):
    """A texture-synthesis backend."""

    def identity(self) -> dict[str, Any]:
        """What the backend loads (weights file and sha256); ``{}`` when weight-free. Raises BenchError when a
        needed file is missing."""
        ...

    def synthesize(
        self, images: np.ndarray, masks: np.ndarray, rngs: Sequence[np.random.Generator], config: TextureConfig
    ) -> np.ndarray:
        """uint8 textures (n, H, W, 3) from each image's foreground pixels; one generator per image."""
        ...


_REGISTRY: Registry[Synthesizer] = Registry("texture backend")
register_synthesizer = _REGISTRY.instance_of
synthesizer_names = _REGISTRY.names
get_synthesizer = _REGISTRY.get

"""Pretrained torchvision weights for the neural backends, read from the torch hub cache and never downloaded.

A neural backend (``fcn`` segmentation, ``gatys`` texture synthesis) names a torchvision weights enum member.
Its file must already sit where torchvision looks for it, ``torch.hub.get_dir()/checkpoints/<file>``
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). Offline, a missing file is a
one-line error naming the file, the folder and the address to fetch it from, raised when the set is planned,
before anything is built. The identity recorded in a manifest is the enum member, the file name and the
file's sha256, so sets made with other weights never pass for each other.

On the CPU the networks run on one thread (``libkd_bench.core.torch_runtime.torch_threads(1)``): parallelism comes from
the worker processes of ``generate-sets --workers``, results cannot depend on a thread count that varies with
the worker count, and two workers with two threads each on two cores would spin against each other (measured:
3.4 times slower).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.core.provenance import sha256_file


def imagenet_normalize(x: Any) -> Any:
    """``x`` (n, 3, H, W) in [0, 1] normalised with the ImageNet statistics both pretrained networks expect."""
    import torch

    imagenet_mean, imagenet_std = PRESET_STATS[Preset.IMAGENET]
    mean = torch.tensor(imagenet_mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(imagenet_std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def checkpoint_path(weights: Any) -> Path:
    """Where torchvision keeps the file of ``weights`` (a torchvision ``WeightsEnum`` member)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def require_weights_file(weights: Any, backend: str) -> Path:
    """The path of the weights file, or a BenchError saying where to put it."""
    path = checkpoint_path(weights)
    if not path.is_file():
        raise BenchError(
            f"backend {backend} needs the weights file {path.name}, not found in {path.parent}; "
            f"download {weights.url} into that folder (or set TORCH_HOME to a cache that holds it)"
        )
    return path


def weights_identity(weights: Any, backend: str) -> dict[str, Any]:
    """What a manifest records about the weights: enum member, file name and sha256 of the file."""
    path = require_weights_file(weights, backend)
    return {"weights": f"{type(weights).__name__}.{weights.name}", "file": path.name, "sha256": sha256_file(path)}

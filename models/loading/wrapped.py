"""The wrapped model every scorer calls: float images in [0, 1] in, one (N, num_classes) logits tensor out.

Preprocessing lives inside the module, so a scorer never needs to know a checkpoint's normalisation or input
size: inputs are resized to the network's input size when they differ (and clamped to [0, 1] after bicubic
overshoot, as an image resize would), then normalised with the spec's mean and std.

Outputs are reduced to one tensor: a tensor is kept; from a tuple, list or dict the top-level tensors of shape
(N, num_classes) are taken: one is the logits (RepDistiller's ``is_feat`` forward returns
``([features...], logits)``), several are heads to average (DeiT-style class and distillation heads).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.models.spec import Interpolation, ModelSpec


def output_tensors(output: object) -> list[torch.Tensor] | None:
    """The tensors a network returned: itself, those of a tuple or list, a mapping's values; None for any other
    kind of output."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [o for o in output if isinstance(o, torch.Tensor)]
    if isinstance(output, Mapping):
        return [o for o in output.values() if isinstance(o, torch.Tensor)]
    return None


def select_logits(output: object, batch: int, num_classes: int) -> torch.Tensor:
    """The (batch, num_classes) logits in a network's ``output`` (see the module docstring)."""
    candidates = output_tensors(output)
    if candidates is None:
        raise BenchError(f"the network returned a {type(output).__name__}; expected logits (a tensor)")
    heads = [t for t in candidates if tuple(t.shape) == (batch, num_classes)]
    if not heads:
        shapes = ", ".join(str(list(t.shape)) for t in candidates) or "no tensor"
        raise BenchError(
            f"the network returned {shapes}, no ({batch}, {num_classes}) logits; check --num-classes and --arch"
        )
    return heads[0] if len(heads) == 1 else torch.stack(heads).mean(dim=0)


class NormalizedClassifier(nn.Module):
    """``network`` behind resizing and normalisation; takes float (N, 3, H, W) in [0, 1]."""

    def __init__(self, network: nn.Module, spec: ModelSpec) -> None:
        super().__init__()
        self.network = network
        self.num_classes = spec.num_classes
        self.input_size = spec.input_size
        self.interpolation = spec.interpolation
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("class_indices", None, persistent=False)

    def map_classes(self, indices: tuple[int, ...]) -> None:
        """Return only these outputs, in this order (see :mod:`libkd_bench.models.loading.class_map`)."""
        self.class_indices = torch.tensor(indices, dtype=torch.long, device=self.mean.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            smooth = self.interpolation is not Interpolation.NEAREST
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode=self.interpolation.value, align_corners=False if smooth else None)
            if self.interpolation is Interpolation.BICUBIC:
                x = x.clamp(0.0, 1.0)
        x = (x - self.mean) / self.std
        logits = select_logits(self.network(x), images.shape[0], self.num_classes)
        return logits if self.class_indices is None else logits.index_select(1, self.class_indices)

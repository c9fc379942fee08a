"""Per-channel normalisation statistics of images scaled to [0, 1]: the named presets a model is trained with.

Used by the models (what a checkpoint expects) and by the set generators' pretrained backends (ImageNet
statistics), so it lives below both. Imports nothing but the standard library.
"""

from __future__ import annotations

import enum

Triple = tuple[float, float, float]


class Preset(str, enum.Enum):
    """Named per-channel normalisation statistics (RGB, for images scaled to [0, 1])."""

    CIFAR10 = "cifar10"
    CIFAR10_KUANGLIU = "cifar10-kuangliu"
    CIFAR10_HUYVNPHAN = "cifar10-huyvnphan"
    CIFAR100 = "cifar100"
    IMAGENET = "imagenet"
    NONE = "none"


# mean, std per preset. cifar10/cifar100: the training-set statistics (cifar100 as RepDistiller normalises);
# cifar10-kuangliu: the std kuangliu/pytorch-cifar and chenyaofo/pytorch-cifar-models train with;
# cifar10-huyvnphan: huyvnphan/PyTorch_CIFAR10's rounding of the cifar10 std; imagenet: torchvision's;
# none: the network sees [0, 1] inputs unchanged (or normalises inside itself).
PRESET_STATS: dict[Preset, tuple[Triple, Triple]] = {
    Preset.CIFAR10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    Preset.CIFAR10_KUANGLIU: ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    Preset.CIFAR10_HUYVNPHAN: ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    Preset.CIFAR100: ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    Preset.IMAGENET: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    Preset.NONE: ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}

"""CIFAR ResNets (He et al. 2016, section 4.2): three stages of basic blocks on 32x32 inputs, depth = 6n + 2.

Two layouts that real checkpoints come in:

- option A, ``resnet{20,32,44,56,110}_a``: akamaster/pytorch_resnet_cifar10 (``resnet.py``). Stages of
  16/32/64 channels; a stage's first block subsamples its identity shortcut by 2 and zero-pads the missing
  channels, so shortcuts carry no weights; the classifier is ``linear``. Trained with ImageNet mean/std,
  hence that preset by default.
- option B, ``resnet{8,14,20,32,44,56,110}_b``, ``resnet8x4``, ``resnet32x4``: HobbitLong/RepDistiller
  (``models/resnet.py``), whose keys torchdistill's ``ResNet4Cifar`` shares. A shortcut that changes shape is a
  1x1 convolution with batch norm (``downsample.0``/``downsample.1``); the classifier is ``fc``. The ``x4``
  models widen the stem and stages to 32/64/128/256 channels, so even the first stage has a projection shortcut.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.registry import register_architecture

AKAMASTER = "akamaster/pytorch_resnet_cifar10 resnet.py"
REPDISTILLER = "HobbitLong/RepDistiller models/resnet.py (= torchdistill ResNet4Cifar)"


def _conv3x3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: keep every second pixel and zero-pad ``pad`` channels on each side (no weights)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlockA(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        changes_shape = stride != 1 or in_planes != planes
        self.shortcut = ZeroPadShortcut(planes // 4) if changes_shape else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNetA(nn.Module):
    """akamaster's ResNet: ``blocks`` basic blocks per stage, option A shortcuts, ``linear`` head."""

    def __init__(self, blocks: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = _conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for index, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
            layers = []
            for block_stride in [stride] + [1] * (blocks - 1):
                layers.append(BasicBlockA(in_planes, planes, block_stride))
                in_planes = planes
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.linear = nn.Linear(64, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 64-d features before the classifier."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))


class BasicBlockB(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class CifarResNetB(nn.Module):
    """RepDistiller's ResNet: depth 6n + 2, stem and stage widths ``widths``, projection shortcuts, ``fc`` head."""

    def __init__(self, depth: int, widths: tuple[int, int, int, int] = (16, 16, 32, 64), num_classes: int = 10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = _conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_planes = widths[0]
        for index, (planes, stride) in enumerate(zip(widths[1:], (1, 2, 2), strict=True), start=1):
            layers = []
            for block_stride in [stride] + [1] * (blocks - 1):
                layers.append(BasicBlockB(in_planes, planes, block_stride))
                in_planes = planes
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


for _depth in (20, 32, 44, 56, 110):
    register_architecture(
        f"resnet{_depth}_a",
        family="cifar_resnet_a",
        source=AKAMASTER,
        description=f"ResNet-{_depth}, option A (zero-pad) shortcuts, 'linear' head; ImageNet mean/std",
        classifier=("linear",),
        preset=Preset.IMAGENET,
        attention_layer="layer3",
    )(functools.partial(CifarResNetA, (_depth - 2) // 6))

for _depth in (8, 14, 20, 32, 44, 56, 110):
    register_architecture(
        f"resnet{_depth}_b",
        family="cifar_resnet_b",
        source=REPDISTILLER,
        description=f"ResNet-{_depth}, option B (1x1 conv + BN) shortcuts, 'fc' head",
        classifier=("fc",),
        attention_layer="layer3",
    )(functools.partial(CifarResNetB, _depth, (16, 16, 32, 64)))

for _depth in (8, 32):
    register_architecture(
        f"resnet{_depth}x4",
        family="cifar_resnet_b",
        source=REPDISTILLER,
        description=f"ResNet-{_depth} with 4x wider stages (32/64/128/256), option B shortcuts, 'fc' head",
        classifier=("fc",),
        attention_layer="layer3",
    )(functools.partial(CifarResNetB, _depth, (32, 64, 128, 256)))

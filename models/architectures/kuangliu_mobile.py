"""Depthwise-convolution networks of kuangliu/pytorch-cifar (``models/*.py`` at commit
49b7aa97b0c12fe0d4054e670403a16b6b834ddd): ShuffleNetV2 and EfficientNet-B0 on stride-1 stems.

Checkpoints, normalisation and the ``cifar10-kuangliu`` preset are those of
:mod:`libkd_bench.models.architectures.kuangliu`.

- ``shufflenetv2_{0_5,1_0,1_5,2_0}_kuangliu`` (``shufflenetv2.py``, ``ShuffleNetV2(net_size)``): a 3x3 stem
  ``conv1``/``bn1`` to 24 channels, stages ``layer1``..``layer3`` of a stride-2 ``DownBlock`` (``conv1``..
  ``conv5``) and 3/7/3 split-and-shuffle blocks (``conv1``..``conv3``), a 1x1 ``conv2``/``bn2``, head
  ``linear`` (fixed at 10 classes upstream). RepDistiller's ``ShuffleV2`` is the same network with a 1x1 stem
  (``shufflenet_v2``), so the stem's kernel tells the two apart.
- ``efficientnet_b0_kuangliu`` (``efficientnet.py``, ``EfficientNetB0``): 3x3 32-channel stem, 16 blocks
  ``layers.{i}`` of expansion ``conv1``/``bn1`` (present but skipped at expansion 1), depthwise ``conv2``/``bn2``
  (3x3 or 5x5), squeeze-excitation ``se.se1``/``se.se2`` with swish, projection ``conv3``/``bn3``, head
  ``linear`` after dropout 0.2. Upstream's drop-connect rate is always 0 (its block counter never advances),
  so it is left out.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.architectures import shufflenet
from libkd_bench.models.architectures.kuangliu import FAMILY, REPOSITORY, _conv
from libkd_bench.models.registry import repository_registrar


class ShuffleNetV2(shufflenet.ShuffleNetV2):
    """RepDistiller's ShuffleNetV2 with kuangliu's 3x3 stem (the one RepDistiller commented out)."""

    def __init__(self, out_channels: tuple[int, int, int, int], num_classes: int = 10) -> None:
        super().__init__(out_channels, (3, 7, 3), num_classes)
        self.conv1 = _conv(3, 24, 3)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.se1 = nn.Conv2d(channels, se_channels, kernel_size=1)
        self.se2 = nn.Conv2d(se_channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.se2(F.silu(self.se1(F.adaptive_avg_pool2d(x, 1)))))


class MBConvBlock(nn.Module):
    """Expansion, depthwise convolution, squeeze-excitation (a quarter of the input channels), projection."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        self.expansion = expansion
        channels = expansion * in_channels
        self.conv1 = _conv(in_channels, channels, 1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = SqueezeExcitation(channels, int(in_channels * 0.25))
        self.conv3 = _conv(channels, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expansion == 1 else F.silu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.se(F.silu(self.bn2(self.conv2(out))))))
        return out + x if self.has_skip else out


class EfficientNet(nn.Module):
    # expansion, out_channels, blocks, kernel, stride (EfficientNetB0)
    STAGES = (
        (1, 16, 1, 3, 1),
        (6, 24, 2, 3, 2),
        (6, 40, 2, 5, 2),
        (6, 80, 3, 3, 2),
        (6, 112, 3, 5, 1),
        (6, 192, 4, 5, 2),
        (6, 320, 1, 3, 1),
    )

    def __init__(self, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        self.dropout = dropout
        self.conv1 = _conv(3, 32, 3)
        self.bn1 = nn.BatchNorm2d(32)
        layers, in_channels = [], 32
        for expansion, out_channels, count, kernel, stride in self.STAGES:
            for block_stride in [stride] + [1] * (count - 1):
                layers.append(MBConvBlock(in_channels, out_channels, kernel, block_stride, expansion))
                in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.silu(self.bn1(self.conv1(x))))
        out = F.dropout(F.adaptive_avg_pool2d(out, 1).flatten(1), self.dropout, self.training)
        return self.linear(out)


_register_in_repository = repository_registrar(FAMILY, REPOSITORY, Preset.CIFAR10_KUANGLIU)


def _register(name: str, description: str, attention_layer: str, builder: functools.partial) -> None:
    _register_in_repository(name, description, "linear", attention_layer, builder)


for _label, _channels in (
    ("0_5", (48, 96, 192, 1024)),
    ("1_0", (116, 232, 464, 1024)),
    ("1_5", (176, 352, 704, 1024)),
    ("2_0", (224, 488, 976, 2048)),
):
    _register(
        f"shufflenetv2_{_label}_kuangliu",
        f"ShuffleNetV2 net size {_label.replace('_', '.')}: 3x3 stem, 'layer{{1,2,3}}', 'linear' head",
        "layer3",
        functools.partial(ShuffleNetV2, _channels),
    )
_register(
    "efficientnet_b0_kuangliu",
    "EfficientNet-B0 on a stride-1 stem: 'layers.{i}' MBConv blocks with 'se', 'linear' head",
    "layers",
    functools.partial(EfficientNet),
)

"""ResNet variants of kuangliu/pytorch-cifar (``models/*.py`` at commit 49b7aa97b0c12fe0d4054e670403a16b6b834ddd):
grouped, dual-path, squeeze-excitation and RegNet bottlenecks on a stride-1 stem.

Checkpoints, normalisation and the ``cifar10-kuangliu`` preset are those of
:mod:`libkd_bench.models.architectures.kuangliu`. Upstream pools the last stage with a fixed window equal to its
32x32-input map (``F.avg_pool2d(out, 4)`` or ``8``); global average pooling here is the same on 32x32 inputs.

- ``resnext29_{2x64d,4x64d,8x64d,32x4d}_kuangliu`` (``resnext.py``): a 1x1 (not 3x3) 64-channel stem
  ``conv1``/``bn1``, three stages ``layer1``..``layer3`` of three grouped bottlenecks whose width doubles per
  stage, ``shortcut.0/1`` projections, head ``linear``.
- ``dpn{26,92}_kuangliu`` (``dpn.py``): 3x3 stem, four stages of dual-path bottlenecks (32-group 3x3 convs,
  ``conv3`` to residual plus dense channels, a ``shortcut`` projection on each stage's first block), head
  ``linear`` over residual and accumulated dense channels. Upstream fixes the head at 10 classes.
- ``senet18_kuangliu`` (``senet.py``, ``SENet18``): the ResNet-18 stem and stages of pre-activation blocks, each
  with squeeze-excitation 1x1 convolutions ``fc1``/``fc2`` (with bias, planes/16 hidden channels) and a
  conv-only ``shortcut.0`` where the shape changes.
- ``regnet{x_200mf,x_400mf,y_400mf}_kuangliu`` (``regnet.py``): 3x3 64-channel stem, four stages of
  bottlenecks with grouped 3x3 convs (fixed group width), ``se.se1``/``se.se2`` only in the Y model,
  ``shortcut.0/1`` projections, head ``linear``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.architectures.kuangliu import FAMILY, REPOSITORY, PreActBlock, ResNet, _conv, _projection
from libkd_bench.models.registry import repository_registrar


class ResNeXtBlock(nn.Module):
    """1x1 reduce to ``cardinality * width`` channels, grouped 3x3, 1x1 expand to twice that."""

    expansion = 2

    def __init__(self, in_planes: int, cardinality: int, width: int, stride: int) -> None:
        super().__init__()
        group_width = cardinality * width
        self.conv1 = _conv(in_planes, group_width, 1)
        self.bn1 = nn.BatchNorm2d(group_width)
        self.conv2 = nn.Conv2d(group_width, group_width, 3, stride, 1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(group_width)
        self.conv3 = _conv(group_width, self.expansion * group_width, 1)
        self.bn3 = nn.BatchNorm2d(self.expansion * group_width)
        self.shortcut = _projection(in_planes, self.expansion * group_width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNeXt29(nn.Module):
    def __init__(self, cardinality: int, width: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64, 1)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        for index in range(1, 4):
            layers = []
            for stride in (1 if index == 1 else 2, 1, 1):
                layers.append(ResNeXtBlock(in_planes, cardinality, width, stride))
                in_planes = ResNeXtBlock.expansion * cardinality * width
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            width *= 2
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class DualPathBlock(nn.Module):
    """A bottleneck whose output adds its first ``out_planes`` channels to the input's (the residual path) and
    concatenates its ``dense_depth`` other channels to the input's rest (the dense path)."""

    def __init__(
        self, last_planes: int, in_planes: int, out_planes: int, dense_depth: int, stride: int, first: bool
    ) -> None:
        super().__init__()
        self.out_planes = out_planes
        self.conv1 = _conv(last_planes, in_planes, 1)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv2 = nn.Conv2d(in_planes, in_planes, 3, stride, 1, groups=32, bias=False)
        self.bn2 = nn.BatchNorm2d(in_planes)
        self.conv3 = _conv(in_planes, out_planes + dense_depth, 1)
        self.bn3 = nn.BatchNorm2d(out_planes + dense_depth)
        self.shortcut = nn.Sequential()
        if first:  # upstream projects on every stage's first block, whatever the shapes
            self.shortcut = nn.Sequential(
                _conv(last_planes, out_planes + dense_depth, 1, stride), nn.BatchNorm2d(out_planes + dense_depth)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        x = self.shortcut(x)
        d = self.out_planes
        return F.relu(torch.cat([x[:, :d] + out[:, :d], x[:, d:], out[:, d:]], 1))


DPN_IN_PLANES = (96, 192, 384, 768)
DPN_OUT_PLANES = (256, 512, 1024, 2048)
DPN_DENSE_DEPTH = (16, 32, 24, 128)


class DPN(nn.Module):
    def __init__(self, blocks: tuple[int, int, int, int], num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64, 3)
        self.bn1 = nn.BatchNorm2d(64)
        last_planes = 64
        stages = zip(DPN_IN_PLANES, DPN_OUT_PLANES, blocks, DPN_DENSE_DEPTH, strict=True)
        for index, (in_planes, out_planes, count, dense_depth) in enumerate(stages, start=1):
            layers = []
            for i, stride in enumerate([1 if index == 1 else 2] + [1] * (count - 1)):
                layers.append(DualPathBlock(last_planes, in_planes, out_planes, dense_depth, stride, i == 0))
                last_planes = out_planes + (i + 2) * dense_depth
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.linear = nn.Linear(last_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class SEPreActBlock(PreActBlock):
    """kuangliu's pre-activation block with squeeze-excitation on the residual branch."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride)
        self.fc1 = nn.Conv2d(planes, planes // 16, kernel_size=1)
        self.fc2 = nn.Conv2d(planes // 16, planes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        weight = torch.sigmoid(self.fc2(F.relu(self.fc1(out.mean((2, 3), keepdim=True)))))
        return out * weight + shortcut


class SqueezeExcitation(nn.Module):
    def __init__(self, planes: int, se_planes: int) -> None:
        super().__init__()
        self.se1 = nn.Conv2d(planes, se_planes, kernel_size=1)
        self.se2 = nn.Conv2d(se_planes, planes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(x, 1)))))


class RegNetBlock(nn.Module):
    """1x1, grouped 3x3 (``group_width`` channels a group), optional squeeze-excitation, 1x1 (bottleneck ratio 1)."""

    def __init__(self, w_in: int, w_out: int, stride: int, group_width: int, se_ratio: float) -> None:
        super().__init__()
        self.conv1 = _conv(w_in, w_out, 1)
        self.bn1 = nn.BatchNorm2d(w_out)
        self.conv2 = nn.Conv2d(w_out, w_out, 3, stride, 1, groups=w_out // group_width, bias=False)
        self.bn2 = nn.BatchNorm2d(w_out)
        self.se = SqueezeExcitation(w_out, round(w_in * se_ratio)) if se_ratio > 0 else None
        self.conv3 = _conv(w_out, w_out, 1)
        self.bn3 = nn.BatchNorm2d(w_out)
        self.shortcut = _projection(w_in, w_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        if self.se is not None:
            out = self.se(out)
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class RegNet(nn.Module):
    def __init__(
        self,
        depths: tuple[int, ...],
        widths: tuple[int, ...],
        group_width: int,
        se_ratio: float = 0.0,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64, 3)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        for index, (depth, width, stride) in enumerate(zip(depths, widths, (1, 1, 2, 2), strict=True), start=1):
            layers = []
            for i in range(depth):
                layers.append(RegNetBlock(in_planes, width, stride if i == 0 else 1, group_width, se_ratio))
                in_planes = width
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.linear = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


_register_in_repository = repository_registrar(FAMILY, REPOSITORY, Preset.CIFAR10_KUANGLIU)


def _register(name: str, description: str, attention_layer: str, builder: functools.partial) -> None:
    _register_in_repository(name, description, "linear", attention_layer, builder)


for _cardinality, _width in ((2, 64), (4, 64), (8, 64), (32, 4)):
    _register(
        f"resnext29_{_cardinality}x{_width}d_kuangliu",
        f"ResNeXt29 {_cardinality}x{_width}d: 1x1 stem, three stages of grouped bottlenecks, 'linear' head",
        "layer3",
        functools.partial(ResNeXt29, _cardinality, _width),
    )
for _depth, _blocks in ((26, (2, 2, 2, 2)), (92, (3, 4, 20, 3))):
    _register(
        f"dpn{_depth}_kuangliu",
        f"DPN{_depth}: dual-path bottlenecks (32 groups), 'linear' head",
        "layer4",
        functools.partial(DPN, _blocks),
    )
_register(
    "senet18_kuangliu",
    "SENet18: pre-activation blocks with 'fc1'/'fc2' squeeze-excitation convs, 'linear' head",
    "layer4",
    functools.partial(ResNet, SEPreActBlock, (2, 2, 2, 2)),
)
for _label, _depths, _widths, _group_width, _se_ratio in (
    ("x_200mf", (1, 1, 4, 7), (24, 56, 152, 368), 8, 0.0),
    ("x_400mf", (1, 2, 7, 12), (32, 64, 160, 384), 16, 0.0),
    ("y_400mf", (1, 2, 7, 12), (32, 64, 160, 384), 16, 0.25),
):
    _register(
        f"regnet{_label}_kuangliu",
        f"RegNet{_label.upper()}: grouped bottlenecks{' with squeeze-excitation' if _se_ratio else ''}, 'linear' head",
        "layer4",
        functools.partial(RegNet, _depths, _widths, _group_width, _se_ratio),
    )

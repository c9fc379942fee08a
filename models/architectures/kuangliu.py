"""CIFAR-10 networks in the layout of kuangliu/pytorch-cifar (``models/*.py`` at commit
49b7aa97b0c12fe0d4054e670403a16b6b834ddd), the most used CIFAR-10 training repository.

Its ``main.py`` saves ``{"net": state_dict, "acc": ..., "epoch": ...}`` from a ``DataParallel`` model on CUDA
(keys prefixed by ``module.``) and normalises with mean (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994,
0.2010): the ``cifar10-kuangliu`` preset. Every network keeps 32x32 inputs at full resolution in its stem.

- ``resnet{18,34,50}_kuangliu`` (``resnet.py``): 64-channel 3x3 stem ``conv1``/``bn1``, four stages
  ``layer1``..``layer4`` of basic or bottleneck blocks whose projection shortcut is ``shortcut.0`` (1x1 conv)
  and ``shortcut.1`` (BN), head ``linear``. RepDistiller's ``resnetv2.py`` ResNet-18/34/50 share these keys.
- ``preactresnet18_kuangliu`` (``preact_resnet.py``): pre-activation blocks (``bn1``, ``conv1``, ``bn2``,
  ``conv2``), a conv-only ``shortcut.0`` where the shape changes, no stem BN.
- ``vgg{11,13,16,19}_kuangliu`` (``vgg.py``): one ``features`` Sequential of conv, BN, ReLU and max-pool
  (indices count every layer), head ``classifier`` Linear(512, classes).
- ``mobilenetv2_kuangliu`` (``mobilenetv2.py``): stride-1 stem, 17 blocks ``layers.{i}`` of
  ``conv1``..``conv3``/``bn1``..``bn3`` with a ``shortcut`` projection on stride-1 blocks that change width,
  ``conv2``/``bn2`` to 1280 channels, head ``linear``.
- ``densenet121_kuangliu`` (``densenet.py``): growth 32, blocks ``dense1``..``dense4`` of (6, 12, 24, 16)
  bottlenecks, transitions ``trans1``..``trans3`` halving channels, final ``bn``, head ``linear``.
- ``simpledla_kuangliu`` (``dla_simple.py``): ``base``, ``layer1``, ``layer2`` conv stages, then trees
  ``layer3``..``layer6`` of basic blocks joined by ``root`` 1x1 convs, head ``linear``.

The repository's other networks live beside this module: ResNeXt29, DPN, SENet18 and RegNet in
:mod:`~libkd_bench.models.architectures.kuangliu_resnet_variants`, ShuffleNetV2 and EfficientNet-B0 in
:mod:`~libkd_bench.models.architectures.kuangliu_mobile`, DLA and GoogLeNet in
:mod:`~libkd_bench.models.architectures.kuangliu_multibranch`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.registry import repository_registrar

REPOSITORY = "kuangliu/pytorch-cifar@49b7aa97"
FAMILY = "kuangliu"


def _conv(in_planes: int, planes: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=bias)


def _projection(in_planes: int, planes: int, stride: int) -> nn.Sequential:
    """``shortcut``: 1x1 conv + BN when the block changes shape, else empty (identity)."""
    if stride == 1 and in_planes == planes:
        return nn.Sequential()
    return nn.Sequential(_conv(in_planes, planes, 1, stride), nn.BatchNorm2d(planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = _projection(in_planes, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = _conv(in_planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3)
        if stride != 1 or in_planes != planes:  # the attribute is absent otherwise, as upstream
            self.shortcut = nn.Sequential(_conv(in_planes, planes, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class ResNet(nn.Module):
    """Four stages of 64/128/256/512 planes; ``preact`` drops the stem BN (PreActResNet)."""

    def __init__(self, block: type[nn.Module], blocks: tuple[int, ...], num_classes: int = 10, preact: bool = False):
        super().__init__()
        self.preact = preact
        self.conv1 = _conv(3, 64, 3)
        if not preact:
            self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
            layers = []
            for stride in [1 if index == 1 else 2] + [1] * (count - 1):
                layers.append(block(in_planes, planes, stride))
                in_planes = planes * block.expansion  # type: ignore[attr-defined]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.linear = nn.Linear(512 * block.expansion, num_classes)  # type: ignore[attr-defined]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x) if self.preact else F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def vgg_attention_layer(config: tuple[int | str, ...]) -> str:
    """``features.{i}`` of the last ReLU, before the final max-pool (a 2x2 map): convs add 3 layers, pools 1."""
    layers = sum(1 if item == "M" else 3 for item in config)
    return f"features.{layers - 2}"


def vgg_features(config: tuple[int | str, ...]) -> nn.Sequential:
    """Conv(3x3, bias) + BN + ReLU per number, MaxPool(2) per ``"M"``: the torchvision-style ``features``."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [_conv(in_channels, int(item), 3, bias=True), nn.BatchNorm2d(int(item)), nn.ReLU(inplace=True)]
            in_channels = int(item)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, config: tuple[int | str, ...], num_classes: int = 10) -> None:
        super().__init__()
        self.features = vgg_features(config)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class MobileNetV2Block(nn.Module):
    """Expand (1x1), depthwise (3x3), project (1x1); residual only at stride 1."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = _conv(in_planes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, out_planes, 1)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(_conv(in_planes, out_planes, 1), nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    # (expansion, out_planes, blocks, stride); the second stage's stride is 1 for CIFAR, as upstream
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = _conv(3, 32, 3)
        self.bn1 = nn.BatchNorm2d(32)
        layers, in_planes = [], 32
        for expansion, out_planes, count, stride in self.STAGES:
            for block_stride in [stride] + [1] * (count - 1):
                layers.append(MobileNetV2Block(in_planes, out_planes, expansion, block_stride))
                in_planes = out_planes
        self.layers = nn.Sequential(*layers)
        self.conv2 = _conv(320, 1280, 1)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class DenseBottleneck(nn.Module):
    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = _conv(in_planes, 4 * growth_rate, 1)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = _conv(4 * growth_rate, growth_rate, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        return torch.cat([self.conv2(F.relu(self.bn2(out))), x], 1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = _conv(in_planes, out_planes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(self, blocks: tuple[int, int, int, int], growth_rate: int, num_classes: int = 10) -> None:
        super().__init__()
        planes = 2 * growth_rate
        self.conv1 = _conv(3, planes, 3)
        for index, count in enumerate(blocks, start=1):
            self.add_module(
                f"dense{index}",
                nn.Sequential(*(DenseBottleneck(planes + i * growth_rate, growth_rate) for i in range(count))),
            )
            planes += count * growth_rate
            if index < len(blocks):
                out_planes = math.floor(planes * 0.5)
                self.add_module(f"trans{index}", Transition(planes, out_planes))
                planes = out_planes
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.trans3(self.dense3(self.trans2(self.dense2(self.trans1(self.dense1(out))))))
        out = F.relu(self.bn(self.dense4(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class Root(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return F.relu(self.bn(self.conv(torch.cat(xs, 1))))


class Tree(nn.Module):
    """SimpleDLA's aggregation tree: two subtrees (basic blocks at level 1) joined by a ``root``."""

    def __init__(self, in_channels: int, out_channels: int, level: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.root = Root(2 * out_channels, out_channels)
        if level == 1:
            self.left_tree: nn.Module = BasicBlock(in_channels, out_channels, stride)
            self.right_tree: nn.Module = BasicBlock(out_channels, out_channels, 1)
        else:
            self.left_tree = Tree(in_channels, out_channels, level - 1, stride)
            self.right_tree = Tree(out_channels, out_channels, level - 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.left_tree(x)
        return self.root([left, self.right_tree(left)])


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(_conv(in_channels, out_channels, 3), nn.BatchNorm2d(out_channels), nn.ReLU(True))


class SimpleDLA(nn.Module):
    """SimpleDLA, and with ``tree`` set to DLA's own tree (kuangliu_multibranch) DLA: the two share everything else."""

    def __init__(self, num_classes: int = 10, tree: Callable[..., nn.Module] = Tree) -> None:
        super().__init__()
        self.base = _conv_bn_relu(3, 16)
        self.layer1 = _conv_bn_relu(16, 16)
        self.layer2 = _conv_bn_relu(16, 32)
        self.layer3 = tree(32, 64, level=1, stride=1)
        self.layer4 = tree(64, 128, level=2, stride=2)
        self.layer5 = tree(128, 256, level=2, stride=2)
        self.layer6 = tree(256, 512, level=1, stride=2)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer2(self.layer1(self.base(x)))
        out = self.layer6(self.layer5(self.layer4(self.layer3(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


_register = repository_registrar(FAMILY, REPOSITORY, Preset.CIFAR10_KUANGLIU)


for _depth, _block, _blocks in (
    (18, BasicBlock, (2, 2, 2, 2)),
    (34, BasicBlock, (3, 4, 6, 3)),
    (50, Bottleneck, (3, 4, 6, 3)),
):
    _register(
        f"resnet{_depth}_kuangliu",
        f"ResNet{_depth}, 3x3 stem, 'shortcut' projections, 'linear' head",
        "linear",
        "layer4",
        functools.partial(ResNet, _block, _blocks),
    )
_register(
    "preactresnet18_kuangliu",
    "PreActResNet18, conv-only 'shortcut' projections, 'linear' head",
    "linear",
    "layer4",
    functools.partial(ResNet, PreActBlock, (2, 2, 2, 2), preact=True),
)
for _depth, _config in VGG_CONFIGS.items():
    _register(
        f"vgg{_depth}_kuangliu",
        f"VGG{_depth} with BN in one 'features' Sequential, Linear(512) 'classifier'",
        "classifier",
        vgg_attention_layer(_config),
        functools.partial(VGG, _config),
    )
_register(
    "mobilenetv2_kuangliu",
    "MobileNetV2 (width 1, stride-1 stem), 'layers.{i}' blocks, 'linear' head",
    "linear",
    "layers",
    functools.partial(MobileNetV2),
)
_register(
    "densenet121_kuangliu",
    "DenseNet121 (growth 32), 'dense{i}'/'trans{i}' stages, 'linear' head",
    "linear",
    "dense4",
    functools.partial(DenseNet, (6, 12, 24, 16), 32),
)
_register(
    "simpledla_kuangliu",
    "SimpleDLA: trees of basic blocks joined by 'root' convs, 'linear' head",
    "linear",
    "layer6",
    functools.partial(SimpleDLA),
)

"""CIFAR-10 networks in the layout of huyvnphan/PyTorch_CIFAR10 (``cifar10_models/*.py`` at commit
641cac24371b17052b9bb6e56af1c83b5e97cd7f), a popular collection of pretrained CIFAR-10 weights.

Its models are torchvision's with a 3x3 stride-1 stem, so checkpoints carry torchvision's key names; its
weights are plain state dicts; it normalises with mean (0.4914, 0.4822, 0.4465) and std (0.2471, 0.2435,
0.2616) (``data.py``): the ``cifar10-huyvnphan`` preset.

- ``resnet{18,34,50}_huyvnphan`` (``resnet.py``): ``conv1`` 3x3 (64 channels), ``bn1``, the stem max-pool kept
  (3x3, stride 2: 32x32 inputs enter ``layer1`` at 16x16), ``layer1``..``layer4`` with ``downsample.0/1``
  projections, head ``fc``.
- ``vgg{11,13,16,19}_bn_huyvnphan`` (``vgg.py``): torchvision ``features`` with BN, adaptive average pooling to
  1x1, head ``classifier.{0,3,6}``: 512 -> 4096 -> 4096 -> classes.
- ``densenet{121,161,169}_huyvnphan`` (``densenet.py``): torchvision DenseNet-BC with ``features.conv0`` 3x3 and
  ``features.pool0`` max-pool kept, ``denseblock{i}.denselayer{j}``, ``transition{i}``, ``norm5``, head
  ``classifier``.

Its ``mobilenet_v2`` has the keys and shapes of chenyaofo/pytorch-cifar-models' ``mobilenetv2_x1_0`` and loads
as that architecture (:mod:`libkd_bench.models.architectures.chenyaofo`); name ``--preprocess
cifar10-huyvnphan`` for it. Its ``googlenet`` and ``inception_v3`` are in
:mod:`libkd_bench.models.architectures.huyvnphan_inception`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.architectures.kuangliu import VGG_CONFIGS, vgg_attention_layer, vgg_features
from libkd_bench.models.registry import repository_registrar

REPOSITORY = "huyvnphan/PyTorch_CIFAR10@641cac24"
FAMILY = "huyvnphan"


def _conv(in_planes: int, planes: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, block: type[nn.Module], blocks: tuple[int, ...], num_classes: int = 10) -> None:
        super().__init__()
        expansion: int = block.expansion  # type: ignore[attr-defined]
        self.conv1 = _conv(3, 64, 3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_planes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
            stride = 1 if index == 1 else 2
            downsample = None
            if stride != 1 or in_planes != planes * expansion:
                downsample = nn.Sequential(
                    _conv(in_planes, planes * expansion, 1, stride), nn.BatchNorm2d(planes * expansion)
                )
            layers = [block(in_planes, planes, stride, downsample)]
            in_planes = planes * expansion
            layers += [block(in_planes, planes, 1, None) for _ in range(count - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * expansion, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class VGG(nn.Module):
    """torchvision VGG with BN; ``hidden`` units in the two hidden classifier layers (4096 here, 512 in chenyaofo's)."""

    def __init__(self, config: tuple[int | str, ...], num_classes: int = 10, hidden: int = 4096, pool: bool = True):
        super().__init__()
        self.features = vgg_features(config)
        self.pool = pool
        self.classifier = nn.Sequential(
            nn.Linear(512, hidden),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.pool:
            x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(x.flatten(1))


class DenseLayer(nn.Sequential):
    def __init__(self, in_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(in_features))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv1", _conv(in_features, bn_size * growth_rate, 1))
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth_rate))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module("conv2", _conv(bn_size * growth_rate, growth_rate, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.cat([x, super().forward(x)], 1)


class DenseNet(nn.Module):
    def __init__(self, growth_rate: int, blocks: tuple[int, ...], init_features: int, num_classes: int = 10) -> None:
        super().__init__()
        stem = [
            ("conv0", _conv(3, init_features, 3)),
            ("norm0", nn.BatchNorm2d(init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]
        self.features = nn.Sequential(OrderedDict(stem))
        features = init_features
        for index, count in enumerate(blocks, start=1):
            block = nn.Sequential()
            for layer in range(count):
                block.add_module(f"denselayer{layer + 1}", DenseLayer(features + layer * growth_rate, growth_rate, 4))
            self.features.add_module(f"denseblock{index}", block)
            features += count * growth_rate
            if index < len(blocks):
                transition = nn.Sequential(
                    OrderedDict(
                        norm=nn.BatchNorm2d(features),
                        relu=nn.ReLU(inplace=True),
                        conv=_conv(features, features // 2, 1),
                        pool=nn.AvgPool2d(kernel_size=2, stride=2),
                    )
                )
                self.features.add_module(f"transition{index}", transition)
                features //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(features))
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


_register = repository_registrar(FAMILY, REPOSITORY, Preset.CIFAR10_HUYVNPHAN)


for _depth, _block, _blocks in (
    (18, BasicBlock, (2, 2, 2, 2)),
    (34, BasicBlock, (3, 4, 6, 3)),
    (50, Bottleneck, (3, 4, 6, 3)),
):
    _register(
        f"resnet{_depth}_huyvnphan",
        f"torchvision ResNet-{_depth} with a 3x3 stem and its max-pool, 'fc' head",
        "fc",
        "layer4",
        functools.partial(ResNet, _block, _blocks),
    )
for _depth, _config in VGG_CONFIGS.items():
    _register(
        f"vgg{_depth}_bn_huyvnphan",
        f"torchvision VGG-{_depth} with BN, 512-4096-4096 'classifier' head",
        "classifier.6",
        vgg_attention_layer(_config),
        functools.partial(VGG, _config),
    )
for _depth, _growth, _blocks, _init in (
    (121, 32, (6, 12, 24, 16), 64),
    (161, 48, (6, 12, 36, 24), 96),
    (169, 32, (6, 12, 32, 32), 64),
):
    _register(
        f"densenet{_depth}_huyvnphan",
        f"torchvision DenseNet-{_depth} with a 3x3 stem and its max-pool",
        "classifier",
        "features",
        functools.partial(DenseNet, _growth, _blocks, _init),
    )

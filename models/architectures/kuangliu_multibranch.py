"""Multi-branch networks of kuangliu/pytorch-cifar (``models/*.py`` at commit
49b7aa97b0c12fe0d4054e670403a16b6b834ddd): deep layer aggregation and GoogLeNet on stride-1 stems.

Checkpoints, normalisation and the ``cifar10-kuangliu`` preset are those of
:mod:`libkd_bench.models.architectures.kuangliu`. Upstream pools the last stage with a fixed window equal to its
32x32-input map; global average pooling here is the same on 32x32 inputs.

- ``dla_kuangliu`` (``dla.py``, ``DLA``): ``base``, ``layer1``, ``layer2`` conv stages, then trees ``layer3``..
  ``layer6`` of basic blocks. A level-1 tree is ``left_node``, ``right_node`` and a 1x1 ``root``; a level-2 tree
  adds a ``level_1`` subtree and a ``prev_root`` block, and its ``root`` joins four maps. Head ``linear``. The
  simpler ``simpledla_kuangliu`` names its subtrees ``left_tree``/``right_tree``.
- ``googlenet_kuangliu`` (``googlenet.py``, ``GoogLeNet``): a 3x3 ``pre_layers`` stem to 192 channels, Inception
  modules ``a3``, ``b3``, ``a4``..``e4``, ``a5``, ``b5`` whose branches ``b1``..``b4`` are Sequentials of
  conv (with bias), BN and ReLU (the "5x5" branch is two 3x3 convs), one shared stride-2 ``maxpool``, head
  ``linear`` (fixed at 10 classes upstream).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.architectures.kuangliu import FAMILY, REPOSITORY, BasicBlock, Root, SimpleDLA
from libkd_bench.models.registry import repository_registrar


class Tree(nn.Module):
    """DLA's aggregation tree: at level L, a ``prev_root`` block, subtrees ``level_{L-1}``..``level_1`` chained,
    then ``left_node`` and ``right_node``; ``root`` joins every one of their outputs."""

    def __init__(self, in_channels: int, out_channels: int, level: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.level = level
        if level == 1:
            self.root = Root(2 * out_channels, out_channels)
            self.left_node = BasicBlock(in_channels, out_channels, stride)
            self.right_node = BasicBlock(out_channels, out_channels, 1)
        else:
            self.root = Root((level + 2) * out_channels, out_channels)
            for i in reversed(range(1, level)):
                self.add_module(f"level_{i}", Tree(in_channels, out_channels, level=i, stride=stride))
            self.prev_root = BasicBlock(in_channels, out_channels, stride)
            self.left_node = BasicBlock(out_channels, out_channels, 1)
            self.right_node = BasicBlock(out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = [self.prev_root(x)] if self.level > 1 else []
        for i in reversed(range(1, self.level)):
            x = self.get_submodule(f"level_{i}")(x)
            xs.append(x)
        x = self.left_node(x)
        xs.append(x)
        xs.append(self.right_node(x))
        return self.root(xs)


def _conv_bn_relu_bias(in_planes: int, planes: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(in_planes, planes, kernel, padding=kernel // 2), nn.BatchNorm2d(planes), nn.ReLU(True)]


class Inception(nn.Module):
    """Four branches concatenated: 1x1; 1x1 then 3x3; 1x1 then two 3x3; 3x3 max-pool then 1x1."""

    def __init__(self, in_planes: int, n1x1: int, n3x3red: int, n3x3: int, n5x5red: int, n5x5: int, pool: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(*_conv_bn_relu_bias(in_planes, n1x1, 1))
        self.b2 = nn.Sequential(*_conv_bn_relu_bias(in_planes, n3x3red, 1), *_conv_bn_relu_bias(n3x3red, n3x3, 3))
        self.b3 = nn.Sequential(
            *_conv_bn_relu_bias(in_planes, n5x5red, 1),
            *_conv_bn_relu_bias(n5x5red, n5x5, 3),
            *_conv_bn_relu_bias(n5x5, n5x5, 3),
        )
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv_bn_relu_bias(in_planes, pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


# name: (in_planes, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_planes), as torchvision's GoogLeNet
INCEPTION_CONFIGS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.pre_layers = nn.Sequential(*_conv_bn_relu_bias(3, 192, 3))
        for name, config in INCEPTION_CONFIGS.items():
            if name == "4a":
                self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.add_module(name[1] + name[0], Inception(*config))  # "3a" -> "a3"
        self.linear = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b3(self.a3(self.pre_layers(x)))
        out = self.e4(self.d4(self.c4(self.b4(self.a4(self.maxpool(out))))))
        out = self.b5(self.a5(self.maxpool(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


_register_in_repository = repository_registrar(FAMILY, REPOSITORY, Preset.CIFAR10_KUANGLIU)


def _register(name: str, description: str, attention_layer: str, builder: functools.partial) -> None:
    _register_in_repository(name, description, "linear", attention_layer, builder)


_register(
    "dla_kuangliu",
    "DLA: trees of basic blocks with 'prev_root' and 'level_1' subtrees, 'linear' head",
    "layer6",
    functools.partial(SimpleDLA, tree=Tree),
)
_register(
    "googlenet_kuangliu",
    "GoogLeNet: 3x3 'pre_layers' stem, Inception modules 'a3'..'b5' with conv biases, 'linear' head",
    "b5",
    functools.partial(GoogLeNet),
)

"""CIFAR-10 networks in the layout of chenyaofo/pytorch-cifar-models (``pytorch_cifar_models/*.py`` at commit
786c16252c0fc58ee9adac063f8337cc4a7a497a), whose weights ship through torch.hub as ``cifar10_resnet20`` etc.

The hub files are plain state dicts. They were trained by chenyaofo/image-classification-codebase
(``conf/cifar10.conf`` at commit 610e6523ab462351700aaf629e6c739a9a30e903) with mean (0.4914, 0.4822, 0.4465)
and std (0.2023, 0.1994, 0.2010): the ``cifar10-kuangliu`` preset. All stems are stride 1 (CIFAR inputs stay
32x32 until the first strided stage).

- ``cifar10_resnet{20,32,44,56}`` have the keys and shapes of RepDistiller's ``resnet{20,32,44,56}`` and load as
  ``resnet{20,32,44,56}_b`` (:mod:`libkd_bench.models.architectures.cifar_resnet`); name ``--preprocess
  cifar10-kuangliu`` for them.
- ``mobilenetv2_x{0_5,0_75,1_0,1_4}`` (``mobilenetv2.py``): torchvision MobileNetV2 with channels rounded to
  multiples of 8, ``features.{i}`` (a ``ConvBNReLU`` stem, inverted residuals with ``conv.{j}``, a 1x1 conv to
  1280 or more channels), head ``classifier.1`` after dropout. huyvnphan/PyTorch_CIFAR10's ``mobilenet_v2``
  has exactly the keys and shapes of ``mobilenetv2_x1_0``.
- ``vgg{11,13,16,19}_bn_chenyaofo`` (``vgg.py``): torchvision ``features`` with BN, flattened after the last
  max-pool, head ``classifier.{0,3,6}``: 512 -> 512 -> 512 -> classes.
- ``shufflenetv2_x{0_5,1_0,1_5,2_0}`` (``shufflenetv2.py``): torchvision ShuffleNetV2 without the stem max-pool,
  ``conv1``, ``stage2``..``stage4`` (``branch1`` only on stride-2 units), ``conv5``, head ``fc``.
- ``repvgg_a{0,1,2}`` (``repvgg.py``): RepVGG-A in its training form (``rbr_dense``, ``rbr_1x1`` and, where
  shapes allow, ``rbr_identity`` branches per block), ``stage0``..``stage4``, head ``linear``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.architectures.huyvnphan import VGG
from libkd_bench.models.architectures.kuangliu import VGG_CONFIGS, vgg_attention_layer
from libkd_bench.models.registry import repository_registrar

REPOSITORY = "chenyaofo/pytorch-cifar-models@786c1625"
FAMILY = "chenyaofo"


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of ``divisor``, never more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_planes: int, out_planes: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        conv = nn.Conv2d(in_planes, out_planes, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        super().__init__(conv, nn.BatchNorm2d(out_planes), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [ConvBNReLU(inp, hidden, kernel=1)] if expand_ratio != 1 else []
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # t, c, n, s; the second stage's stride is 1 for CIFAR, as upstream
    SETTING = (
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, width_mult: float, num_classes: int = 10) -> None:
        super().__init__()
        channels = make_divisible(32 * width_mult)
        last_channel = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU(3, channels, stride=1)]
        for t, c, n, s in self.SETTING:
            out_channels = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
        features.append(ConvBNReLU(channels, last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _depthwise(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)


class ShuffleUnit(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = oup // 2
        self.branch1 = nn.Sequential()
        if stride > 1:
            self.branch1 = nn.Sequential(
                _depthwise(inp, stride),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True),
            )
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            _depthwise(branch, stride),
            nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int, int], num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        inp = channels[0]
        for name, repeats, oup in zip(("stage2", "stage3", "stage4"), (4, 8, 4), channels[1:4], strict=True):
            units = [ShuffleUnit(inp, oup, 2)] + [ShuffleUnit(oup, oup, 1) for _ in range(repeats - 1)]
            self.add_module(name, nn.Sequential(*units))
            inp = oup
        self.conv5 = nn.Sequential(
            nn.Conv2d(inp, channels[4], 1, 1, 0, bias=False), nn.BatchNorm2d(channels[4]), nn.ReLU(inplace=True)
        )
        self.fc = nn.Linear(channels[4], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stage4(self.stage3(self.stage2(self.conv1(x)))))
        return self.fc(x.mean([2, 3]))


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Sequential:
    result = nn.Sequential()
    result.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False))
    result.add_module("bn", nn.BatchNorm2d(out_channels))
    return result


class RepVGGBlock(nn.Module):
    """Training-form block: 3x3 conv-BN + 1x1 conv-BN (+ a BN identity when shapes allow), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        identity = out_channels == in_channels and stride == 1
        self.rbr_identity = nn.BatchNorm2d(in_channels) if identity else None
        self.rbr_dense = _conv_bn(in_channels, out_channels, 3, stride)
        self.rbr_1x1 = _conv_bn(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        return F.relu(out if self.rbr_identity is None else out + self.rbr_identity(x))


class RepVGG(nn.Module):
    def __init__(self, blocks: tuple[int, ...], widths: tuple[float, ...], num_classes: int = 10) -> None:
        super().__init__()
        in_planes = min(64, int(64 * widths[0]))
        self.stage0 = RepVGGBlock(3, in_planes, 1)
        for index, (planes, count, width) in enumerate(zip((64, 128, 256, 512), blocks, widths, strict=True), 1):
            layers = []
            for stride in [1 if index == 1 else 2] + [1] * (count - 1):
                layers.append(RepVGGBlock(in_planes, int(planes * width), stride))
                in_planes = int(planes * width)
            self.add_module(f"stage{index}", nn.Sequential(*layers))
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage4(self.stage3(self.stage2(self.stage1(self.stage0(x)))))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


_register = repository_registrar(FAMILY, REPOSITORY, Preset.CIFAR10_KUANGLIU)


for _label, _width in (("0_5", 0.5), ("0_75", 0.75), ("1_0", 1.0), ("1_4", 1.4)):
    _register(
        f"mobilenetv2_x{_label}",
        f"torchvision MobileNetV2, width {_width}, stride-1 stem ('features.{{i}}')",
        "classifier.1",
        "features",
        functools.partial(MobileNetV2, _width),
    )
for _depth, _config in VGG_CONFIGS.items():
    _register(
        f"vgg{_depth}_bn_chenyaofo",
        f"torchvision VGG-{_depth} with BN, 512-512-512 'classifier' head",
        "classifier.6",
        vgg_attention_layer(_config),
        functools.partial(VGG, _config, hidden=512, pool=False),
    )
for _label, _channels in (
    ("0_5", (24, 48, 96, 192, 1024)),
    ("1_0", (24, 116, 232, 464, 1024)),
    ("1_5", (24, 176, 352, 704, 1024)),
    ("2_0", (24, 244, 488, 976, 2048)),
):
    _register(
        f"shufflenetv2_x{_label}",
        f"torchvision ShuffleNetV2 x{_label.replace('_', '.')}, no stem max-pool",
        "fc",
        "conv5",
        functools.partial(ShuffleNetV2, _channels),
    )
for _label, _widths in (("a0", (0.75, 0.75, 0.75, 2.5)), ("a1", (1, 1, 1, 2.5)), ("a2", (1.5, 1.5, 1.5, 2.75))):
    _register(
        f"repvgg_{_label}",
        f"RepVGG-{_label.upper()} in training form (3x3, 1x1 and identity branches)",
        "linear",
        "stage4",
        functools.partial(RepVGG, (2, 4, 14, 1), _widths),
    )

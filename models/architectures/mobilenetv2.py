"""MobileNetV2 for CIFAR in HobbitLong/RepDistiller's layout (``models/mobilenetv2.py``): ``mobile_half``.

Expansion ratio 6, width multiplier 0.5, a stride-2 3x3 stem (``conv1``), seven stages of inverted residuals
(``blocks.{s}.{i}.conv``: 1x1 expand, 3x3 depthwise, 1x1 project, each with BN), a 1x1 conv to 1280 channels
(``conv2``), average pooling and ``classifier.0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.models.registry import register_architecture

SOURCE = "HobbitLong/RepDistiller models/mobilenetv2.py"


def _conv_bn_relu(inp: int, oup: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True)
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class CifarMobileNetV2(nn.Module):
    # expansion t, channels c, blocks n, first stride s (the first stage never expands)
    STAGES = ((1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2), (None, 96, 3, 1))
    STAGES += ((None, 160, 3, 2), (None, 320, 1, 1))

    def __init__(self, expansion: int, width_mult: float, num_classes: int = 10) -> None:
        super().__init__()
        channels = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(3, channels, 3, 2)
        self.blocks = nn.ModuleList()
        for t, c, n, s in self.STAGES:
            out_channels = int(c * width_mult)
            layers = []
            for stride in [s] + [1] * (n - 1):
                layers.append(InvertedResidual(channels, out_channels, stride, t or expansion))
                channels = out_channels
            self.blocks.append(nn.Sequential(*layers))
        last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(channels, last_channel, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(last_channel, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        for block in self.blocks:
            out = block(out)
        out = self.conv2(out)
        # RepDistiller: AvgPool2d(input_size // 16, ceil_mode=True) over the 2x2 map of a 32x32 input
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.classifier(out)


@register_architecture(
    family="mobilenetv2",
    source=SOURCE,
    description="MobileNetV2, expansion 6, width 0.5 (RepDistiller's mobile_half)",
    classifier=("classifier.0",),
    attention_layer="conv2",
)
def mobile_half(num_classes: int = 10) -> nn.Module:
    return CifarMobileNetV2(expansion=6, width_mult=0.5, num_classes=num_classes)

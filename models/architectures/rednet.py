"""RedNet (Li et al. 2021, "Involution"), the involution ("INN") teacher, with a CIFAR stem.

The involution repository (d-li14/involution) publishes RedNet only for ImageNet, as an mmcls backbone
(``cls/mmcls/models/backbones/rednet.py``). This is that network with mmcls' ``ImageClassifier`` key layout
(``backbone.*``, global average pooling, ``head.fc``) and one change for 32x32 inputs: the stem's first conv
has stride 1 and the stem max-pool is dropped, so stages run at 32/16/8/4 pixels instead of 56/28/14/7.
Every key and shape is the mmcls one, so ImageNet RedNet weights also load (with a new ``head.fc``).
``rednet_cifar`` takes any depth and narrower widths (``stem_channels``, ``base_channels``, multiples of 32 and
16), read back from a checkpoint's shapes; the reference study's small involution teacher is one.

Involution: a per-pixel, per-group KxK kernel generated from the pixel's own features (1x1 reduce with BN
and ReLU, 1x1 expand to K*K*groups), applied to the unfolded neighbourhood; 16 channels per group.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.models.registry import register_architecture

SOURCE = "d-li14/involution cls/mmcls/models/backbones/rednet.py (CIFAR stem)"
STAGE_BLOCKS = {26: (1, 2, 4, 1), 38: (2, 3, 5, 2), 50: (3, 4, 6, 3)}


class ConvModule(nn.Module):
    """mmcv's ConvModule key layout: ``conv`` (bias only without norm), optional ``bn``, optional ReLU."""

    def __init__(self, inp: int, oup: int, kernel: int, stride: int = 1, norm: bool = True, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=not norm)
        self.bn = nn.BatchNorm2d(oup) if norm else None
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.act else x


class Involution(nn.Module):
    GROUP_CHANNELS = 16
    REDUCTION = 4

    def __init__(self, channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.channels = kernel_size, stride, channels
        self.groups = channels // self.GROUP_CHANNELS
        self.conv1 = ConvModule(channels, channels // self.REDUCTION, 1)
        self.conv2 = ConvModule(channels // self.REDUCTION, kernel_size**2 * self.groups, 1, norm=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        source = x if self.stride == 1 else F.avg_pool2d(x, self.stride, self.stride)
        weight = self.conv2(self.conv1(source))
        b, _, h, w = weight.shape
        weight = weight.view(b, self.groups, 1, k * k, h, w)
        patches = F.unfold(x, k, padding=(k - 1) // 2, stride=self.stride)
        patches = patches.view(b, self.groups, self.GROUP_CHANNELS, k * k, h, w)
        return (weight * patches).sum(dim=3).view(b, self.channels, h, w)


class Bottleneck(nn.Module):
    """mmcls bottleneck (pytorch style) whose 3x3 conv is a 7x7 involution carrying the stride."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int = 4) -> None:
        super().__init__()
        mid = out_channels // expansion
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = Involution(mid, 7, stride)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class RedNetBackbone(nn.Module):
    def __init__(self, depth: int, stem_channels: int = 64, base_channels: int = 64) -> None:
        super().__init__()
        half = stem_channels // 2
        self.stem = nn.Sequential(
            ConvModule(3, half, 3, stride=1),  # stride 2 in the ImageNet network
            Involution(half, 3, 1),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            ConvModule(half, stem_channels, 3),
        )
        in_channels, out_channels = stem_channels, base_channels * 4
        for index, (count, stride) in enumerate(zip(STAGE_BLOCKS[depth], (1, 2, 2, 2), strict=True), start=1):
            blocks = [Bottleneck(in_channels, out_channels, stride)]
            blocks += [Bottleneck(out_channels, out_channels, 1) for _ in range(count - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            in_channels, out_channels = out_channels, out_channels * 2
        self.feat_dim = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class LinearHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class RedNetClassifier(nn.Module):
    """``backbone`` -> global average pooling -> ``head.fc`` (mmcls ImageClassifier)."""

    def __init__(self, depth: int, num_classes: int = 10, *, stem_channels: int = 64, base_channels: int = 64) -> None:
        super().__init__()
        self.backbone = RedNetBackbone(depth, stem_channels, base_channels)
        self.head = LinearHead(self.backbone.feat_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.backbone(x), 1).flatten(1))


for _depth in STAGE_BLOCKS:
    register_architecture(
        f"rednet{_depth}",
        family="rednet",
        source=SOURCE,
        description=f"RedNet-{_depth} (involution) with a stride-1 stem and no stem pooling, mmcls keys",
        classifier=("head.fc",),
        attention_layer="backbone.layer4",
    )(functools.partial(RedNetClassifier, _depth))


def rednet_kwargs_from_shapes(shapes: Mapping[str, tuple[int, ...]], given: Mapping[str, Any]) -> dict[str, Any] | None:
    """Depth and widths of an mmcls-layout RedNet checkpoint, or None when it is not one."""
    needed = ("backbone.stem.4.conv.weight", "backbone.layer1.0.conv3.weight", "head.fc.weight")
    if not all(key in shapes for key in needed):
        return None
    block = re.compile(r"backbone\.layer(\d)\.(\d+)\.conv1\.weight")
    counts = [0, 0, 0, 0]
    for key in shapes:
        if (m := block.fullmatch(key)) and 1 <= int(m.group(1)) <= 4:
            counts[int(m.group(1)) - 1] = max(counts[int(m.group(1)) - 1], int(m.group(2)) + 1)
    depth = next((d for d, blocks in STAGE_BLOCKS.items() if blocks == tuple(counts)), None)
    if depth is None:
        return None
    stem, base = shapes["backbone.stem.4.conv.weight"][0], shapes["backbone.layer1.0.conv3.weight"][0] // 4
    return {"depth": depth, "stem_channels": stem, "base_channels": base, **given}


register_architecture(
    "rednet_cifar",
    family="rednet",
    source=SOURCE,
    description="RedNet of any depth (26/38/50) and width (stem_channels, base_channels; read from the checkpoint)",
    classifier=("head.fc",),
    attention_layer="backbone.layer4",
    kwargs={"depth": 26, "stem_channels": 32, "base_channels": 16},
    infer_kwargs=rednet_kwargs_from_shapes,
)(RedNetClassifier)

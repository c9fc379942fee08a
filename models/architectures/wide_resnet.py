"""Wide ResNets (Zagoruyko & Komodakis 2016) in HobbitLong/RepDistiller's layout (``models/wrn.py``).

WRN-d-k: depth d = 6n + 4 (n pre-activation blocks per stage), stage widths 16k/32k/64k. Keys:
``conv1``, ``block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2,convShortcut}``, ``bn1``, ``fc``. Besides the fixed
``wrn_16_1``/``wrn_16_2``/``wrn_40_1``/``wrn_40_2``/``wrn_28_10``, the parametric ``wrn`` takes
``depth``/``widen_factor``, and detection reads both from a checkpoint's shapes.
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

SOURCE = "HobbitLong/RepDistiller models/wrn.py"


class WideBasicBlock(nn.Module):
    """Pre-activation block; a block that changes width or stride projects its shortcut with a 1x1 conv."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(activated)))
        out = self.conv2(out)
        # RepDistiller: the projection (when present) sees the activated input, the identity the raw input.
        shortcut = x if self.convShortcut is None else self.convShortcut(activated)
        return shortcut + out


class NetworkBlock(nn.Module):
    def __init__(self, blocks: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        first = WideBasicBlock(in_planes, out_planes, stride)
        self.layer = nn.Sequential(first, *(WideBasicBlock(out_planes, out_planes, 1) for _ in range(blocks - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen_factor: int, num_classes: int = 10) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
        blocks = (depth - 4) // 6
        channels = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = nn.Conv2d(3, channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(blocks, channels[0], channels[1], 1)
        self.block2 = NetworkBlock(blocks, channels[1], channels[2], 2)
        self.block3 = NetworkBlock(blocks, channels[2], channels[3], 2)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def wrn_kwargs_from_shapes(shapes: Mapping[str, tuple[int, ...]], given: Mapping[str, Any]) -> dict[str, Any] | None:
    """Depth and widen factor of a RepDistiller-layout WRN checkpoint, or None when it is not one."""
    block = re.compile(r"block1\.layer\.(\d+)\.conv1\.weight")
    indices = [int(m.group(1)) for key in shapes if (m := block.fullmatch(key))]
    if not indices or "fc.weight" not in shapes or len(shapes["fc.weight"]) != 2:
        return None
    width = shapes["fc.weight"][1]
    if width % 64:
        return None
    return {"depth": 6 * (max(indices) + 1) + 4, "widen_factor": width // 64, **given}


for _depth, _widen in ((16, 1), (16, 2), (40, 1), (40, 2), (28, 10)):
    register_architecture(
        f"wrn_{_depth}_{_widen}",
        family="wrn",
        source=SOURCE,
        description=f"WRN-{_depth}-{_widen}",
        classifier=("fc",),
        attention_layer="block3",
    )(functools.partial(WideResNet, _depth, _widen))

register_architecture(
    "wrn",
    family="wrn",
    source=SOURCE,
    description="WRN of any depth/widen_factor (read from the checkpoint)",
    classifier=("fc",),
    attention_layer="block3",
    kwargs={"depth": 16, "widen_factor": 1},
    infer_kwargs=wrn_kwargs_from_shapes,
)(WideResNet)

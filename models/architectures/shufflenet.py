"""ShuffleNet V1 and V2 for CIFAR in HobbitLong/RepDistiller's layout (``ShuffleNetv1.py``, ``ShuffleNetv2.py``).

Both start with a 1x1 conv to 24 channels (``conv1``/``bn1``, no stride: CIFAR inputs stay 32x32), run three
stages ``layer1``..``layer3`` and end in average pooling over a 4x4 map and ``linear``.

- ``shufflenet_v1`` (RepDistiller ``ShuffleV1``): groups 3, stages of 240/480/960 channels with 4/8/4
  bottlenecks; a stage's first bottleneck has stride 2 and concatenates its average-pooled input.
- ``shufflenet_v2`` (RepDistiller ``ShuffleV2``, net size 1): stages of 116/232/464 channels, each a
  ``DownBlock`` then 3/7/3 split-and-shuffle blocks, and a 1x1 ``conv2`` to 1024 channels before pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.models.registry import register_architecture

SOURCE_V1 = "HobbitLong/RepDistiller models/ShuffleNetv1.py"
SOURCE_V2 = "HobbitLong/RepDistiller models/ShuffleNetv2.py"


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[N, g*c, H, W] -> interleave the g groups' channels."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class BottleneckV1(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int) -> None:
        super().__init__()
        self.stride = stride
        mid_planes = out_planes // 4
        self.first_groups = 1 if in_planes == 24 else groups  # the stem's 24 channels are not grouped
        self.conv1 = nn.Conv2d(in_planes, mid_planes, kernel_size=1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.conv2 = nn.Conv2d(mid_planes, mid_planes, 3, stride=stride, padding=1, groups=mid_planes, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(nn.Module):
    def __init__(self, out_planes: tuple[int, int, int], blocks: tuple[int, int, int], groups: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_planes = 24
        for index, (planes, count) in enumerate(zip(out_planes, blocks, strict=True), start=1):
            # the first block concatenates its pooled input, so its own branch makes only the difference
            layers = [BottleneckV1(in_planes, planes - in_planes, 2, groups)]
            layers += [BottleneckV1(planes, planes, 1, groups) for _ in range(count - 1)]
            in_planes = planes
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.linear = nn.Linear(out_planes[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class BasicBlockV2(nn.Module):
    """Split the channels in half, transform one half, concatenate, shuffle."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        half = in_channels // 2
        self.conv1 = nn.Conv2d(half, half, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, kernel_size=3, padding=1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        kept, transformed = x[:, :half], x[:, half:]
        out = F.relu(self.bn1(self.conv1(transformed)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([kept, out], 1), 2)


class DownBlockV2(nn.Module):
    """Two stride-2 branches (depthwise then pointwise; pointwise, depthwise, pointwise), concatenated."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, kernel_size=3, stride=2, padding=1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, kernel_size=1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, out_channels: tuple[int, int, int, int], blocks: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        for index, (channels, count) in enumerate(zip(out_channels[:3], blocks, strict=True), start=1):
            stage = [DownBlockV2(in_channels, channels), *(BasicBlockV2(channels) for _ in range(count))]
            self.add_module(f"layer{index}", nn.Sequential(*stage))
            in_channels = channels
        self.conv2 = nn.Conv2d(out_channels[2], out_channels[3], kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_architecture(
    family="shufflenet",
    source=SOURCE_V1,
    description="ShuffleNet V1, groups 3 (RepDistiller's ShuffleV1)",
    classifier=("linear",),
    attention_layer="layer3",
)
def shufflenet_v1(num_classes: int = 10) -> nn.Module:
    return ShuffleNetV1((240, 480, 960), (4, 8, 4), groups=3, num_classes=num_classes)


@register_architecture(
    family="shufflenet",
    source=SOURCE_V2,
    description="ShuffleNet V2, net size 1 (RepDistiller's ShuffleV2)",
    classifier=("linear",),
    attention_layer="layer3",
)
def shufflenet_v2(num_classes: int = 10) -> nn.Module:
    return ShuffleNetV2((116, 232, 464, 1024), (3, 7, 3), num_classes=num_classes)

"""VGG with batch norm for CIFAR in HobbitLong/RepDistiller's layout (``models/vgg.py``, the ``vgg*_bn`` models).

Five blocks ``block0``..``block4`` of 3x3 conv + BN (+ ReLU between, none after a block's last BN), max-pooling
between blocks (the fourth pool only for 64x64 inputs, as in RepDistiller), global average pooling and a
single ``classifier`` Linear(512, num_classes); no fully connected hidden layers.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.models.registry import register_architecture

SOURCE = "HobbitLong/RepDistiller models/vgg.py"
# Output channels of every conv, per block; the name's number counts convs plus the classifier.
CONFIGS: dict[int, tuple[tuple[int, ...], ...]] = {
    8: ((64,), (128,), (256,), (512,), (512,)),
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


def _block(channels: tuple[int, ...], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(True)]
        in_channels = out_channels
    return nn.Sequential(*layers[:-1])  # RepDistiller drops each block's last ReLU (applied in forward)


class CifarVGG(nn.Module):
    def __init__(self, config: tuple[tuple[int, ...], ...], num_classes: int = 10) -> None:
        super().__init__()
        in_channels = 3
        for index, channels in enumerate(config):
            self.add_module(f"block{index}", _block(channels, in_channels))
            in_channels = channels[-1]
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        x = F.max_pool2d(F.relu(self.block0(x)), 2)
        x = F.max_pool2d(F.relu(self.block1(x)), 2)
        x = F.max_pool2d(F.relu(self.block2(x)), 2)
        x = F.relu(self.block3(x))
        if height == 64:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.block4(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


for _depth in CONFIGS:
    register_architecture(
        f"vgg{_depth}_bn",
        family="vgg",
        source=SOURCE,
        description=f"VGG-{_depth} with batch norm, one linear classifier",
        classifier=("classifier",),
        attention_layer="block4",
    )(functools.partial(CifarVGG, CONFIGS[_depth]))

"""A CIFAR ResNet-20 student with a learnable knowledge-distillation layer, as a user architecture.

The KD layer (a 1x1 conv, batch norm, ReLU and a second 1x1 conv, arXiv 2309.02843) sits between the last
stage and the pooling, inside the student, and is trained with it. libkd-bench has no such architecture
built in; this file shows how to score one without editing libkd-bench:

    libkd-bench inspect student.pth --arch-module examples/kd_layer_student.py:kd_layer_student
    libkd-bench score student.pth --arch-module examples/kd_layer_student.py:kd_layer_student

With ``--arch-module`` the builder is registered under its own name, so ``--arch kd_layer_student`` may be
given, or left out: detection then finds it from the checkpoint's keys like any built-in architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from libkd_bench.models.architectures.cifar_resnet import CifarResNetA


class KdLayer(nn.Module):
    """1x1 conv - BN - ReLU - 1x1 conv over the student's last feature map (channels unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.bn(self.conv1(x))))


class KdLayerStudent(CifarResNetA):
    """akamaster's ResNet-20 (option A shortcuts, ``linear`` head) with a KD layer before pooling."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(blocks=3, num_classes=num_classes)
        self.kd_layer = KdLayer(64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.kd_layer(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(out.mean(dim=(2, 3)))


def kd_layer_student(num_classes: int = 10) -> nn.Module:
    """ResNet-20 student with a learnable 1x1-BN-ReLU-1x1 KD layer."""
    return KdLayerStudent(num_classes)

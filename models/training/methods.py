"""Distillation losses, one module per :class:`~libkd_bench.models.training.recipe.Method`, built from a registry.

Every loss takes the student network's training-mode output (logits, or ``(class, distillation)`` logits for a
ViT with a distillation token), the labels and the teacher logits (None without teachers), and returns the
loss and the logits used for training accuracy. A loss may own parameters (the learnable KD layer); they are
trained with the student and never exported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.models.training.recipe import Method

LossOutput = tuple[torch.Tensor, torch.Tensor]


def soft_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target term, T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over images."""
    log_student = F.log_softmax(student / temperature, dim=1)
    log_teacher = F.log_softmax(teacher / temperature, dim=1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * temperature**2


def _single(output: torch.Tensor | tuple[torch.Tensor, ...], method: str) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    raise BenchError(f"method {method} needs a network with one head; use an architecture without distillation token")


def _two_heads(output: torch.Tensor | tuple[torch.Tensor, ...], method: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(output, tuple) and len(output) == 2:
        return output
    raise BenchError(f"method {method} needs a network with a distillation head (e.g. vit_cifar, distilled=true)")


class CrossEntropy(nn.Module):
    """Labels only."""

    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None) -> LossOutput:
        logits = _single(output, Method.NONE.value)
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing), logits


class HintonKD(nn.Module):
    """alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE(student, labels)."""

    def __init__(self, label_smoothing: float, temperature: float = 4.0, alpha: float = 0.9) -> None:
        super().__init__()
        self.label_smoothing, self.temperature, self.alpha = label_smoothing, temperature, alpha

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor) -> LossOutput:
        logits = _single(output, Method.KD.value)
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return self.alpha * soft_kd(logits, teacher, self.temperature) + (1 - self.alpha) * ce, logits


class DeiTHard(nn.Module):
    """DeiT's hard distillation: (1 - w) * CE(class head, labels) + w * CE(distillation head, argmax teacher)."""

    def __init__(self, label_smoothing: float, distill_weight: float = 0.5) -> None:
        super().__init__()
        self.label_smoothing, self.distill_weight = label_smoothing, distill_weight

    def forward(
        self, output: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor, teacher: torch.Tensor
    ) -> LossOutput:
        head, head_dist = _two_heads(output, Method.DEIT_HARD.value)
        ce = F.cross_entropy(head, labels, label_smoothing=self.label_smoothing)
        distill = F.cross_entropy(head_dist, teacher.argmax(dim=1))
        return (1 - self.distill_weight) * ce + self.distill_weight * distill, (head + head_dist) / 2


class KDLayer(nn.Module):
    """KD towards teacher logits adapted by a learnable 1x1 conv - BN - ReLU - 1x1 conv layer.

    The K teacher logits are a K-channel 1x1 map. The adapter is anchored by a cross-entropy of its own output
    on the labels, so it stays a classifier instead of collapsing onto the student. Loss:
    alpha * T^2 * KL(adapted/T || student/T) + (1 - alpha) * CE(student) + CE(adapted).
    """

    def __init__(
        self,
        label_smoothing: float,
        temperature: float = 4.0,
        alpha: float = 0.9,
        hidden: float = 64,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.label_smoothing, self.temperature, self.alpha = label_smoothing, temperature, alpha
        self.adapter = nn.Sequential(
            nn.Conv2d(num_classes, int(hidden), 1),
            nn.BatchNorm2d(int(hidden)),
            nn.ReLU(inplace=True),
            nn.Conv2d(int(hidden), num_classes, 1),
        )

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor) -> LossOutput:
        logits = _single(output, Method.KD_LAYER.value)
        adapted = self.adapter(teacher.float()[:, :, None, None]).flatten(1)
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        anchor = F.cross_entropy(adapted, labels)
        return self.alpha * soft_kd(logits, adapted, self.temperature) + (1 - self.alpha) * ce + anchor, logits


LOSSES: dict[Method, Callable[..., nn.Module]] = {
    Method.NONE: CrossEntropy,
    Method.KD: HintonKD,
    Method.DEIT_HARD: DeiTHard,
    Method.LIBKD: DeiTHard,
    Method.KD_LAYER: KDLayer,
}


def build_loss(method: Method, options: Mapping[str, float], label_smoothing: float) -> nn.Module:
    """The loss module of ``method`` with the recipe's ``options``; an unknown option is a BenchError."""
    try:
        return LOSSES[method](label_smoothing, **options)
    except TypeError as exc:
        raise BenchError(f"method {method.value}: bad options {dict(options)} ({exc})") from None

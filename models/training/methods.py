"""Distillation losses, one module per :class:`~libkd_bench.models.training.recipe.Method`, built from a registry.

Every loss takes the student network's training-mode output (logits, or ``(class, distillation)`` logits for a
ViT with a distillation token), the labels and the teacher logits (None without teachers), and returns the
loss and the logits used for training accuracy. A loss may own parameters (the learnable KD layer, FitNet's
regressor); they are trained with the student and never exported. Feature losses
(:mod:`libkd_bench.models.training.feature_losses`) also take the student's and the teacher's stage outputs on
the same batch (``needs_features``); a loss whose weight follows the epoch (DKD's warm-up) is told the epoch by
:meth:`TrainingLoss.start_epoch`, so a resumed run weighs every epoch as an uninterrupted one.

DKD follows megvii-research/mdistiller at commit a08d46f10d6102bd6e3f258ca5ac880b020ea259
(``mdistiller/distillers/DKD.py``; defaults from ``mdistiller/engine/cfg.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.core.registry import Registry
from libkd_bench.models.training.recipe import Method

LossOutput = tuple[torch.Tensor, torch.Tensor]


class TrainingLoss(nn.Module):
    """Base of every loss: what the loop must give it besides logits, labels and teacher logits.

    Attributes:
        needs_features: the loss also takes ``features=(student stages, teacher stages)``.
        stages: the stage names whose outputs it takes (see :mod:`libkd_bench.models.training.features`).
    """

    needs_features: bool = False
    stages: tuple[str, ...] = ()

    def start_epoch(self, epoch: int) -> None:
        """Called before epoch ``epoch`` (0-based) is trained; a loss weighted by the epoch sets it here."""


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


class CrossEntropy(TrainingLoss):
    """Labels only."""

    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None) -> LossOutput:
        logits = _single(output, Method.NONE.value)
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing), logits


class HintonKD(TrainingLoss):
    """alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE(student, labels)."""

    def __init__(self, label_smoothing: float, temperature: float = 4.0, alpha: float = 0.9) -> None:
        super().__init__()
        self.label_smoothing, self.temperature, self.alpha = label_smoothing, temperature, alpha

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor) -> LossOutput:
        logits = _single(output, Method.KD.value)
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return self.alpha * soft_kd(logits, teacher, self.temperature) + (1 - self.alpha) * ce, logits


class DeiTHard(TrainingLoss):
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


class KDLayer(TrainingLoss):
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


def smoothed_targets(labels: torch.Tensor, num_classes: int, epsilon: float) -> torch.Tensor:
    """(B, K) label-smoothed targets: 1 - epsilon + epsilon / K on the label, epsilon / K elsewhere (rows sum to 1)."""
    targets = torch.full((len(labels), num_classes), epsilon / num_classes, device=labels.device)
    return targets.scatter_(1, labels[:, None], 1 - epsilon + epsilon / num_classes)


class LabelSmoothing(TrainingLoss):
    """Cross-entropy on smoothed targets (Szegedy et al. 2016), the no-teacher control of distillation.

    KD's soft targets are partly a label smoothing (Yuan et al., CVPR 2020); this control trains the student's
    architecture with the uniform smoothing alone. ``epsilon`` is the method's constant, so the schedule's own
    ``label_smoothing`` must be 0 (it would be applied twice).
    """

    def __init__(self, label_smoothing: float, epsilon: float = 0.1) -> None:
        super().__init__()
        if label_smoothing:
            raise BenchError("method label-smoothing sets epsilon itself; the schedule's label_smoothing must be 0")
        if not 0 <= epsilon < 1:
            raise BenchError(f"label-smoothing epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None) -> LossOutput:
        logits = _single(output, Method.LABEL_SMOOTHING.value)
        targets = smoothed_targets(labels, logits.shape[1], self.epsilon)
        return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean(), logits


def dkd_loss(
    student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, alpha: float, beta: float, temperature: float
) -> torch.Tensor:
    """alpha * TCKD + beta * NCKD, each T^2 * KL(teacher || student) summed over classes, mean over images.

    TCKD compares the binary (target, all other classes) probabilities; NCKD the distributions over the non-target
    classes alone, obtained by pushing the target logit down by 1000 before the softmax, as mdistiller does.
    """
    target = torch.zeros_like(student, dtype=torch.bool).scatter_(1, labels[:, None], True)
    p_student = F.softmax(student / temperature, dim=1)
    p_teacher = F.softmax(teacher / temperature, dim=1)
    binary_student = torch.stack([(p_student * target).sum(1), (p_student * ~target).sum(1)], dim=1)
    binary_teacher = torch.stack([(p_teacher * target).sum(1), (p_teacher * ~target).sum(1)], dim=1)
    tckd = F.kl_div(torch.log(binary_student), binary_teacher, reduction="sum") * temperature**2 / len(labels)
    log_student_rest = F.log_softmax(student / temperature - 1000.0 * target, dim=1)
    p_teacher_rest = F.softmax(teacher / temperature - 1000.0 * target, dim=1)
    nckd = F.kl_div(log_student_rest, p_teacher_rest, reduction="sum") * temperature**2 / len(labels)
    return alpha * tckd + beta * nckd


class DKD(TrainingLoss):
    """Decoupled KD (Zhao et al., CVPR 2022): CE(student, labels) + w(epoch) * dkd_loss.

    The KD term is warmed up linearly, w = min((epoch + 1) / warmup_epochs, 1) for the 0-based epoch
    (mdistiller's ``min(epoch / WARMUP, 1)`` with its 1-based epochs). mdistiller's defaults: alpha 1, beta 8,
    T 4, warm-up 20 of 240 epochs; its ResNet-56 -> ResNet-20 configuration sets beta 2.
    """

    def __init__(
        self,
        label_smoothing: float,
        alpha: float = 1.0,
        beta: float = 8.0,
        temperature: float = 4.0,
        warmup_epochs: float = 20.0,
    ) -> None:
        super().__init__()
        if warmup_epochs < 0:
            raise BenchError(f"dkd warmup_epochs must be non-negative, got {warmup_epochs}")
        self.label_smoothing, self.alpha, self.beta, self.temperature = label_smoothing, alpha, beta, temperature
        self.warmup_epochs = warmup_epochs
        self.kd_weight = 1.0

    def start_epoch(self, epoch: int) -> None:
        self.kd_weight = min((epoch + 1) / self.warmup_epochs, 1.0) if self.warmup_epochs else 1.0

    def forward(self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor) -> LossOutput:
        logits = _single(output, Method.DKD.value)
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        kd = dkd_loss(logits, teacher, labels, self.alpha, self.beta, self.temperature)
        return ce + self.kd_weight * kd, logits


LOSSES: Registry[Callable[..., TrainingLoss]] = Registry("training method")
for _method, _loss in (
    (Method.NONE, CrossEntropy),
    (Method.KD, HintonKD),
    (Method.DEIT_HARD, DeiTHard),
    (Method.LIBKD, DeiTHard),
    (Method.KD_LAYER, KDLayer),
    (Method.DKD, DKD),
    (Method.LABEL_SMOOTHING, LabelSmoothing),
    (Method.SELF_KD, HintonKD),
):
    LOSSES.add(_method.value, _loss)


def register_loss(*methods: Method) -> Callable[[type[TrainingLoss]], type[TrainingLoss]]:
    """Class decorator: the loss of ``methods`` (used by the feature losses' module)."""

    def register(cls: type[TrainingLoss]) -> type[TrainingLoss]:
        for method in methods:
            LOSSES.add(method.value, cls)
        return cls

    return register


def build_loss(
    method: Method,
    options: Mapping[str, float],
    label_smoothing: float,
    shapes: tuple[list[tuple[int, ...]], list[tuple[int, ...]]] | None = None,
) -> TrainingLoss:
    """The loss module of ``method`` with the recipe's ``options``; an unknown option is a BenchError.

    ``shapes``: for a feature loss, the (C, H, W) of the student's and the teacher's stage outputs
    (:func:`~libkd_bench.models.training.features.stage_shapes` of the loss's ``stages``), which size what it learns.
    """
    cls = LOSSES.get(method.value)
    extra = {"shapes": shapes} if getattr(cls, "needs_features", False) else {}
    try:
        return cls(label_smoothing, **options, **extra)
    except TypeError as exc:
        raise BenchError(f"method {method.value}: bad options {dict(options)} ({exc})") from None


def loss_stages(method: Method, options: Mapping[str, float]) -> tuple[str, ...]:
    """The stages a feature method reads (empty for logit methods), known before its loss is built."""
    cls = LOSSES.get(method.value)
    stages = getattr(cls, "stages_for", None)
    return tuple(stages(options)) if stages is not None else ()


from libkd_bench.models.training import feature_losses  # noqa: E402, F401  (registers the feature losses)

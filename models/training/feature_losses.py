"""Feature distillation: FitNet hints and attention transfer, on stage outputs of student and teacher.

Both follow megvii-research/mdistiller at commit a08d46f10d6102bd6e3f258ca5ac880b020ea259
(``mdistiller/distillers/FitNet.py``, ``AT.py``, ``_common.py``; weights from ``mdistiller/engine/cfg.py``): the
student is trained jointly on CE(labels) + weight * feature loss from the first step, with the teacher run on
the same augmented batch. The stage outputs come from forward hooks (:mod:`libkd_bench.models.training.features`),
``features = (student stages, teacher stages)`` in the loss's ``stages`` order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.models.training.features import RESNET_STAGES
from libkd_bench.models.training.methods import LossOutput, TrainingLoss, _single, register_loss
from libkd_bench.models.training.recipe import Method

Shapes = tuple[list[tuple[int, ...]], list[tuple[int, ...]]]
StageFeatures = tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]


def _hint_stage(value: float) -> str:
    if value != int(value) or not 1 <= value <= len(RESNET_STAGES):
        raise BenchError(f"fitnet hint_stage must be 1, 2 or 3 (layer1..layer3), got {value}")
    return RESNET_STAGES[int(value) - 1]


@register_loss(Method.FITNET)
class FitNet(TrainingLoss):
    """FitNets (Romero et al., ICLR 2015) as mdistiller trains them: CE + weight * MSE(regressor(student), teacher).

    The hint is the output of stage ``hint_stage`` (2, the middle stage, as mdistiller's ``HINT_LAYER = 2``); the
    regressor is mdistiller's ``ConvReg`` for equal spatial sizes: a 1x1 convolution to the teacher's channels,
    batch norm and ReLU. It is trained with the student and never exported. Weight 100 (``FITNET.LOSS.FEAT_WEIGHT``).
    """

    needs_features = True

    def __init__(
        self, label_smoothing: float, hint_stage: float = 2, weight: float = 100.0, shapes: Shapes | None = None
    ) -> None:
        super().__init__()
        self.stages = (_hint_stage(hint_stage),)
        if shapes is None or len(shapes[0]) != 1 or len(shapes[1]) != 1:
            raise BenchError("method fitnet needs the shape of the student's and the teacher's hint stage")
        (student_channels, *student_size), (teacher_channels, *teacher_size) = shapes[0][0], shapes[1][0]
        if student_size != teacher_size:
            raise BenchError(
                f"fitnet's 1x1 regressor needs hint stages of one spatial size; student {self.stages[0]} is "
                f"{student_size}, teacher's {teacher_size}"
            )
        self.label_smoothing, self.weight = label_smoothing, weight
        self.regressor = nn.Sequential(
            nn.Conv2d(student_channels, teacher_channels, kernel_size=1),
            nn.BatchNorm2d(teacher_channels),
            nn.ReLU(inplace=True),
        )

    @classmethod
    def stages_for(cls, options: Mapping[str, float]) -> tuple[str, ...]:
        return (_hint_stage(options.get("hint_stage", 2)),)

    def forward(
        self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, features: StageFeatures
    ) -> LossOutput:
        logits = _single(output, Method.FITNET.value)
        (student,), (hint,) = features
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return ce + self.weight * F.mse_loss(self.regressor(student.float()), hint.float()), logits


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """(B, H*W) spatial attention: the channel mean of ``feature**p``, L2-normalised per image (mdistiller _at)."""
    return F.normalize(feature.float().pow(p).mean(1).flatten(1))


def stage_at_loss(student: torch.Tensor, teacher: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Mean squared difference of the two attention maps; the larger map is average-pooled to the smaller."""
    student_side, teacher_side = student.shape[2], teacher.shape[2]
    if student_side > teacher_side:
        student = F.adaptive_avg_pool2d(student, (teacher_side, teacher_side))
    elif student_side < teacher_side:
        teacher = F.adaptive_avg_pool2d(teacher, (student_side, student_side))
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


def at_loss(students: Sequence[torch.Tensor], teachers: Sequence[torch.Tensor], p: float = 2.0) -> torch.Tensor:
    """Sum over stages of :func:`stage_at_loss`."""
    return torch.stack([stage_at_loss(s, t, p) for s, t in zip(students, teachers, strict=True)]).sum()


@register_loss(Method.AT)
class AttentionTransfer(TrainingLoss):
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017) as mdistiller trains it: CE + beta * at_loss, p = 2.

    The three stages' outputs (``layer1``..``layer3``, mdistiller's ``feats[1:]``); beta 1000 (``AT.LOSS.FEAT_WEIGHT``).
    No parameters of its own.
    """

    needs_features = True
    stages = RESNET_STAGES

    def __init__(self, label_smoothing: float, beta: float = 1000.0, p: float = 2.0, shapes: Shapes | None = None):
        super().__init__()
        self.label_smoothing, self.beta, self.p = label_smoothing, beta, p

    @classmethod
    def stages_for(cls, options: Mapping[str, float]) -> tuple[str, ...]:
        return RESNET_STAGES

    def forward(
        self, output: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, features: StageFeatures
    ) -> LossOutput:
        logits = _single(output, Method.AT.value)
        students, teachers = features
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return ce + self.beta * at_loss(students, teachers, self.p), logits

"""Optimiser and learning-rate schedule of a :class:`~libkd_bench.models.training.recipe.TrainConfig`.

The rate rises linearly from 0 over the warmup steps, then follows a cosine to 0 at the last step; it is
stepped per batch, so the schedule is the same whatever the epoch length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from libkd_bench.models.training.recipe import Optimizer, TrainConfig

NO_DECAY_NAMES = ("cls_token", "dist_token", "pos_embed")


def parameter_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, object]]:
    """Weights of rank >= 2 decay; biases, norm scales, tokens and position embeddings do not."""
    decay, no_decay = [], []
    for module in modules:
        for name, parameter in module.named_parameters():
            if not parameter.requires_grad:
                continue
            exempt = parameter.ndim <= 1 or name.rsplit(".", 1)[-1] in NO_DECAY_NAMES
            (no_decay if exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(modules: Iterable[nn.Module], config: TrainConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(modules, config.weight_decay)
    if config.optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999))
    return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the peak rate at ``step`` (0-based): linear warmup, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup))

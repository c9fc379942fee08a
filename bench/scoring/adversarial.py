"""Adversarial robustness at score time: torchattacks FGSM, PGD and AutoAttack on a fixed, seeded subset.

The attacks get the wrapped model itself, which takes [0, 1] images and normalises inside, and torchattacks
is told nothing about normalisation, so the perturbation lives in pixel space and normalisation happens
exactly once. Randomness (PGD's start, AutoAttack's restarts) is seeded inside ``torch.random.fork_rng``, so
the global torch RNG is left as it was. Settings and the subset choice live in
:mod:`libkd_bench.scoring.adversarial_settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from libkd_bench.scoring.adversarial_settings import EPS_UNIT, AdversarialConfig, AttackName
from libkd_bench.scoring.forward import ForwardEngine


def build_attack(
    attack: AttackName, module: torch.nn.Module, eps: float, config: AdversarialConfig, num_classes: int
) -> Any:
    """The torchattacks object for one attack at ``eps`` (1/255 units) on a [0, 1]-input model."""
    import torchattacks

    radius = eps / EPS_UNIT
    if attack is AttackName.FGSM:
        return torchattacks.FGSM(module, eps=radius)
    if attack is AttackName.PGD:
        return torchattacks.PGD(module, eps=radius, alpha=radius / 4, steps=config.pgd_steps, random_start=True)
    return torchattacks.AutoAttack(
        module, norm="Linf", eps=radius, version="standard", n_classes=num_classes, seed=config.seed
    )


def attack_logits(
    engine: ForwardEngine,
    images: np.ndarray,
    labels: np.ndarray,
    attack: AttackName,
    eps: float,
    config: AdversarialConfig,
    num_classes: int,
    advance: Callable[[int], object] | None = None,
) -> np.ndarray:
    """float32 (n, C) logits of the model on adversarial versions of uint8 ``images`` (n, H, W, 3).

    The attack runs in float32 with autograd, batch by batch at the engine's batch size; the perturbed
    images are then scored by the engine's ordinary forward pass, like any set.
    """
    device = engine.device
    outputs = []
    fork_devices: Sequence[int] = [device.index or 0] if device.type == "cuda" else []
    with engine.threads(), torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        adversary = build_attack(attack, engine.module, eps, config, num_classes)
        for start in range(0, len(images), engine.config.batch):
            # contiguous (N, C, H, W): some attacks (FAB in AutoAttack) .view() gradients shaped like the input
            inputs = engine.to_input(images[start : start + engine.config.batch]).contiguous()
            targets = torch.from_numpy(np.asarray(labels[start : start + engine.config.batch])).to(device)
            outputs.append(engine.forward(adversary(inputs, targets)))
            if advance is not None:
                advance(len(inputs))
    return torch.cat(outputs).cpu().numpy()

"""The reference study's models: a RedNet teacher, ResNet-20 and ViT baselines, and their distilled students.

Schedules are short (reference points, not state of the art) and sized for one GPU running them side by side:
ResNet-20 30 epochs, RedNet 15, ViT 30, all at batch 256. Teachers: the zoo's akamaster ResNet-56 (93.6% on
the CIFAR-10 test split) and ``ref-rednet``; LIB-KD's ensemble averages the two's logits.
"""

from __future__ import annotations

from libkd_bench.models.training.recipe import Augment, Method, Optimizer, Recipe, TrainConfig, register_recipe

RESNET56 = "zoo:akamaster-resnet56"
REDNET = "recipe:ref-rednet"

# Hinton KD constants (temperature, weight of the soft term), as in the heterogeneous KD study.
KD_OPTIONS = {"temperature": 4.0, "alpha": 0.9}
# DeiT hard distillation: the two heads' losses weigh half each.
DEIT_OPTIONS = {"distill_weight": 0.5}

# ResNet-20 (akamaster option A): SGD-Nesterov, 30 epochs, 1 warmup epoch, batch 256, lr 0.2, weight decay 5e-4.
RESNET20_SCHEDULE = TrainConfig(epochs=30, batch_size=256, lr=0.2, weight_decay=5e-4, warmup_epochs=1)
# Small RedNet-26 (stem 32, base width 16): SGD-Nesterov, 15 epochs, 2 warmup, batch 256, lr 0.1, weight decay 5e-4.
REDNET_SCHEDULE = TrainConfig(epochs=15, batch_size=256, lr=0.1, weight_decay=5e-4, warmup_epochs=2)
# ViT 6x192, 3 heads, MLP ratio 3, patch 4: AdamW, 30 epochs, 3 warmup, batch 256, lr 1e-3, weight decay 0.05,
# label smoothing 0.1.
VIT_SCHEDULE = TrainConfig(
    epochs=30,
    batch_size=256,
    lr=1e-3,
    weight_decay=0.05,
    optimizer=Optimizer.ADAMW,
    warmup_epochs=3,
    augment=Augment.CROP_FLIP,
    label_smoothing=0.1,
)
# MLP ratio 3 (not 4) keeps the fp16 weights under 5 MB (2.2 M parameters).
VIT = {"depth": 6, "embed_dim": 192, "num_heads": 3, "patch_size": 4, "mlp_ratio": 3.0}
VIT_DISTILLED = {**VIT, "distilled": True}

register_recipe(
    Recipe(
        name="ref-rednet",
        arch="rednet_cifar",
        arch_kwargs={"depth": 26, "stem_channels": 32, "base_channels": 16},
        train=REDNET_SCHEDULE,
        description="involution (INN) teacher: RedNet-26, stem 32, base width 16, trained from scratch",
    )
)
register_recipe(
    Recipe(
        name="ref-resnet20-baseline",
        arch="resnet20_a",
        train=RESNET20_SCHEDULE,
        description="ResNet-20 trained on labels only: the baseline of the ResNet-20 students",
    )
)
register_recipe(
    Recipe(
        name="ref-resnet20-kd",
        arch="resnet20_a",
        train=RESNET20_SCHEDULE,
        method=Method.KD,
        method_options=KD_OPTIONS,
        teachers=(RESNET56,),
        baseline="ref-resnet20-baseline",
        description="ResNet-20 student of ResNet-56, Hinton KD (T=4, alpha=0.9)",
    )
)
register_recipe(
    Recipe(
        name="ref-resnet20-kdlayer",
        arch="resnet20_a",
        train=RESNET20_SCHEDULE,
        method=Method.KD_LAYER,
        method_options={**KD_OPTIONS, "hidden": 64},
        teachers=(RESNET56,),
        baseline="ref-resnet20-baseline",
        description="ResNet-20 student of ResNet-56 through a learnable 1x1-BN-ReLU-1x1 KD layer (training only)",
    )
)
register_recipe(
    Recipe(
        name="ref-vit-baseline",
        arch="vit_cifar",
        arch_kwargs=VIT,
        train=VIT_SCHEDULE,
        description="ViT 6x192/4 trained on labels only: the baseline of the ViT students",
    )
)
register_recipe(
    Recipe(
        name="ref-vit-kd",
        arch="vit_cifar",
        arch_kwargs=VIT,
        train=VIT_SCHEDULE,
        method=Method.KD,
        method_options=KD_OPTIONS,
        teachers=(RESNET56,),
        baseline="ref-vit-baseline",
        description="ViT 6x192/4 student of ResNet-56, soft logit KD (T=4, alpha=0.9)",
    )
)
register_recipe(
    Recipe(
        name="ref-vit-disttoken",
        arch="vit_cifar",
        arch_kwargs=VIT_DISTILLED,
        train=VIT_SCHEDULE,
        method=Method.DEIT_HARD,
        method_options=DEIT_OPTIONS,
        teachers=(RESNET56,),
        baseline="ref-vit-baseline",
        description="ViT 6x192/4 with a distillation token, DeiT hard distillation from ResNet-56",
    )
)
register_recipe(
    Recipe(
        name="ref-vit-libkd",
        arch="vit_cifar",
        arch_kwargs=VIT_DISTILLED,
        train=VIT_SCHEDULE,
        method=Method.LIBKD,
        method_options=DEIT_OPTIONS,
        teachers=(RESNET56, REDNET),
        baseline="ref-vit-baseline",
        description="LIB-KD: ViT 6x192/4 distillation token taught by ResNet-56 + RedNet, precomputed logits",
    )
)

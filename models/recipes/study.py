"""The reference study without confounds: teachers, baselines, controls and students on one source and schedule.

Every model trains on the shared CIFAR-10 JPEG train copy (``train-jpeg.npz``, 50,000 images; the data is the
``--data`` of ``libkd-bench train``, see scripts/train-study.sh) with one schedule family: SGD with Nesterov
momentum 0.9, one cycle of the learning rate per run (linear warm-up from 0, then a cosine to 0, stepped every
batch), batch 256 (the last partial batch dropped), zero-padded 32x32 crops and horizontal flips; on CUDA the
forward passes run under bfloat16 autocast (AMP) with channels-last memory. Teacher and baseline differ in
depth only.

- CNNs (teachers ResNet-56 and RedNet-26, every ResNet-20): 120 epochs, 2 warm-up epochs, peak lr 0.2 (RedNet
  0.1, the rate its reference recipe is stable at), weight decay 5e-4, no label smoothing.
- ViT 6x192/4 (the longer schedule): AdamW, 200 epochs, 10 warm-up epochs, peak lr 1e-3, weight decay 0.05,
  label smoothing 0.1.

The ResNet-20 students are all taught by ``study-resnet56`` (option-A ResNets, akamaster's layout, the same
stage widths 16/32/64 as the student), with seed 0 unless the name ends in ``-sN``: baseline, label smoothing
(eps 0.1, no teacher), self-distillation (teacher: the seed-1 baseline, a trained copy of the student's
architecture whose initialisation differs from the seed-0 student's), Hinton KD, DKD, FitNet, AT and the KD
layer. Baseline and KD are trained with seeds 0, 1, 2 (``-s0``, ``-s1``, ``-s2``; score them with
``--seed-of``). The ViT students (baseline, soft KD, distillation token, LIB-KD from ResNet-56 + RedNet) follow
the reference ones with the longer schedule. Method constants follow megvii-research/mdistiller
(commit a08d46f10d6102bd6e3f258ca5ac880b020ea259): DKD alpha 1, beta 2 (its ResNet-56 -> ResNet-20 setting),
T 4, warm-up over 10 of 120 epochs (its 20 of 240); FitNet hint on stage 2, weight 100; AT beta 1000, p 2.
"""

from __future__ import annotations

from dataclasses import replace

from libkd_bench.models.recipes.reference import DEIT_OPTIONS, KD_OPTIONS, VIT, VIT_DISTILLED
from libkd_bench.models.training.recipe import Method, Optimizer, Recipe, TrainConfig, register_recipe

SEEDS = (0, 1, 2)
RESNET56 = "recipe:study-resnet56"
REDNET = "recipe:study-rednet"
SELF_TEACHER = "study-resnet20-baseline-s1"

# ResNet-56 teacher and every ResNet-20: one cycle of 120 epochs, 2 warm-up, batch 256, lr 0.2, wd 5e-4, AMP.
CNN_SCHEDULE = TrainConfig(epochs=120, batch_size=256, lr=0.2, weight_decay=5e-4, warmup_epochs=2)
# RedNet-26: the same cycle at its reference peak rate 0.1.
REDNET_SCHEDULE = replace(CNN_SCHEDULE, lr=0.1)
# ViT 6x192/4: AdamW, one cycle of 200 epochs, 10 warm-up, batch 256, lr 1e-3, wd 0.05, label smoothing 0.1, AMP.
VIT_SCHEDULE = TrainConfig(
    epochs=200,
    batch_size=256,
    lr=1e-3,
    weight_decay=0.05,
    optimizer=Optimizer.ADAMW,
    warmup_epochs=10,
    label_smoothing=0.1,
)

DKD_OPTIONS = {"alpha": 1.0, "beta": 2.0, "temperature": 4.0, "warmup_epochs": 10.0}
FITNET_OPTIONS = {"hint_stage": 2.0, "weight": 100.0}
AT_OPTIONS = {"beta": 1000.0, "p": 2.0}
LABEL_SMOOTHING_OPTIONS = {"epsilon": 0.1}


def _student(name: str, description: str, *, seed: int = 0, baseline_seed: int = 0, **fields: object) -> Recipe:
    """A ResNet-20 of the study: the CNN schedule at ``seed``, compared with the baseline of ``baseline_seed``."""
    return Recipe(
        name=name,
        arch="resnet20_a",
        train=replace(CNN_SCHEDULE, seed=seed),
        description=description,
        baseline=f"study-resnet20-baseline-s{baseline_seed}",
        **fields,  # type: ignore[arg-type]
    )


register_recipe(
    Recipe(
        name="study-resnet56",
        arch="resnet56_a",
        train=CNN_SCHEDULE,
        description="study teacher: ResNet-56 (option A) on the JPEG train copy, the ResNet-20s' schedule",
    )
)
register_recipe(
    Recipe(
        name="study-rednet",
        arch="rednet_cifar",
        arch_kwargs={"depth": 26, "stem_channels": 32, "base_channels": 16},
        train=REDNET_SCHEDULE,
        description="study teacher: RedNet-26 (involution), stem 32, base width 16, 120 epochs",
    )
)
for _seed in SEEDS:
    register_recipe(
        replace(
            _student(f"study-resnet20-baseline-s{_seed}", f"ResNet-20 on labels only, seed {_seed}", seed=_seed),
            baseline=None,
        )
    )
for _seed in SEEDS:
    register_recipe(
        _student(
            f"study-resnet20-kd-s{_seed}",
            f"ResNet-20 student of study-resnet56, Hinton KD (T=4, alpha=0.9), seed {_seed}",
            seed=_seed,
            baseline_seed=_seed,
            method=Method.KD,
            method_options=KD_OPTIONS,
            teachers=(RESNET56,),
        )
    )
register_recipe(
    _student(
        "study-resnet20-ls",
        "control: ResNet-20 with label smoothing eps=0.1, no teacher",
        method=Method.LABEL_SMOOTHING,
        method_options=LABEL_SMOOTHING_OPTIONS,
    )
)
register_recipe(
    _student(
        "study-resnet20-selfkd",
        f"control: ResNet-20 self-distillation, Hinton KD (T=4, alpha=0.9) from {SELF_TEACHER}",
        method=Method.SELF_KD,
        method_options=KD_OPTIONS,
        teachers=(f"recipe:{SELF_TEACHER}",),
    )
)
register_recipe(
    _student(
        "study-resnet20-dkd",
        "ResNet-20 student of study-resnet56, DKD (alpha=1, beta=2, T=4, 10 warm-up epochs)",
        method=Method.DKD,
        method_options=DKD_OPTIONS,
        teachers=(RESNET56,),
    )
)
register_recipe(
    _student(
        "study-resnet20-fitnet",
        "ResNet-20 student of study-resnet56, FitNet hint on layer2 (1x1 regressor, weight 100)",
        method=Method.FITNET,
        method_options=FITNET_OPTIONS,
        teachers=(RESNET56,),
    )
)
register_recipe(
    _student(
        "study-resnet20-at",
        "ResNet-20 student of study-resnet56, attention transfer on layer1-3 (beta=1000, p=2)",
        method=Method.AT,
        method_options=AT_OPTIONS,
        teachers=(RESNET56,),
    )
)
register_recipe(
    _student(
        "study-resnet20-kdlayer",
        "ResNet-20 student of study-resnet56 through a learnable 1x1-BN-ReLU-1x1 KD layer (training only)",
        method=Method.KD_LAYER,
        method_options={**KD_OPTIONS, "hidden": 64},
        teachers=(RESNET56,),
    )
)
register_recipe(
    Recipe(
        name="study-vit-baseline",
        arch="vit_cifar",
        arch_kwargs=VIT,
        train=VIT_SCHEDULE,
        description="ViT 6x192/4 on labels only, 200 epochs: the baseline of the study's ViT students",
    )
)
register_recipe(
    Recipe(
        name="study-vit-kd",
        arch="vit_cifar",
        arch_kwargs=VIT,
        train=VIT_SCHEDULE,
        method=Method.KD,
        method_options=KD_OPTIONS,
        teachers=(RESNET56,),
        baseline="study-vit-baseline",
        description="ViT 6x192/4 student of study-resnet56, soft logit KD (T=4, alpha=0.9), 200 epochs",
    )
)
register_recipe(
    Recipe(
        name="study-vit-disttoken",
        arch="vit_cifar",
        arch_kwargs=VIT_DISTILLED,
        train=VIT_SCHEDULE,
        method=Method.DEIT_HARD,
        method_options=DEIT_OPTIONS,
        teachers=(RESNET56,),
        baseline="study-vit-baseline",
        description="ViT 6x192/4 with a distillation token, DeiT hard distillation from study-resnet56, 200 epochs",
    )
)
register_recipe(
    Recipe(
        name="study-vit-libkd",
        arch="vit_cifar",
        arch_kwargs=VIT_DISTILLED,
        train=VIT_SCHEDULE,
        method=Method.LIBKD,
        method_options=DEIT_OPTIONS,
        teachers=(RESNET56, REDNET),
        baseline="study-vit-baseline",
        description="LIB-KD: ViT distillation token taught by study-resnet56 + study-rednet, precomputed logits",
    )
)

"""The one training loop: a recipe's network, trained as the wrapped model that ``libkd-bench score`` loads.

All images stay on the device as one uint8 tensor; each batch is cropped, flipped and scaled to [0, 1] there, then
normalised with the recipe's preset exactly as :class:`~libkd_bench.models.loading.wrapped.NormalizedClassifier`
does. On CUDA the forward passes run under bfloat16 autocast with channels-last memory. Every random draw derives
from the recipe's seed: initialisation from (seed), the order and augmentation of epoch e from (seed, e), fixed
teacher views from (seed, view); so a run stopped after any epoch and resumed from ``WORKDIR/last.pt`` ends with
the same weights as one that never stopped (bit for bit on the CPU).

Teacher logits are precomputed for LIB-KD only (:mod:`~libkd_bench.models.training.teacher_bank`); every other
method runs the teacher on the batch the student sees. Feature methods (FitNet, AT) read the stage outputs of
both networks from that same forward pass through hooks (:mod:`~libkd_bench.models.training.features`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.core.progress import progress_bar
from libkd_bench.core.provenance import sha256_json
from libkd_bench.datasets_gen.classes import NUM_CLASSES
from libkd_bench.models.registry import create_architecture
from libkd_bench.models.spec import ModelSpec, SpecOverrides
from libkd_bench.models.training.augment import apply_params, draw_params
from libkd_bench.models.training.data import ImageSplit
from libkd_bench.models.training.features import FeatureTap, stage_shapes
from libkd_bench.models.training.methods import TrainingLoss, build_loss, loss_stages
from libkd_bench.models.training.recipe import Method, Recipe
from libkd_bench.models.training.schedule import build_optimizer, build_scheduler
from libkd_bench.models.training.state import EpochLog, load_state, logs_from_json, logs_to_json, save_state
from libkd_bench.models.training.teacher_bank import TeacherBank, build_bank
from libkd_bench.models.training.teachers import TeacherEnsemble

BANK_FOLDER = "teacher-logits"
TEACHER_BATCH = 500


@dataclass(frozen=True)
class TrainResult:
    """A finished (or stopped) run.

    Attributes:
        network: the bare network (what is exported), in eval mode, on the training device.
        spec: how the wrapped model feeds it.
        logs: one entry per finished epoch, resumed sessions included.
        completed: False when the run stopped before its last epoch (``stop_after``).
        train_seconds: wall time of all finished epochs, over every session.
        teacher_timing: for precomputed teacher logits, the one-time cost of the bank and the online cost it
            replaces (seconds per epoch); empty otherwise.
    """

    network: nn.Module
    spec: ModelSpec
    logs: list[EpochLog]
    completed: bool
    train_seconds: float
    teacher_timing: dict[str, float] = field(default_factory=dict)


def recipe_spec(recipe: Recipe) -> ModelSpec:
    """The wrapped model's spec for ``recipe``: its architecture, options and normalisation, 32x32 input."""
    layer = SpecOverrides(preset=recipe.preset, arch_kwargs=recipe.arch_kwargs)
    return layer.resolve(recipe.arch, NUM_CLASSES)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s generator: independent streams per (seed, epoch)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def fingerprint(recipe: Recipe, data: ImageSplit, teacher: TeacherEnsemble | None) -> str:
    """Identity of a run: a checkpoint is resumed only by the run it belongs to."""
    teachers = [info.sha256 for info in teacher.infos] if teacher is not None else []
    return sha256_json({"recipe": recipe.to_json(), "data": data.sha256, "teachers": teachers})


def _feature_teacher(recipe: Recipe, teacher: TeacherEnsemble | None) -> nn.Module:
    """The one teacher network whose stages a feature method reads."""
    if teacher is None or len(teacher.teachers) != 1:
        count = 0 if teacher is None else len(teacher.teachers)
        raise BenchError(f"recipe {recipe.name}: method {recipe.method.value} needs exactly one teacher, got {count}")
    return teacher.teachers[0]


def _build(recipe: Recipe, teacher: TeacherEnsemble | None = None) -> tuple[nn.Module, TrainingLoss]:
    """Network and loss module, initialised from the recipe's seed without touching the global generator.

    A feature loss is sized by the stage shapes of the student and the teacher, measured on one probe image in
    eval mode (so no batch-norm statistics move).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.train.seed)
        network = create_architecture(recipe.arch, NUM_CLASSES, **recipe.arch_kwargs)
        stages = loss_stages(recipe.method, recipe.method_options)
        shapes = None
        if stages:
            teacher_network = _feature_teacher(recipe, teacher)
            shapes = (
                stage_shapes(network, stages, f"student {recipe.arch}", scale=0.0),
                stage_shapes(teacher_network, stages, f"teacher {recipe.teachers[0]}", scale=0.5),
            )
        loss = build_loss(recipe.method, recipe.method_options, recipe.train.label_smoothing, shapes)
    return network, loss


def _feature_taps(
    recipe: Recipe, network: nn.Module, teacher: TeacherEnsemble | None, loss_fn: TrainingLoss, stack: ExitStack
) -> tuple[FeatureTap, FeatureTap] | None:
    """Hooks on the student's and the teacher's stages for a feature loss (removed when ``stack`` closes)."""
    if not loss_fn.needs_features:
        return None
    student = stack.enter_context(FeatureTap(network, loss_fn.stages, f"student {recipe.arch}"))
    teacher_network = _feature_teacher(recipe, teacher)
    return student, stack.enter_context(FeatureTap(teacher_network, loss_fn.stages, f"teacher {recipe.teachers[0]}"))


def _to_float(output: Any) -> Any:
    if isinstance(output, tuple):
        return tuple(o.float() for o in output)
    return output.float()


def train(
    recipe: Recipe,
    data: ImageSplit,
    workdir: Path,
    *,
    device: torch.device,
    teacher: TeacherEnsemble | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochLog], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``recipe`` on ``data``, resuming from ``workdir`` when it holds a checkpoint of the same run.

    Args:
        recipe: what to train and how.
        data: training images and labels.
        workdir: per-epoch checkpoint and precomputed teacher logits.
        device: where training runs.
        teacher: the frozen teacher (ensemble) the method needs; None for ``none``.
        progress: show a progress bar per epoch (stderr).
        on_epoch: called with each finished epoch's log.
        stop_after: finish at most this many epochs in this call (the run can be resumed later).
    """
    config = recipe.train
    if (teacher is None) == recipe.method.needs_teacher:
        raise ValueError(f"recipe {recipe.name} (method {recipe.method.value}) and the given teacher disagree")
    cuda = device.type == "cuda"
    spec = recipe_spec(recipe)
    network, loss_fn = _build(recipe, teacher)
    memory_format = torch.channels_last if cuda else torch.preserve_format
    network.to(device, memory_format=memory_format)
    loss_fn.to(device)
    count = len(data)
    batch_size = min(config.batch_size, count)
    steps = count // batch_size
    optimizer = build_optimizer([network, loss_fn], config)
    scheduler = build_scheduler(optimizer, config, steps)
    run_id = fingerprint(recipe, data, teacher)
    state = load_state(workdir, run_id)
    logs: list[EpochLog] = []
    timing: dict[str, float] = {}
    if state is not None:
        network.load_state_dict(state["network"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        logs = logs_from_json(state["logs"])
        timing = dict(state["teacher_timing"])

    images = torch.from_numpy(np.array(data.images, dtype=np.uint8)).to(device)
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64)).to(device)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    bank: TeacherBank | None = None
    if recipe.method is Method.LIBKD and teacher is not None and len(logs) < config.epochs:
        key = {"run": run_id, "views": config.teacher_views, "augment": config.augment.value, "seed": config.seed}
        bank = build_bank(
            teacher,
            images,
            Path(workdir) / BANK_FOLDER,
            key=key,
            views=config.teacher_views,
            augment=config.augment,
            seed=config.seed,
            batch_size=TEACHER_BATCH,
            device=device,
        )
        if bank.build_seconds:
            timing = {"bank_build_seconds": bank.build_seconds, "teacher_views": float(config.teacher_views)}
            timing["online_teacher_seconds_per_epoch"] = bank.build_seconds / config.teacher_views

    first = len(logs)
    last = config.epochs if stop_after is None else min(config.epochs, first + stop_after)
    hooks = ExitStack()
    taps = _feature_taps(recipe, network, teacher, loss_fn, hooks)
    for epoch in range(first, last):
        start = time.perf_counter()
        loss_fn.start_epoch(epoch)
        generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
        order = torch.randperm(count, generator=generator)[: steps * batch_size].to(device)
        if bank is not None:
            params = bank.params(epoch, count).to(device)[order]
            stored = torch.from_numpy(bank.logits(epoch)).to(device)[order]
        else:
            params = draw_params(steps * batch_size, config.augment, generator).to(device)
        network.train()
        loss_fn.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        with progress_bar(
            steps, f"{recipe.name} {epoch + 1}/{config.epochs}", enabled=progress, unit="step", leave=False
        ) as bar:
            for step in range(steps):
                rows = slice(step * batch_size, (step + 1) * batch_size)
                index = order[rows]
                x = apply_params(images[index], params[rows])
                y = labels[index]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    if bank is not None:
                        teacher_logits = stored[rows].float()
                    else:
                        teacher_logits = None if teacher is None else teacher(x).float()
                    output = _to_float(network((x - mean) / std))
                extra = {} if taps is None else {"features": (taps[0].take(), taps[1].take())}
                loss, logits = loss_fn(output, y, teacher_logits, **extra)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach()
                correct += (logits.detach().argmax(dim=1) == y).sum()
                bar.update(1)
        if cuda:
            torch.cuda.synchronize(device)
        log = EpochLog(
            epoch=epoch + 1,
            loss=float(loss_sum) / steps,
            accuracy=int(correct) / (steps * batch_size),
            seconds=time.perf_counter() - start,
            lr=scheduler.get_last_lr()[0],
        )
        logs.append(log)
        save_state(
            workdir,
            {
                "fingerprint": run_id,
                "epoch": epoch + 1,
                "network": network.state_dict(),
                "loss": loss_fn.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "logs": logs_to_json(logs),
                "teacher_timing": timing,
            },
        )
        if on_epoch is not None:
            on_epoch(log)
    hooks.close()
    network.eval()
    return TrainResult(
        network=network,
        spec=spec,
        logs=logs,
        completed=len(logs) == config.epochs,
        train_seconds=sum(log.seconds for log in logs),
        teacher_timing=timing,
    )

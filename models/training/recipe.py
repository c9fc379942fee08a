"""Training recipes: what to train (architecture, normalisation), how (schedule) and from whom (KD method, teachers).

A :class:`Recipe` is frozen and complete, so its JSON form identifies a training run: a checkpoint in a work
directory is resumed only by the recipe (and data) that wrote it. Recipes live in a registry filled by the
modules of :mod:`libkd_bench.models.recipes`; :func:`get_recipe` fails with the close matches of an unknown name. This
module imports no torch, so ``libkd-bench train --list`` stays quick.
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.core.locations import ZOO_PREFIX
from libkd_bench.core.normalisation import Preset
from libkd_bench.core.registry import Registry
from libkd_bench.models.spec import enum_member

RECIPE_TEACHER = "recipe:"


class Optimizer(str, enum.Enum):
    SGD_NESTEROV = "sgd-nesterov"
    ADAMW = "adamw"


class Augment(str, enum.Enum):
    """Per-image training augmentation, drawn afresh for every batch (or fixed per view for precomputed teachers)."""

    CROP_FLIP = "crop-flip"  # random 32x32 crop of the image zero-padded by 4 px, then a horizontal flip half the time
    FLIP = "flip"
    NONE = "none"


class Method(str, enum.Enum):
    """How the student learns from its teachers (see :mod:`libkd_bench.models.training.methods`)."""

    NONE = "none"  # cross-entropy on the labels only
    KD = "kd"  # Hinton et al. 2015: soft targets at temperature T
    DEIT_HARD = "deit-hard"  # DeiT: class head on the labels, distillation head on the teacher's argmax
    LIBKD = "libkd"  # deit-hard taught by a teacher ensemble whose logits are precomputed per fixed view
    KD_LAYER = "kd-layer"  # KD towards teacher logits passed through a learnable 1x1-BN-ReLU-1x1 adapter
    DKD = "dkd"  # Zhao et al. 2022: target and non-target class KD weighted apart (alpha, beta), warmed up
    FITNET = "fitnet"  # Romero et al. 2015: a middle stage regressed (1x1 conv - BN - ReLU) onto the teacher's
    AT = "at"  # Zagoruyko & Komodakis 2017: the stages' normalised spatial attention maps matched
    LABEL_SMOOTHING = "label-smoothing"  # control: cross-entropy on smoothed labels, no teacher
    SELF_KD = "self-kd"  # control: Hinton KD from a trained copy of the student's own architecture

    @property
    def needs_teacher(self) -> bool:
        """Whether the method learns from teachers (every method but ``none`` and ``label-smoothing``)."""
        return self not in (Method.NONE, Method.LABEL_SMOOTHING)


@dataclass(frozen=True)
class TrainConfig:
    """The schedule: one cosine decay with linear warmup, stepped every batch.

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step; the last partial batch of an epoch is dropped.
        lr: peak learning rate, reached after ``warmup_epochs``.
        weight_decay: applied to weights of rank >= 2 only (not to biases, norms, tokens, position embeddings).
        optimizer: SGD with Nesterov momentum 0.9, or AdamW (betas 0.9, 0.999).
        warmup_epochs: linear warmup from 0; may be fractional.
        augment: training augmentation.
        label_smoothing: smoothing of the cross-entropy on true labels, in [0, 1).
        seed: every random draw of the run (initialisation, order, augmentation, views) derives from it.
        teacher_views: fixed augmented views of the training set whose teacher logits are precomputed (LIB-KD);
            epoch e reads view e mod teacher_views.
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: Optimizer = Optimizer.SGD_NESTEROV
    warmup_epochs: float = 0.0
    augment: Augment = Augment.CROP_FLIP
    label_smoothing: float = 0.0
    seed: int = 0
    teacher_views: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "optimizer", enum_member(Optimizer, self.optimizer, "optimizer"))
        object.__setattr__(self, "augment", enum_member(Augment, self.augment, "augmentation"))
        for name in ("epochs", "batch_size", "teacher_views"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BenchError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.lr) and self.lr > 0) or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise BenchError("lr must be positive, weight_decay and warmup_epochs non-negative")
        if not 0 <= self.label_smoothing < 1:
            raise BenchError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(optimizer=self.optimizer.value, augment=self.augment.value)
        return data


@dataclass(frozen=True)
class Recipe:
    """One model to train.

    Attributes:
        name: registry name; also the exported file's stem (``NAME.safetensors``).
        arch: architecture registry name; the exported weights are this network's ``state_dict``.
        train: the schedule.
        description: one line for ``train --list``.
        arch_kwargs: builder options (JSON scalars), recorded in the sidecar so the loader rebuilds the network.
        preset: normalisation applied inside the wrapped model.
        method: the distillation method.
        method_options: the method's constants (temperature, alpha, ...), recorded with the weights.
        teachers: ``zoo:NAME`` or ``recipe:NAME`` (that recipe's exported weights); several form an ensemble
            whose logits are averaged.
        baseline: recipe name of the independently trained model of the student's architecture, if any.
    """

    name: str
    arch: str
    train: TrainConfig
    description: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    preset: Preset = Preset.CIFAR10
    method: Method = Method.NONE
    method_options: Mapping[str, float] = field(default_factory=dict)
    teachers: tuple[str, ...] = ()
    baseline: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "preset", enum_member(Preset, self.preset, "normalisation preset"))
        object.__setattr__(self, "method", enum_member(Method, self.method, "distillation method"))
        object.__setattr__(self, "arch_kwargs", types.MappingProxyType(dict(self.arch_kwargs)))
        object.__setattr__(self, "method_options", types.MappingProxyType(dict(self.method_options)))
        object.__setattr__(self, "teachers", tuple(self.teachers))
        if self.method.needs_teacher != bool(self.teachers):
            raise BenchError(f"recipe {self.name}: method {self.method.value} and teachers {self.teachers} disagree")
        for teacher in self.teachers:
            if not teacher.startswith((ZOO_PREFIX, RECIPE_TEACHER)):
                raise BenchError(f"recipe {self.name}: teacher {teacher!r} must be zoo:NAME or recipe:NAME")

    def with_epochs(self, epochs: int) -> Recipe:
        """This recipe with another epoch count (warmup capped to it)."""
        warmup = min(self.train.warmup_epochs, epochs)
        return replace(self, train=replace(self.train, epochs=epochs, warmup_epochs=warmup))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "preset": self.preset.value,
            "method": self.method.value,
            "method_options": dict(self.method_options),
            "teachers": list(self.teachers),
            "baseline": self.baseline,
            "train": self.train.to_json(),
        }


def _load_builtin_recipes() -> None:
    import libkd_bench.models.recipes  # noqa: F401  (registers on import)


_RECIPES: Registry[Recipe] = Registry("recipe", loader=_load_builtin_recipes)


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the registry; a name registered twice is a programming error."""
    if recipe.method is Method.SELF_KD:
        _check_self_teacher(recipe)
    return _RECIPES.add(recipe.name, recipe)


def _check_self_teacher(recipe: Recipe) -> None:
    """Self-distillation's one teacher is a registered recipe of the student's architecture and options."""
    names = [t[len(RECIPE_TEACHER) :] for t in recipe.teachers if t.startswith(RECIPE_TEACHER)]
    teacher = _RECIPES.find(names[0]) if len(names) == len(recipe.teachers) == 1 else None
    if teacher is None or (teacher.arch, dict(teacher.arch_kwargs)) != (recipe.arch, dict(recipe.arch_kwargs)):
        raise ValueError(
            f"recipe {recipe.name}: self-kd needs one recipe:NAME teacher, registered before it, "
            f"of its own architecture {recipe.arch} {dict(recipe.arch_kwargs)}; got {recipe.teachers}"
        )


def recipe_names() -> list[str]:
    """Every registered recipe name, sorted."""
    return _RECIPES.names()


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is a one-line BenchError listing the close matches."""
    if name not in _RECIPES:
        raise BenchError(unknown_name_message("recipe", name, _RECIPES.names()) + " ('libkd-bench list-recipes')")
    return _RECIPES.get(name)

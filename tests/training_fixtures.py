"""Small versions of the recipes and their data, so every recipe trains in seconds on a CPU."""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_CHECKPOINTS, synthetic_images

from libkd_bench.core.locations import ZOO_PREFIX
from libkd_bench.models import zoo
from libkd_bench.models.loading.wrapped import NormalizedClassifier
from libkd_bench.models.registry import create_architecture
from libkd_bench.models.spec import SpecOverrides
from libkd_bench.models.training.data import ImageSplit
from libkd_bench.models.training.export import spec_sidecar
from libkd_bench.models.training.loop import recipe_spec
from libkd_bench.models.training.recipe import RECIPE_TEACHER, Recipe, get_recipe
from libkd_bench.models.training.teachers import TeacherEnsemble, load_teachers

TINY_VIT = {"depth": 1, "embed_dim": 32, "num_heads": 2}


def tiny(recipe: Recipe, epochs: int = 4) -> Recipe:
    """``recipe`` with a one-block ViT (other architectures as they are) and a schedule of a few steps.

    A method's own warm-up (DKD's KD term) is shortened to one epoch, so every epoch's loss weighs its terms alike
    and a falling loss means learning.
    """
    kwargs = {**recipe.arch_kwargs, **(TINY_VIT if recipe.arch == "vit_cifar" else {})}
    schedule = replace(
        recipe.train, epochs=epochs, batch_size=16, lr=recipe.train.lr / 4, warmup_epochs=0, teacher_views=2
    )
    options = dict(recipe.method_options)
    if "warmup_epochs" in options:
        options["warmup_epochs"] = 1.0
    return replace(recipe, arch_kwargs=kwargs, train=schedule, method_options=options)


def split(count: int, seed: int) -> ImageSplit:
    images, labels = synthetic_images(count, seed)
    return ImageSplit(images, labels, f"synthetic:{count}:{seed}", f"synthetic-{count}-{seed}")


def write_random_export(recipe_name: str, folder: Path) -> Path:
    """A randomly initialised export of recipe ``recipe_name`` (weights + sidecar) in ``folder``."""
    from safetensors.torch import save_file

    recipe = get_recipe(recipe_name)
    torch.manual_seed(0)
    network = create_architecture(recipe.arch, 10, **recipe.arch_kwargs)
    path = folder / f"{recipe_name}.safetensors"
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, path)
    sidecar = spec_sidecar(recipe_spec(recipe), {"recipe": recipe_name})
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar))
    return path


def random_wrapped(arch: str) -> NormalizedClassifier:
    """A randomly initialised wrapped network of ``arch`` with its default spec."""
    return NormalizedClassifier(create_architecture(arch, 10), SpecOverrides().resolve(arch, 10)).eval()


def teachers_for(recipe: Recipe, folder: Path) -> TeacherEnsemble | None:
    """The recipe's teachers on the CPU: recipe teachers random (written to ``folder``), zoo ones from ../shared.

    Skips the test when a zoo teacher's shared copy is absent.
    """
    for reference in recipe.teachers:
        if reference.startswith(ZOO_PREFIX):
            entry = zoo.zoo_entry(reference[len(ZOO_PREFIX) :])
            if not (SHARED_CHECKPOINTS / entry.filename).is_file():
                pytest.skip(f"shared teacher checkpoint {entry.filename} not found in {SHARED_CHECKPOINTS}")
        elif not (folder / f"{reference[len(RECIPE_TEACHER) :]}.safetensors").is_file():
            write_random_export(reference[len(RECIPE_TEACHER) :], folder)
    return load_teachers(recipe.teachers, [folder], torch.device("cpu"))


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def stored_precision(network: torch.nn.Module, dtype: str) -> torch.nn.Module:
    """A copy of ``network`` whose floating-point tensors are rounded to ``dtype`` (as exported) and back."""
    copy = deepcopy(network)
    with torch.no_grad():
        for tensor in (*copy.parameters(), *copy.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(getattr(torch, dtype)).float())
    return copy

"""A whole training run: load the teachers, train (or resume), export, and record how the weights were made."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from libkd_bench.core.provenance import library_versions
from libkd_bench.models.training.data import ImageSplit
from libkd_bench.models.training.export import ExportedModel, export_model
from libkd_bench.models.training.loop import TrainResult, train
from libkd_bench.models.training.recipe import Recipe
from libkd_bench.models.training.state import EpochLog
from libkd_bench.models.training.teachers import TeacherEnsemble, load_teachers


@dataclass(frozen=True)
class TrainOutcome:
    """The training result and the exported file (None when the run stopped before its last epoch)."""

    result: TrainResult
    exported: ExportedModel | None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def training_metadata(
    recipe: Recipe, data: ImageSplit, result: TrainResult, teacher: TeacherEnsemble | None, device: torch.device
) -> dict[str, Any]:
    """What the sidecar's ``training`` mapping records (besides the clean accuracy, added at export)."""
    versions = library_versions()
    versions["safetensors"] = _version("safetensors")
    last = result.logs[-1]
    return {
        "recipe": recipe.name,
        "method": recipe.method.value,
        "method_options": dict(recipe.method_options),
        "teachers": [info.to_json() for info in teacher.infos] if teacher is not None else [],
        "baseline": recipe.baseline,
        "schedule": recipe.train.to_json(),
        "seed": recipe.train.seed,
        "train_source": data.source,
        "train_sha256": data.sha256,
        "train_images": len(data),
        "train_seconds": round(result.train_seconds, 2),
        "epoch_seconds": round(statistics.mean(log.seconds for log in result.logs), 3),
        "final_train_loss": last.loss,
        "final_train_accuracy": last.accuracy,
        "teacher_timing": result.teacher_timing,
        "device": device_name(device),
        "versions": versions,
    }


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def train_and_export(
    recipe: Recipe,
    data: ImageSplit,
    test: ImageSplit,
    *,
    out: Path,
    workdir: Path,
    device: torch.device,
    teacher_search: Sequence[Path] = (),
    progress: bool = False,
    on_epoch: Callable[[EpochLog], None] | None = None,
    stop_after: int | None = None,
) -> TrainOutcome:
    """Train ``recipe`` (resuming from ``workdir``) and, once its last epoch is done, export ``OUT/NAME``."""
    teacher = load_teachers(recipe.teachers, teacher_search, device)
    result = train(
        recipe,
        data,
        workdir,
        device=device,
        teacher=teacher,
        progress=progress,
        on_epoch=on_epoch,
        stop_after=stop_after,
    )
    if not result.completed:
        return TrainOutcome(result, None)
    metadata = training_metadata(recipe, data, result, teacher, device)
    exported = export_model(result.network, result.spec, recipe.name, out, test, metadata, device)
    return TrainOutcome(result, exported)

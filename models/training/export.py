"""Exporting a trained network: safetensors weights plus the sidecar that ``libkd-bench score`` reads.

``OUT/NAME.safetensors`` holds the bare network's ``state_dict`` (the keys the architecture registry builds),
in float16 when that changes clean accuracy by less than :data:`FP16_TOLERANCE`, else in float32.
``OUT/NAME.safetensors.json`` holds the spec (arch, num_classes, preset, input size, arch options) and, under
``training``, how the weights were made: recipe, method and its constants, teachers, baseline, schedule,
training time, device, clean accuracy and library versions. The accuracy is that of the exported file as
loaded through :func:`libkd_bench.models.loading.load.load_model`, so it is what scoring the file reproduces.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from libkd_bench.core.atomic_io import ensure_writable_dir, write_bytes_atomic, write_text_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_file
from libkd_bench.models.loading.wrapped import NormalizedClassifier
from libkd_bench.models.spec import ModelSpec
from libkd_bench.models.training.augment import to_float
from libkd_bench.models.training.data import ImageSplit

FP16_TOLERANCE = 0.001  # 0.1 percentage points of clean accuracy
EVAL_BATCH = 1000
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class ExportedModel:
    """The written weights: path, sha256, stored dtype and clean accuracy in [0, 1] of that file."""

    path: Path
    sha256: str
    dtype: str
    clean_accuracy: float
    clean_accuracy_fp32: float


@torch.no_grad()
def clean_accuracy(module: nn.Module, split: ImageSplit, device: torch.device) -> float:
    """Top-1 accuracy in [0, 1] of a wrapped model ([0, 1] images in) on ``split``, in float32 (no TF32)."""
    module.eval()
    correct = 0
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        for start in range(0, len(split), EVAL_BATCH):
            images = torch.from_numpy(np.array(split.images[start : start + EVAL_BATCH])).to(device)
            labels = torch.from_numpy(np.asarray(split.labels[start : start + EVAL_BATCH])).to(device)
            correct += int((module(to_float(images)).argmax(dim=1) == labels).sum())
    return correct / len(split)


def spec_sidecar(spec: ModelSpec, training: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar mapping: the spec fields the loader reads, and ``training`` metadata it ignores."""
    data = {key: value for key, value in spec.to_json().items() if key not in {"mean", "std"}}
    if spec.preset is None:
        data.update(mean=list(spec.mean), std=list(spec.std))
    return {**data, "training": dict(training)}


def _state_dict(network: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        key: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
        for key, value in network.state_dict().items()
    }


def _write(folder: Path, name: str, tensors: dict[str, torch.Tensor], sidecar: dict[str, Any], header: dict[str, str]):
    from safetensors.torch import save

    weights = folder / f"{name}.safetensors"
    write_bytes_atomic(weights, save(tensors, metadata=header))
    write_text_atomic(weights.with_name(weights.name + SIDECAR_SUFFIX), json.dumps(sidecar, indent=2) + "\n")
    return weights


def _loaded_accuracy(path: Path, split: ImageSplit, device: torch.device) -> float:
    from libkd_bench.models.loading.load import load_model

    return clean_accuracy(load_model(path, device=device).module, split, device)


def export_model(
    network: nn.Module,
    spec: ModelSpec,
    name: str,
    out: Path,
    test: ImageSplit,
    training: Mapping[str, Any],
    device: torch.device,
) -> ExportedModel:
    """Write ``OUT/NAME.safetensors`` and its sidecar (see the module docstring); returns what was written.

    ``training`` is the metadata recorded under the sidecar's ``training`` key; the clean accuracies and the
    stored dtype are added to it. The safetensors header carries the same metadata as one JSON string.
    """
    fp32_accuracy = clean_accuracy(NormalizedClassifier(network, spec).to(device), test, device)
    ensure_writable_dir(Path(out))
    with tempfile.TemporaryDirectory(dir=out, prefix=".tmp-export-") as scratch:
        trial = _write(Path(scratch), name, _state_dict(network, torch.float16), spec_sidecar(spec, training), {})
        try:
            fp16_accuracy: float | None = _loaded_accuracy(trial, test, device)
        except BenchError:  # float16 overflows (non-finite logits): keep float32
            fp16_accuracy = None
    keep_fp16 = fp16_accuracy is not None and abs(fp16_accuracy - fp32_accuracy) < FP16_TOLERANCE
    dtype, accuracy = (torch.float16, fp16_accuracy) if keep_fp16 else (torch.float32, fp32_accuracy)
    assert accuracy is not None
    metadata = {
        **training,
        "weights_dtype": str(dtype).removeprefix("torch."),
        "clean_accuracy": accuracy,
        "clean_accuracy_fp32": fp32_accuracy,
        "test_source": test.source,
        "test_sha256": test.sha256,
        "test_images": len(test),
    }
    header = {"format": "pt", "training": json.dumps(metadata, sort_keys=True)}
    path = _write(Path(out), name, _state_dict(network, dtype), spec_sidecar(spec, metadata), header)
    return ExportedModel(path, sha256_file(path), metadata["weights_dtype"], accuracy, fp32_accuracy)

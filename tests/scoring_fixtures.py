"""Helpers for the scoring tests: a tiny CIFAR-shaped CNN, a stand-in for a loaded model, set-store variants."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.registry import Batch, get_generator
from libkd_bench.datasets_gen.seeding import SetSeed
from libkd_bench.datasets_gen.store import SetStore, Severity


class TinyNet(nn.Module):
    """A fixed random CNN on [0, 1] inputs that normalises inside, like every wrapped model."""

    def __init__(self, seed: int = 0, num_classes: int = 10) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 16 * 16, num_classes)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv((x - self.mean) / self.std))
        return self.fc(nn.functional.max_pool2d(x, 2).flatten(1))


@dataclass(frozen=True)
class FakeSpec:
    arch: str = "tiny"
    num_classes: int = 10

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FakeCheckpoint:
    sha256: str
    path: str = "tiny.pt"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "format": "test", "metadata": {}}


@dataclass
class FakeLoaded:
    """Quacks like ``models.LoadedModel`` for engine tests: module, spec, checkpoint."""

    module: nn.Module
    spec: FakeSpec = field(default_factory=FakeSpec)
    checkpoint: FakeCheckpoint = field(default_factory=lambda: FakeCheckpoint("0" * 64))


def tiny_loaded(seed: int = 0) -> FakeLoaded:
    """A TinyNet whose checkpoint hash, like a real file's, differs for every seed."""
    return FakeLoaded(TinyNet(seed), checkpoint=FakeCheckpoint(hashlib.sha256(f"tiny-{seed}".encode()).hexdigest()))


def write_levels_variant(store: SetStore, name: str, values: Sequence[Any]) -> None:
    """Rewrite set ``name`` with its generator run at severity ``values`` (e.g. scramble grid 1), same recipe."""
    entry = get_generator(name)
    clean = store.load("clean")
    manifest = store.manifest(name)
    if manifest is None:
        raise BenchError(f"set {name} must be generated first")
    images, labels = np.asarray(clean.images[0]), np.asarray(clean.labels)
    with store.draft(name) as draft:
        out = draft.allocate("images", (len(values), *images.shape), np.uint8)
        for level, value in enumerate(values, start=1):
            batch = Batch(images, labels, np.arange(len(labels)), level, SetSeed(manifest.seed, name))
            out[level - 1] = entry.fn(batch, value, **manifest.parameters).images
        draft.put("labels", labels)
        severities = tuple(Severity(level, entry.severity_parameter, v) for level, v in enumerate(values, start=1))
        draft.finish(dataclasses.replace(manifest, severities=severities, arrays={}))

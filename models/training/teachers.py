"""Teachers: loaded through the project's own loader, frozen, and averaged when there are several.

A teacher reference is ``zoo:NAME`` (verified by its pinned sha256; ``$LIBKD_BENCH_ZOO_DIR`` points at an
offline copy) or ``recipe:NAME``: that recipe's exported ``NAME.safetensors`` (with its sidecar), looked for
in the given search folders in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.models.training.recipe import RECIPE_TEACHER

WEIGHTS_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class TeacherInfo:
    """What a teacher was: its reference, the file read and that file's sha256."""

    reference: str
    path: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"reference": self.reference, "path": self.path, "sha256": self.sha256}


class TeacherEnsemble(nn.Module):
    """Wrapped teachers ([0, 1] images in); the mean of their logits, in float32, without gradients."""

    def __init__(self, teachers: Sequence[nn.Module], infos: Sequence[TeacherInfo]) -> None:
        super().__init__()
        self.teachers = nn.ModuleList(teachers)
        self.infos = tuple(infos)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> TeacherEnsemble:
        return super().train(False)  # teachers stay in eval mode whatever the caller asks

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = [teacher(images).float() for teacher in self.teachers]
        return torch.stack(logits).mean(dim=0)


def teacher_path(reference: str, search: Sequence[Path]) -> str:
    """The checkpoint reference ``load_model`` takes for a teacher reference (see the module docstring)."""
    if not reference.startswith(RECIPE_TEACHER):
        return reference
    name = reference[len(RECIPE_TEACHER) :]
    for folder in search:
        candidate = Path(folder) / f"{name}{WEIGHTS_SUFFIX}"
        if candidate.is_file():
            return str(candidate)
    where = ", ".join(str(f) for f in search) or "no folder"
    raise BenchError(
        f"teacher {reference}: {name}{WEIGHTS_SUFFIX} not found in {where}; train it first "
        f"('libkd-bench train {name}') or point --teacher-dir at its folder"
    )


def load_teachers(references: Sequence[str], search: Sequence[Path], device: torch.device) -> TeacherEnsemble | None:
    """The frozen ensemble of ``references`` on ``device``, or None when there are none."""
    if not references:
        return None
    from libkd_bench.models.loading.load import load_model

    modules, infos = [], []
    for reference in references:
        loaded = load_model(teacher_path(reference, search), device=device)
        modules.append(loaded.module)
        infos.append(TeacherInfo(reference, str(loaded.checkpoint.path), loaded.checkpoint.sha256))
    return TeacherEnsemble(modules, infos)

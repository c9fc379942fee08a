"""Teacher logits precomputed once per fixed augmented view of the training set, as LIB-KD does.

View v of image i is a crop/flip whose parameters derive from (seed, v) alone, so the table of parameters is
recomputed instead of stored. The teacher (ensemble) runs once over each view; its logits are stored as
float16 ``view-VV.npy`` (N, K) in a folder named by everything they depend on (teacher file hashes, data,
views, augmentation, seed), and training epoch e reads view e mod V back from disk. A bank interrupted half
way is finished on the next run; one whose key differs is never read.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from libkd_bench.core.atomic_io import write_bytes_atomic, write_text_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_json
from libkd_bench.models.training.augment import apply_params, view_params
from libkd_bench.models.training.recipe import Augment
from libkd_bench.models.training.teachers import TeacherEnsemble

VIEW_SEED_TAG = 0x7EAC4E2  # separates view draws from the run's other random streams
FLOAT16_MAX = float(np.finfo(np.float16).max)  # larger logits are stored clamped (their softmax is one-hot anyway)


def view_table(count: int, augment: Augment, seed: int, view: int) -> torch.Tensor:
    """Crop/flip parameters (count, 3) of fixed view ``view``: a numpy generator seeded by (seed, view)."""
    return view_params(count, augment, np.random.default_rng([seed, VIEW_SEED_TAG, view]))


@dataclass(frozen=True)
class TeacherBank:
    """Where a bank lives and how many views it holds.

    Attributes:
        folder: holds ``view-VV.npy`` float16 (N, K) and ``bank.json``.
        views: number of fixed views.
        augment, seed: what the view parameters derive from.
        build_seconds: wall time spent running the teacher over the views in this process (0 when read back).
    """

    folder: Path
    views: int
    augment: Augment
    seed: int
    build_seconds: float = 0.0

    def view_file(self, view: int) -> Path:
        return self.folder / f"view-{view:02d}.npy"

    def params(self, epoch: int, count: int) -> torch.Tensor:
        """Crop/flip parameters of the view read at ``epoch``."""
        return view_table(count, self.augment, self.seed, epoch % self.views)

    def logits(self, epoch: int) -> np.ndarray:
        """The stored float16 teacher logits of the view read at ``epoch``."""
        return np.load(self.view_file(epoch % self.views))


@torch.no_grad()
def view_logits(
    teacher: TeacherEnsemble, images: torch.Tensor, params: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Teacher logits (N, K), float32 on ``device``, of uint8 (N, 32, 32, 3) ``images`` cropped by ``params``."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        x = apply_params(batch, params[start : start + batch_size].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(teacher(x).float())
    return torch.cat(out)


def build_bank(
    teacher: TeacherEnsemble,
    images: torch.Tensor,
    folder: Path,
    *,
    key: dict[str, object],
    views: int,
    augment: Augment,
    seed: int,
    batch_size: int,
    device: torch.device,
) -> TeacherBank:
    """The bank of ``key`` under ``folder``, computing the views that are missing."""
    target = folder / sha256_json(key)[:16]
    bank = TeacherBank(target, views, augment, seed)
    start = time.perf_counter()
    computed = 0
    for view in range(views):
        if bank.view_file(view).is_file():
            continue
        logits = view_logits(teacher, images, view_table(len(images), augment, seed, view), batch_size, device)
        if not bool(torch.isfinite(logits).all()):
            raise BenchError("the teacher ensemble gives non-finite logits on the training images; check its weights")
        buffer = io.BytesIO()
        np.save(buffer, logits.clamp(-FLOAT16_MAX, FLOAT16_MAX).cpu().numpy().astype(np.float16))
        write_bytes_atomic(bank.view_file(view), buffer.getvalue())
        computed += 1
    if computed:
        write_text_atomic(target / "bank.json", json.dumps(key, indent=2, sort_keys=True, default=str) + "\n")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return TeacherBank(target, views, augment, seed, build_seconds=time.perf_counter() - start if computed else 0.0)

"""The per-epoch training checkpoint: everything needed to continue a run exactly where it stopped.

``WORKDIR/last.pt`` holds the network, the loss module (a learnable KD layer), the optimiser and scheduler
states, the finished epoch count, the per-epoch log and the run's fingerprint (recipe, data, teachers). It is
rewritten atomically after every epoch and read with ``weights_only=True``. Random draws of epoch e derive
from (seed, e), so no generator state needs carrying over.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from libkd_bench.core.atomic_io import write_bytes_atomic
from libkd_bench.core.errors import BenchError

STATE_FILE = "last.pt"


@dataclass(frozen=True)
class EpochLog:
    """One finished epoch: mean training loss, training accuracy in [0, 1], wall seconds, last learning rate."""

    epoch: int
    loss: float
    accuracy: float
    seconds: float
    lr: float

    def line(self, total: int) -> str:
        return (
            f"epoch {self.epoch}/{total}: loss {self.loss:.4f}, train acc {100 * self.accuracy:.2f}%, "
            f"{self.seconds:.1f} s, lr {self.lr:.2e}"
        )


def save_state(workdir: Path, state: dict[str, Any]) -> None:
    """Write the training state to ``workdir/last.pt`` atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(Path(workdir) / STATE_FILE, buffer.getvalue())


def load_state(workdir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The state saved in ``workdir``, None when there is none; a state of another run is a BenchError."""
    path = Path(workdir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise BenchError(f"training checkpoint {path} is unreadable ({exc}); delete it to start over") from None
    if state.get("fingerprint") != fingerprint:
        raise BenchError(
            f"{path} belongs to another run (different recipe, schedule, data or teachers); "
            "use another --workdir or delete it to start over"
        )
    return state


def logs_to_json(logs: list[EpochLog]) -> list[dict[str, float]]:
    return [asdict(log) for log in logs]


def logs_from_json(items: list[dict[str, float]]) -> list[EpochLog]:
    return [EpochLog(**item) for item in items]

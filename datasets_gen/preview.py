"""A contact sheet of a set store: one row per set and severity, the same few images in every row."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from libkd_bench.core.atomic_io import write_bytes_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
from libkd_bench.datasets_gen.store import SetStore, StoredSet


def example_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """The first image of each of the first ``count`` classes present (one image per class where possible)."""
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    extra = [i for i in range(len(labels)) if i not in firsts]
    return np.asarray((firsts + extra)[:count])


def render_contact_sheet(
    store: SetStore, out: Path, names: Sequence[str] | None = None, examples: int = 10, scale: int = 3
) -> Path:
    """Write a PNG with a labelled row per (set, severity); returns its path."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(names or store.names())
    if not names:
        raise BenchError(f"no sets in {store.root}; create them with libkd-bench generate-sets --sets-dir {store.root}")
    sets = [store.load(name, verify=True) for name in names]
    rows = [(s, level) for s in sets for level in range(len(s.severities))]
    clean = next((s for s in sets if s.name == "clean"), sets[0])
    in_every_set = np.ones(len(clean.labels), dtype=bool)
    for stored in sets:
        if "source_index" in stored.arrays and not stored.external:
            present = np.zeros_like(in_every_set)
            present[np.asarray(stored.arrays["source_index"])] = True
            in_every_set &= present
    candidates = np.flatnonzero(in_every_set)
    picks = candidates[example_indices(np.asarray(clean.labels)[candidates], examples)]
    fig, axes = plt.subplots(
        len(rows),
        len(picks),
        figsize=(len(picks) * 0.35 * scale + 1.6, len(rows) * 0.35 * scale),
        squeeze=False,
        dpi=100,
    )
    pick_labels = np.asarray(clean.labels)[picks]
    for r, (stored, level) in enumerate(rows):
        for c, (index, label) in enumerate(zip(picks, pick_labels, strict=True)):
            ax = axes[r, c]
            ax.imshow(stored.images[level, row_of(stored, int(index), int(label))], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(CIFAR10_CLASSES[int(label)], fontsize=7)
        axes[r, 0].set_ylabel(_row_text(stored, level), rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes_atomic(out, buffer.getvalue())
    return out


def row_of(stored: StoredSet, index: int, label: int | None = None) -> int:
    """Row of clean image ``index`` in ``stored`` (a gated set holds only the images its gate kept). An external
    set holds other images: its first image of class ``label`` stands in (its first image when it has none)."""
    if stored.external:
        same_class = np.flatnonzero(np.asarray(stored.labels) == label)
        return int(same_class[0]) if len(same_class) else 0
    if "source_index" not in stored.arrays:
        return index
    return int(np.searchsorted(np.asarray(stored.arrays["source_index"]), index))


def _row_text(stored: StoredSet, level: int) -> str:
    severity = stored.severities[level]
    backend = f" [{stored.manifest.backend}]" if stored.manifest.backend else ""
    return f"{stored.name}{backend}\n{severity.label}" if severity.parameter else f"{stored.name}{backend}"

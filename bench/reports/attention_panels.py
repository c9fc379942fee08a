"""Attention panels: one PNG per student, a few panel images with the teacher's, its own and the baseline's maps.

Rows: the image, the teacher's Grad-CAM map, the student's, the baseline's, and the object mask (when the store
had masks); one column per image (a class-balanced few of the panel, chosen when the maps were cached). Maps
are drawn over the greyed image, each scaled to its own maximum. The panel reads only run records and the maps
cached next to their logits (``RESULTS/cache/<model dir>/attention-*.npz``): a run whose maps are missing is
left out of the pictures, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from libkd_bench.records.run_record import RunRecord, safe_name
from libkd_bench.reports.leaderboard import display_order, is_student, records_by_source
from libkd_bench.reports.plots import PlotFile
from libkd_bench.scoring.attention import load_maps

PANEL_PREFIX = "attention_"
_CMAP = "inferno"


def cached_maps(record: RunRecord, results: Path, file_name: str | None = None) -> dict[str, np.ndarray] | None:
    """The attention arrays cached for ``record`` (its own panel file, or ``file_name``), None when absent."""
    entry = record.scoring.get("attention")
    name = file_name or (entry.get("file") if isinstance(entry, Mapping) else None)
    if not name or not record.logits:
        return None
    return load_maps(Path(results) / record.logits / str(name))


def attention_panels(records: Sequence[RunRecord], results: Path) -> list[PlotFile]:
    """One panel per student whose teacher's maps are cached on the same panel, per source, in table order."""
    plots = []
    for source_id, group in records_by_source(records).items():
        by_id = {record.run_id: record for record in group}
        for record in display_order(group):
            teacher = by_id.get(str(record.kd.get("teacher")))
            own = cached_maps(record, results)
            if teacher is None or own is None or "picture" not in own:
                continue
            file_name = str(record.scoring["attention"]["file"])
            teacher_maps = cached_maps(teacher, results, file_name)
            if teacher_maps is None:
                continue
            baseline = by_id.get(str(record.kd.get("baseline")))
            baseline_maps = cached_maps(baseline, results, file_name) if baseline is not None else None
            rows = [("teacher", teacher.model, teacher_maps), ("student", record.model, own)]
            if baseline_maps is not None and baseline is not None:
                rows.append(("baseline", baseline.model, baseline_maps))
            picture = own["picture"]
            rows = [(role, model, maps["gradcam"][picture]) for role, model, maps in rows]
            masks = own["masks"][picture] if "masks" in own else None
            figure = panel_figure(own["images"], rows, masks)
            name = panel_name(record.model, source_id)
            plots.append(PlotFile(source_id, name, panel_title(record.model, source_id), figure))
    return plots


def panel_name(model: str, source_id: str) -> str:
    """The file name of a model's attention panel: ``attention_<model>_<source id>.png``."""
    return f"{PANEL_PREFIX}{safe_name(model)}_{safe_name(source_id)}.png"


def panel_title(model: str, source_id: str) -> str:
    return f"Attention maps of {model} ({source_id})"


def kept_panels(records: Sequence[RunRecord], present: set[str], drawn: set[str]) -> list[tuple[str, str, str]]:
    """``(source id, title, file name)`` of panels already in the output folder that were not drawn again because
    their maps are not in the cache (the cache is not committed), for models that still have a record, in table
    order: a leaderboard rebuilt from committed records keeps the panels drawn when the cache was there."""
    kept = []
    for source_id, group in records_by_source(records).items():
        for record in display_order(group):
            name = panel_name(record.model, source_id)
            if name in present and name not in drawn and is_student(record):
                kept.append((source_id, panel_title(record.model, source_id), name))
    return kept


def panel_figure(images: np.ndarray, rows: Sequence[tuple[str, str, np.ndarray]], masks: np.ndarray | None) -> Figure:
    """The grid: uint8 images (k, H, W, 3), one row per ``(role, model, maps (k, H, W))``, then masks if known."""
    count = len(images)
    titles = ["image", *(f"{role}\n{model}" for role, model, _ in rows)] + (["mask"] if masks is not None else [])
    figure = Figure(figsize=(0.9 * count + 1.4, 1.0 * len(titles) + 0.3))
    axes = figure.subplots(len(titles), count, squeeze=False)
    grey = images.astype(np.float64).mean(axis=-1) / 255.0
    for column in range(count):
        cells = [axes[row][column] for row in range(len(titles))]
        cells[0].imshow(images[column], interpolation="nearest")
        for cell, (_, _, maps) in zip(cells[1:], rows, strict=False):
            heat = maps[column]
            cell.imshow(grey[column], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            cell.imshow(heat / max(float(heat.max()), 1e-12), cmap=_CMAP, alpha=0.6, vmin=0.0, vmax=1.0)
        if masks is not None:
            cells[-1].imshow(masks[column], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        for cell in cells:
            cell.set_xticks([])
            cell.set_yticks([])
    for row, title in enumerate(titles):
        axes[row][0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=7)
    figure.subplots_adjust(left=1.2 / (0.9 * count + 1.4), right=0.99, top=0.98, bottom=0.02, wspace=0.05, hspace=0.05)
    return figure

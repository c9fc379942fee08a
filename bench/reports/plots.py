"""Leaderboard plots, one set per clean split: bias profile, shape bias vs clean accuracy, accuracy vs severity.

Each function takes the records of ONE source (results of different splits are never drawn together) and
returns a :class:`matplotlib.figure.Figure`, or None when the records hold nothing to draw. Figures are built
with the object-oriented API on the Agg canvas (no pyplot, no global state, no display needed), and every
model keeps one colour across the three plots of a source, in the leaderboard's row order.

- bias profile: grouped bars, one group per set (the wide table's ratio columns), one bar per model, with
  95% interval whiskers and the line ratio = 1 (accuracy as on clean images);
- shape bias vs clean accuracy: one labelled point per model with both intervals, the line 0.5 where shape
  and texture decisions balance (model-vs-human's convention: shape bias on the y axis, from 0 to 1);
- accuracy vs severity: one panel per set with levels (adversarial eps included), one line per model with
  its interval as a band.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from libkd_bench.records.corruption_summary import FAMILY as CORRUPTIONS
from libkd_bench.records.corruption_summary import is_corruption_set
from libkd_bench.records.run_record import MetricRow, RunRecord, safe_name
from libkd_bench.reports.leaderboard import display_order, kd_roles, records_by_source, set_rank
from libkd_bench.reports.markdown import REFERENCE_COLUMNS, SUPERPIXEL_HEADER, WideColumn, wide_columns

DPI = 150
_PALETTE = "tab10"
_SHORT_TITLES = {SUPERPIXEL_HEADER: "Locality", "Noise (patch-noise)": "Noise"}
LABEL_OFFSET = 7  # points between a point and its label
CAP_HALF_WIDTH = 2.5  # points: an interval bar's cap (errorbar capsize) reaches this far either side of the bar
Segment = tuple[float, float, float, float]
MARKER_SIZE = 55  # scatter marker area, points^2
MARKER_RADIUS = 0.5 * math.sqrt(MARKER_SIZE) + 1.0  # points, edge included


@dataclass(frozen=True)
class PlotFile:
    """A figure, the source whose records it draws, and the file name and title it is published under."""

    source: str
    name: str
    title: str
    figure: Figure


def leaderboard_plots(records: Sequence[RunRecord]) -> list[PlotFile]:
    """Every plot with something to draw, for every source, in a fixed order."""
    plots = []
    for source_id, group in records_by_source(records).items():
        stem = safe_name(source_id)
        for prefix, title, draw in (
            ("bias-profile", "Bias profile", bias_profile_figure),
            ("shape-bias-vs-accuracy", "Shape bias vs clean accuracy", shape_bias_figure),
            ("accuracy-vs-severity", "Accuracy vs severity", severity_figure),
        ):
            figure = draw(group)
            if figure is not None:
                plots.append(PlotFile(source_id, f"{prefix}_{stem}.png", f"{title} ({source_id})", figure))
    return plots


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes, without a software tag, so equal figures give equal files."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def bias_profile_figure(records: Sequence[RunRecord]) -> Figure | None:
    """Grouped bars of whole-set bias ratios: one group per set, one bar per model, interval whiskers."""
    ordered = _one_source(records)
    columns = [c for c in wide_columns(ordered) if c.metric == "bias_ratio"]
    if not columns:
        return None
    group = min(0.8, 0.3 * len(ordered))  # a lone model gets a bar, not a wall
    width = group / len(ordered)
    figure = Figure(figsize=(max(6.5, 1.05 * len(columns) + 2.5), 4.2), layout="constrained")
    ax = figure.add_subplot()
    for index, record in enumerate(ordered):
        found = [(i, record.metric(c.set, "bias_ratio")) for i, c in enumerate(columns)]
        found = [(i, row) for i, row in found if row is not None]
        if not found:
            continue
        x = [i - group / 2 + width * (index + 0.5) for i, _ in found]
        rows = [row for _, row in found]
        heights = [row.value for row in rows]
        ax.bar(
            x,
            heights,
            width * 0.92,
            yerr=_whiskers(rows),
            capsize=2.5,
            color=_colour(index),
            label=_label(record, ordered),
            error_kw={"elinewidth": 0.9, "ecolor": "0.2"},
        )
    ax.axhline(1.0, color="0.35", linestyle="--", linewidth=0.9, label="ratio 1: as on clean images")
    ticks = [_SHORT_TITLES.get(c.header, c.header.removesuffix(" ratio")).replace(" (", "\n(") for c in columns]
    ax.set_xticks(range(len(columns)), ticks)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(0, max(1.1, _top(ordered, columns) + 0.1))
    ax.set_ylabel("bias ratio (accuracy / clean accuracy)")
    ax.set_title(f"Bias profile: whole-set bias ratios, 95% intervals\nsource {ordered[0].source_id}")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure


def shape_bias_figure(records: Sequence[RunRecord]) -> Figure | None:
    """Cue-conflict shape bias (y) against clean accuracy in percent (x): one labelled point per model."""
    ordered = _one_source(records)
    points = [
        (index, record, clean, shape)
        for index, record in enumerate(ordered)
        if (clean := record.metric("clean", "accuracy")) is not None
        and (shape := record.metric("cue-conflict", "shape_bias")) is not None
    ]
    if not points:
        return None
    figure = Figure(figsize=(6.5, 4.6), layout="constrained")
    ax = figure.add_subplot()
    ax.axhline(0.5, color="0.35", linestyle="--", linewidth=0.9, label="0.5: shape = texture")
    labels, whiskers = [], []
    for index, record, clean, shape in points:
        colour = _colour(index)
        x, y = clean.value * 100, shape.value
        ax.errorbar(
            [x],
            [y],
            xerr=_whiskers([clean], 100.0),
            yerr=_whiskers([shape]),
            fmt="none",
            ecolor=colour,
            elinewidth=1.0,
            capsize=2.5,
        )
        ax.scatter(
            [x],
            [y],
            s=MARKER_SIZE,
            color=colour,
            edgecolor="black",
            linewidth=0.6,
            label=_label(record, ordered),
            zorder=3,
        )
        label = ax.annotate(
            record.model,
            (x, y),
            xytext=(LABEL_OFFSET, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6, "shrinkA": 0, "shrinkB": 4},
        )
        labels.append(label)
        whiskers += _whisker_segments(x, y, clean, shape)
    xs = [clean.value * 100 for _, _, clean, _ in points]
    ax.set_xlim(max(0.0, min(xs) - 8), min(100.0, max(xs) + 8))
    ax.set_ylim(0, 1)
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel("shape bias (fraction of shape decisions)")
    ax.set_title(f"Shape bias on cue-conflict vs clean accuracy\nsource {ordered[0].source_id}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    separate_labels(figure, ax, labels, whiskers)
    return figure


def _whisker_segments(x: float, y: float, clean: MetricRow, shape: MetricRow) -> list[Segment]:
    """The data-space segments of a point's two interval bars (clean accuracy in percent across, shape bias up)."""
    segments = []
    if clean.ci_low is not None and clean.ci_high is not None:
        segments.append((clean.ci_low * 100, y, clean.ci_high * 100, y))
    if shape.ci_low is not None and shape.ci_high is not None:
        segments.append((x, shape.ci_low, x, shape.ci_high))
    return segments


def separate_labels(figure: Figure, ax: Axes, labels: Sequence[Annotation], whiskers: Sequence[Segment] = ()) -> None:
    """Move point labels that would cover one another or an interval bar up or down, each to the free slot
    nearest its point.

    Labels are placed from the highest point down; a label keeps its place unless it overlaps a marker, an interval
    bar (``whiskers``: data-space segments ``(x0, y0, x1, y1)``) or a label placed before, else it moves by whole
    label heights (one up, one down, two up...) to the first free slot inside the axes. The leader line of each
    label then shows which point it names. Positions come from a layout pass on the Agg canvas, so they are those of
    the saved figure.
    """
    FigureCanvasAgg(figure)
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    radius = MARKER_RADIUS * figure.dpi / 72.0
    placed = [  # the points themselves: no label covers a marker
        Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
        for x, y in (ax.transData.transform(label.xy) for label in labels)
    ]
    for x0, y0, x1, y1 in whiskers:  # nor an interval bar, caps included
        (left, bottom), (right, top) = ax.transData.transform([(x0, y0), (x1, y1)])
        cap = CAP_HALF_WIDTH * figure.dpi / 72.0
        placed.append(Bbox.from_extents(left - cap, bottom - cap, right + cap, top + cap))
    for label in sorted(labels, key=lambda label: -label.xy[1]):
        box = text_extent(label, renderer)
        step = box.height + 1.0
        shifts = [0, *(sign * k for k in range(1, 2 * len(labels) + 1) for sign in (1, -1))]
        shift = next((shift for shift in shifts if _free(box.translated(0, shift * step), placed, inside)), 0)
        placed.append(box.translated(0, shift * step))
        dx, dy = label.xyann
        label.xyann = (dx, dy + shift * step * 72.0 / figure.dpi)  # display pixels -> offset points


def text_extent(label: Annotation, renderer: RendererBase) -> Bbox:
    """The display box of a label's text, without its leader line (an annotation's own extent includes it)."""
    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)


def _free(box: Bbox, placed: Sequence[Bbox], inside: Bbox) -> bool:
    """Whether ``box`` lies within ``inside`` (vertically) and overlaps none of ``placed``."""
    return inside.y0 <= box.y0 and box.y1 <= inside.y1 and not any(box.overlaps(other) for other in placed)


def severity_figure(records: Sequence[RunRecord]) -> Figure | None:
    """Accuracy (%) against severity level: one panel per set with levels, one line per model with its band."""
    ordered = _one_source(records)
    level_sets = sorted({row.set for r in ordered for row in _level_rows(r)}, key=set_rank)
    if not level_sets:
        return None
    ncols = min(3, len(level_sets))
    nrows = math.ceil(len(level_sets) / ncols)
    figure = Figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.7), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    handles = {}
    for ax, set_name in zip(axes, level_sets, strict=False):
        labels: dict[int, str] = {}
        for index, record in enumerate(ordered):
            rows = [row for row in _level_rows(record) if row.set == set_name]
            if not rows:
                continue
            labels.update({row.severity: row.severity_label for row in rows})
            x = [row.severity for row in rows]
            (line,) = ax.plot(x, [row.value * 100 for row in rows], marker="o", markersize=4, color=_colour(index))
            low, high = _band(rows)
            ax.fill_between(x, low, high, color=_colour(index), alpha=0.15, linewidth=0)
            handles.setdefault(record.model, (line, _label(record, ordered, clean=True)))
        ax.set_xticks(sorted(labels), [_level_value(labels[level]) for level in sorted(labels)])
        ax.set_xlabel(_level_name(labels.values()))
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(_set_title(set_name))
        ax.grid(alpha=0.3)
    for ax in axes[len(level_sets) :]:
        ax.remove()
    figure.suptitle(f"Accuracy vs severity, 95% intervals as bands (source {ordered[0].source_id})")
    lines, names = zip(*handles.values(), strict=True)
    figure.legend(lines, names, loc="outside lower center", ncols=min(3, len(names)), fontsize=8, frameon=False)
    return figure


def _one_source(records: Sequence[RunRecord]) -> list[RunRecord]:
    if not records:
        raise ValueError("a plot needs at least one record")
    if len({r.source_id for r in records}) != 1:
        raise ValueError("a plot draws the records of one source; group them with records_by_source")
    return display_order(records)


def _colour(index: int) -> tuple[float, ...]:
    return colormaps[_PALETTE](index % 10)


def _label(record: RunRecord, records: Sequence[RunRecord], clean: bool = False) -> str:
    roles = [*kd_roles(record, records), *(["student"] if record.kd.get("teacher") else [])]
    label = record.model + (f" ({', '.join(roles)})" if roles else "")
    accuracy = record.metric("clean", "accuracy")
    return label + (f", clean {accuracy.value * 100:.1f}%" if clean and accuracy is not None else "")


def _whiskers(rows: Sequence[MetricRow], scale: float = 1.0) -> list[list[float]]:
    """Lower and upper whisker lengths (0 where a row has no interval)."""
    below = [(row.value - row.ci_low) * scale if row.ci_low is not None else 0.0 for row in rows]
    above = [(row.ci_high - row.value) * scale if row.ci_high is not None else 0.0 for row in rows]
    return [[max(0.0, v) for v in below], [max(0.0, v) for v in above]]


def _band(rows: Sequence[MetricRow]) -> tuple[list[float], list[float]]:
    low = [(row.ci_low if row.ci_low is not None else row.value) * 100 for row in rows]
    high = [(row.ci_high if row.ci_high is not None else row.value) * 100 for row in rows]
    return low, high


def _top(records: Sequence[RunRecord], columns: Sequence[WideColumn]) -> float:
    """Highest whisker end (or value) over the bars, so the y axis holds them all."""
    values = [
        row.ci_high if row.ci_high is not None else row.value
        for r in records
        for c in columns
        if (row := r.metric(c.set, "bias_ratio")) is not None
    ]
    return max(values, default=1.0)


def _level_rows(record: RunRecord) -> list[MetricRow]:
    # the 15 corruption sets are drawn as one panel, their family mean, when the record has it
    summarised = record.metric(CORRUPTIONS, "accuracy") is not None
    rows = [
        row
        for row in record.metrics
        if row.metric == "accuracy" and row.severity is not None and not (summarised and is_corruption_set(row.set))
    ]
    return sorted(rows, key=lambda row: (set_rank(row.set), row.severity))


def _set_title(set_name: str) -> str:
    """``Locality (superpixel)``, ``PGD (adv-pgd)``: the table's name for the set, then the set itself."""
    header = next((c.header for c in REFERENCE_COLUMNS if c.set == set_name and c.metric == "bias_ratio"), "")
    title = _SHORT_TITLES.get(header, header.removesuffix(" ratio"))
    if not title:
        return set_name
    return title if title.lower() == set_name else f"{title} ({set_name})"


def _level_value(label: str) -> str:
    return label.split("=", 1)[1] if "=" in label else label


def _level_name(labels: Iterable[str]) -> str:
    """The parameter the levels vary (``n_segments``), or a generic axis label when they do not share one."""
    names = {label.split("=", 1)[0] for label in labels if "=" in label}
    return names.pop() if len(names) == 1 else "severity level"

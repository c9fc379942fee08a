"""Leaderboard plots: the expected bars, points and lines, read back from the matplotlib figure objects."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from leaderboard_records import all_records, baseline, other_source, student, teacher
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer

from libkd_bench.records.run_record import RunRecord, read_record
from libkd_bench.reports.plots import (
    bias_profile_figure,
    leaderboard_plots,
    png_bytes,
    severity_figure,
    shape_bias_figure,
    text_extent,
)

REPO = Path(__file__).resolve().parents[1]
RATIO_SETS_A = ("texture", "shape", "superpixel", "scramble", "patch-noise", "adv-pgd", "adv-fgsm")


def bars_by_label(figure) -> dict[str, list[float]]:
    (ax,) = figure.axes
    return {c.get_label(): [bar.get_height() for bar in c] for c in ax.containers if isinstance(c, BarContainer)}


def without(record: RunRecord, set_name: str) -> RunRecord:
    return dataclasses.replace(record, metrics=tuple(row for row in record.metrics if row.set != set_name))


def test_bias_profile_has_one_bar_per_model_and_set_with_whiskers() -> None:
    figure = bias_profile_figure([teacher(), baseline(), student()])
    bars = bars_by_label(figure)
    assert list(bars) == ["resnet56 (teacher)", "vit-scratch (baseline)", "vit-kd (student)"]
    assert all(len(heights) == len(RATIO_SETS_A) for heights in bars.values())
    assert sum(map(len, bars.values())) == 21
    assert bars["resnet56 (teacher)"][0] == pytest.approx(0.23 / 0.92)  # texture ratio
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "Texture", "Shape", "Locality", "Scramble", "Noise", "PGD", "FGSM",
    ]  # fmt: skip
    whiskers = [c.errorbar.lines[2][0] for c in ax.containers if isinstance(c, BarContainer)]
    assert [len(w.get_segments()) for w in whiskers] == [7, 7, 7]
    low, high = whiskers[0].get_segments()[0][:, 1]
    assert (low, high) == pytest.approx((0.25 - 0.02, 0.25 + 0.02))
    assert ax.get_ylabel().startswith("bias ratio")


def test_bias_profile_leaves_out_missing_values() -> None:
    bars = bars_by_label(bias_profile_figure([teacher(), without(baseline(), "texture"), student()]))
    assert sum(map(len, bars.values())) == 20
    assert len(bars["vit-scratch (baseline)"]) == 6


def test_shape_bias_has_one_labelled_point_per_model() -> None:
    figure = shape_bias_figure([teacher(), baseline(), student(), without(student(), "cue-conflict")])
    (ax,) = figure.axes
    offsets = [tuple(c.get_offsets()[0]) for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)) == 3
    assert offsets == [pytest.approx((92.0, 0.31)), pytest.approx((80.0, 0.42)), pytest.approx((82.0, 0.55))]
    assert sorted(t.get_text() for t in ax.texts if t.get_text() in {"resnet56", "vit-scratch", "vit-kd"}) == [
        "resnet56", "vit-kd", "vit-scratch",
    ]  # fmt: skip
    assert ax.get_xlabel() == "clean accuracy (%)"
    assert ax.get_ylim() == (0.0, 1.0)


def label_boxes(figure) -> list:
    """Where each point label's text is drawn in the saved figure (after a layout pass)."""
    (ax,) = figure.axes
    figure.draw_without_rendering()
    return [text_extent(text, figure.canvas.get_renderer()) for text in ax.texts]


@pytest.mark.parametrize("case", ["reference", "one-point"])
def test_shape_bias_labels_cover_no_other_label_and_no_point(case: str) -> None:
    if case == "reference":  # the committed reference runs: ten models, several within a point of each other
        records = [read_record(path) for path in sorted((REPO / "results" / "reference" / "runs").glob("*.json"))]
        assert len(records) >= 10
    else:  # eight models at exactly the same place
        records = [dataclasses.replace(student(), model=f"student-{i}") for i in range(8)]
    figure = shape_bias_figure(records)
    (ax,) = figure.axes
    boxes = label_boxes(figure)
    assert len(boxes) == len(records)
    assert [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])] == []
    points = [ax.transData.transform(text.xy) for text in ax.texts]
    assert [(i, j) for i, box in enumerate(boxes) for j, (x, y) in enumerate(points) if box.contains(x, y)] == []
    inside = ax.get_window_extent(figure.canvas.get_renderer())
    assert all(inside.y0 <= box.y0 and box.y1 <= inside.y1 for box in boxes)


def test_shape_bias_without_cue_conflict_draws_nothing() -> None:
    assert shape_bias_figure([other_source()]) is None


def test_accuracy_vs_severity_has_a_panel_per_levelled_set_and_a_line_per_model() -> None:
    figure = severity_figure([teacher(), baseline(), student()])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["Locality (superpixel)", "Scramble", "Noise (patch-noise)", "PGD (adv-pgd)", "FGSM (adv-fgsm)"]
    assert [len(ax.get_lines()) for ax in figure.axes] == [3, 3, 3, 3, 3]
    locality = figure.axes[0]
    assert [t.get_text() for t in locality.get_xticklabels()] == ["256", "64", "16"]
    assert locality.get_xlabel() == "n_segments"
    assert list(locality.get_lines()[0].get_ydata()) == pytest.approx([90.0, 69.0, 23.0])
    assert figure.axes[3].get_xlabel() == "eps"
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "resnet56 (teacher), clean 92.0%",
        "vit-scratch (baseline), clean 80.0%",
        "vit-kd (student), clean 82.0%",
    ]


def test_accuracy_vs_severity_of_a_set_one_model_lacks() -> None:
    figure = severity_figure([teacher(), without(student(), "scramble")])
    assert [len(ax.get_lines()) for ax in figure.axes] == [2, 1, 2, 2, 2]


def test_plots_never_mix_sources() -> None:
    with pytest.raises(ValueError, match="one source"):
        bias_profile_figure([teacher(), other_source()])


def test_leaderboard_plots_per_source_and_png_output() -> None:
    plots = leaderboard_plots(all_records())
    assert [(p.source, p.name) for p in plots] == [
        ("folder-bbbb2222", "bias-profile_folder-bbbb2222.png"),
        ("folder-bbbb2222", "accuracy-vs-severity_folder-bbbb2222.png"),
        ("npz-aaaa1111", "bias-profile_npz-aaaa1111.png"),
        ("npz-aaaa1111", "shape-bias-vs-accuracy_npz-aaaa1111.png"),
        ("npz-aaaa1111", "accuracy-vs-severity_npz-aaaa1111.png"),
    ]
    other = bars_by_label(plots[0].figure)
    assert other == {"resnet20": [pytest.approx(0.35), pytest.approx(0.2025 / 0.9)]}
    data = png_bytes(plots[0].figure)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    again = leaderboard_plots(all_records())[0].figure
    assert png_bytes(again) == data  # no time stamp or software tag: same records, same bytes

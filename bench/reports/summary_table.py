"""The short table ``score`` and ``rescore`` print: one line per set, whole-set figures with their intervals.

Accuracies are shown as percentages here and only here; records keep fractions. Per-level and per-class rows
stay in the record (``--json`` or the leaderboard show them). The ratios of an external set (not drawn from the
clean split) are marked ``(unpaired)`` with a footnote, and a Fieller set that is not an interval is written in
the leaderboard's words (libkd_bench.reports.transfer_tables.fieller_cell), never as its point value.
"""

from __future__ import annotations

from tabulate import tabulate

from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
from libkd_bench.records.fidelity import AGREEMENT, AGREEMENT_MAX, AGREEMENT_MIN, CLASS_SEPARATOR, KL
from libkd_bench.records.run_record import MetricRow, RunRecord, format_row
from libkd_bench.records.transfer import BEYOND_RECIPE, RECIPE_CONTROL_TRANSFER, TRANSFER, fieller_metric_names
from libkd_bench.reports.markdown import DEFAULT_CLASS_FLAG, DEFAULT_CLASS_SHARE, external_sets
from libkd_bench.reports.transfer_tables import fieller_cell

_MAIN = ("accuracy", "bias_ratio", "bias_ratio_cc", "top_class", "top_class_share")
_SHORT_NAMES = {
    "shape_bias": "shape bias",
    "shape_bias_class_mean": "class-mean shape bias",
    "error_consistency": "kappa vs teacher",
    "mcnemar_p": "McNemar p",
    "bias_ratio_diff_teacher": "ratio - teacher",
    "bias_ratio_diff_baseline": "ratio - baseline",
    TRANSFER: "transfer",
    RECIPE_CONTROL_TRANSFER: "recipe-control transfer",
    BEYOND_RECIPE: "transfer beyond recipe",
    AGREEMENT: "agreement vs teacher",
    AGREEMENT_MIN: "agreement min",
    AGREEMENT_MAX: "agreement max",
    KL: "KL(teacher ‖ student)",
    "shape_bias_cc": "shape bias (chance-corr.)",
    "decision_rate": "cue decisions",
}
# Row name of a Fieller set that is not an interval -> the estimate it belongs to: shown in words, not as a number.
_FIELLER_SETS = {
    name: metric
    for metric in (TRANSFER, RECIPE_CONTROL_TRANSFER, BEYOND_RECIPE)
    for name in fieller_metric_names(metric)[1:]
}
UNPAIRED = "(unpaired)"


def top_class_text(rows: dict[str, MetricRow], class_names: tuple[str, ...] = ()) -> str:
    """``airplane 37%`` for the most predicted class and its share, the leaderboard's ``⚑`` above its share."""
    top, share = rows.get("top_class"), rows.get("top_class_share")
    if top is None or share is None:
        return "-"
    index = int(top.value)
    name = class_names[index] if index < len(class_names) else str(index)
    flag = f" {DEFAULT_CLASS_FLAG}" if share.value > DEFAULT_CLASS_SHARE else ""
    return f"{name} {100 * share.value:.0f}%{flag}"


def format_value(row: MetricRow | None, percent: bool = False) -> str:
    """``81.2 [78.9, 83.5]`` (percent) or ``0.558 [0.520, 0.600]``; ``-`` for a missing row."""
    return format_row(row, percent, digits=3)


def other_metric_text(record: RunRecord, row: MetricRow) -> str:
    """``kappa vs teacher 0.412 [0.380, 0.440]``: a short name and the value; a non-interval Fieller set in words."""
    estimate = _FIELLER_SETS.get(row.metric, row.metric)
    label = _SHORT_NAMES.get(estimate, estimate)
    if row.metric in _FIELLER_SETS:
        return f"{label} {fieller_cell(record, row.set, estimate)}"
    if row.metric == "mcnemar_p":
        return f"{label} {row.value:.2g}"
    return f"{label} {format_value(row)}"


def _ratio_text(row: MetricRow | None, unpaired: bool) -> str:
    text = format_value(row)
    return f"{text} {UNPAIRED}" if unpaired and row is not None else text


def format_run_summary(record: RunRecord) -> str:
    """A heading naming the run, a table of its whole-set metrics, and a footnote for unpaired ratios."""
    whole = [row for row in record.metrics if row.severity is None and CLASS_SEPARATOR not in row.metric]
    set_names = list(dict.fromkeys(row.set for row in whole))
    external = external_sets([record])
    lines = []
    for name in set_names:
        rows = {row.metric: row for row in whole if row.set == name}
        levels = sum(1 for row in record.metrics if row.set == name and row.metric == "accuracy" and row.severity)
        others = "; ".join(other_metric_text(record, row) for metric, row in rows.items() if metric not in _MAIN)
        accuracy = rows.get("accuracy")
        lines.append(
            (
                name,
                levels or "-",
                accuracy.n if accuracy else "-",
                format_value(accuracy, percent=True),
                _ratio_text(rows.get("bias_ratio"), name in external),
                _ratio_text(rows.get("bias_ratio_cc"), name in external),
                top_class_text(rows, CIFAR10_CLASSES),
                others,
            )
        )
    headers = ("set", "levels", "n", "accuracy % [95% CI]", "bias ratio [95% CI]", "chance-corr.", "top class", "other")
    table = tabulate(lines, headers=headers)
    shown = sorted(name for name in set_names if name in external)
    if shown:
        table += (
            f"\n{UNPAIRED} {', '.join(shown)}: external images, not drawn from the clean split; the ratio divides "
            "accuracy on the set by clean accuracy on other images (resampled independently), and comparisons "
            "with a teacher or baseline leave the set out."
        )
    defaulted = [line[0] for line in lines if str(line[6]).endswith(DEFAULT_CLASS_FLAG)]
    if defaulted:
        table += (
            f"\n{DEFAULT_CLASS_FLAG} {', '.join(defaulted)}: one class takes more than half of the predictions on "
            "the set; its accuracy there is mostly that default class, not the cue."
        )
    efficiency = record.efficiency
    facts = f"params {efficiency.get('params', '-')}, MACs/image {efficiency.get('macs', '-')}, " + (
        f"{efficiency.get('images_per_s', '-')} images/s on {efficiency.get('device', '-')}"
    )
    return f"{record.run_id}  ({facts})\n{table}\n"

"""The short table ``score`` and ``rescore`` print: one line per set, whole-set figures with their intervals.

Accuracies are shown as percentages here and only here; records keep fractions. Per-level rows stay in the
record (``--json`` or the leaderboard show them).
"""

from __future__ import annotations

from tabulate import tabulate

from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
from libkd_bench.records.run_record import MetricRow, RunRecord, format_row

_MAIN = ("accuracy", "bias_ratio", "bias_ratio_cc", "top_class", "top_class_share")
DEFAULT_FLAG_SHARE = 0.5  # a set where one class takes more of the predictions than this is flagged
_SHORT_NAMES = {
    "shape_bias": "shape bias",
    "shape_bias_class_mean": "class-mean shape bias",
    "error_consistency": "kappa vs teacher",
    "mcnemar_p": "McNemar p",
    "bias_ratio_diff_teacher": "ratio - teacher",
    "bias_ratio_diff_baseline": "ratio - baseline",
    "bias_transfer": "transfer",
    "shape_bias_cc": "shape bias (chance-corr.)",
    "decision_rate": "cue decisions",
}


def top_class_text(rows: dict[str, MetricRow], class_names: tuple[str, ...] = ()) -> str:
    """``airplane 37%`` for the most predicted class and its share, ``!`` appended above the flag share."""
    top, share = rows.get("top_class"), rows.get("top_class_share")
    if top is None or share is None:
        return "-"
    index = int(top.value)
    name = class_names[index] if index < len(class_names) else str(index)
    flag = " !" if share.value > DEFAULT_FLAG_SHARE else ""
    return f"{name} {100 * share.value:.0f}%{flag}"


def format_value(row: MetricRow | None, percent: bool = False) -> str:
    """``81.2 [78.9, 83.5]`` (percent) or ``0.558 [0.520, 0.600]``; ``-`` for a missing row."""
    return format_row(row, percent, digits=3)


def format_run_summary(record: RunRecord) -> str:
    """A heading naming the run and a table of its whole-set metrics."""
    whole = [row for row in record.metrics if row.severity is None]
    set_names = list(dict.fromkeys(row.set for row in whole))
    lines = []
    for name in set_names:
        rows = {row.metric: row for row in whole if row.set == name}
        levels = sum(1 for row in record.metrics if row.set == name and row.metric == "accuracy" and row.severity)
        others = "; ".join(
            f"{_SHORT_NAMES.get(metric, metric)} {row.value:.2g}"
            if metric == "mcnemar_p"
            else f"{_SHORT_NAMES.get(metric, metric)} {format_value(row)}"
            for metric, row in rows.items()
            if metric not in _MAIN
        )
        accuracy = rows.get("accuracy")
        lines.append(
            (
                name,
                levels or "-",
                accuracy.n if accuracy else "-",
                format_value(accuracy, percent=True),
                format_value(rows.get("bias_ratio")),
                format_value(rows.get("bias_ratio_cc")),
                top_class_text(rows, CIFAR10_CLASSES),
                others,
            )
        )
    headers = ("set", "levels", "n", "accuracy % [95% CI]", "bias ratio [95% CI]", "chance-corr.", "top class", "other")
    table = tabulate(lines, headers=headers)
    efficiency = record.efficiency
    facts = f"params {efficiency.get('params', '-')}, MACs/image {efficiency.get('macs', '-')}, " + (
        f"{efficiency.get('images_per_s', '-')} images/s on {efficiency.get('device', '-')}"
    )
    return f"{record.run_id}  ({facts})\n{table}\n"

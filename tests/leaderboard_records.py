"""Hand-made run records for the leaderboard, plot and check tests.

Source ``npz-aaaa1111`` holds a teacher (resnet56), an independently trained baseline (vit-scratch) and a
distilled student (vit-kd, with comparison rows: some differences significant, some not); source
``folder-bbbb2222`` holds one model (resnet20) with AutoAttack rows. Every number is chosen by hand; ratios are
accuracy / clean accuracy so the records are internally consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from libkd_bench.records.run_record import MetricRow, RunRecord, write_record

SOURCE_A = {"id": "npz-aaaa1111", "kind": "npz", "location": "data/test.npz", "sha256": "a" * 64, "n": 2000}
SOURCE_B = {"id": "folder-bbbb2222", "kind": "folder", "location": "data/cifar", "sha256": "b" * 64, "n": 1000}
HALF_WIDTH = 0.02  # every interval is the estimate +- this

# set -> (severity labels, accuracy per level); a set without levels has labels ().
LEVELLED = {
    "superpixel": ("n_segments=256", "n_segments=64", "n_segments=16"),
    "scramble": ("grid=2", "grid=4"),
    "patch-noise": ("sigma=0.1", "sigma=0.4"),
    "adv-fgsm": ("eps=1/255", "eps=4/255"),
    "adv-pgd": ("eps=1/255", "eps=4/255"),
    "adv-autoattack": ("eps=1/255", "eps=4/255"),
}


def interval(value: float) -> tuple[float, float]:
    return (value - HALF_WIDTH, value + HALF_WIDTH)


def row(
    set_name: str,
    metric: str,
    value: float,
    severity: int | None = None,
    label: str = "",
    n: int = 2000,
    ci: bool = True,
) -> MetricRow:
    low, high = interval(value) if ci else (None, None)
    return MetricRow(set_name, severity, label, metric, value, low, high, n)


def set_rows(set_name: str, accuracies: Sequence[float], clean: float, n: int = 2000) -> list[MetricRow]:
    """Accuracy and bias-ratio rows of one set: per level and whole set (mean over levels) when it has levels."""
    labels = LEVELLED.get(set_name, ())
    rows = []
    for level, (label, accuracy) in enumerate(zip(labels, accuracies, strict=True) if labels else (), start=1):
        rows += [
            row(set_name, "accuracy", accuracy, level, label, n),
            row(set_name, "bias_ratio", accuracy / clean, level, label, n),
        ]
    whole = sum(accuracies) / len(accuracies)
    return [*rows, row(set_name, "accuracy", whole, n=n), row(set_name, "bias_ratio", whole / clean, n=n)]


def make_record(
    model: str,
    source: dict,
    clean: float,
    sets: dict[str, Sequence[float]],
    extra: Sequence[MetricRow] = (),
    kd: dict | None = None,
    efficiency: dict | None = None,
    arch: str = "",
) -> RunRecord:
    metrics = [row("clean", "accuracy", clean, n=source["n"])]
    for set_name, accuracies in sets.items():
        n = 500 if set_name.startswith("adv-") else source["n"]
        metrics += set_rows(set_name, accuracies, clean, n)
    return RunRecord(
        model=model,
        source=source,
        checkpoint={"path": f"{model}.pt", "sha256": (model.encode().hex() * 8)[:64], "format": "state_dict"},
        spec={"arch": arch} if arch else {},
        metrics=(*metrics, *extra),
        kd=kd or {"teacher": None, "baseline": None, "method": None},
        efficiency=efficiency or {},
        versions={"libkd-bench": "0.1.0", "python": "3.11.0"},
        created="2024-01-01T00:00:00Z",
    )


def teacher() -> RunRecord:
    return make_record(
        "resnet56",
        SOURCE_A,
        0.92,
        {
            "texture": [0.23],
            "shape": [0.46],
            "superpixel": [0.9, 0.69, 0.23],
            "scramble": [0.46, 0.115],
            "patch-noise": [0.874, 0.644],
            "cue-conflict": [0.3],
            "adv-fgsm": [0.414, 0.092],
            "adv-pgd": [0.368, 0.046],
        },
        extra=[
            row("cue-conflict", "shape_bias", 0.31, n=640),
            row("cue-conflict", "shape_bias_class_mean", 0.29, n=640),
        ],
        efficiency={"params": 855770, "macs": 125_750_000, "images_per_s": 5200.0, "device": "cpu", "batch_size": 128},
        arch="resnet56",
    )


def baseline() -> RunRecord:
    return make_record(
        "vit-scratch",
        SOURCE_A,
        0.8,
        {
            "texture": [0.28],
            "shape": [0.36],
            "superpixel": [0.76, 0.64, 0.4],
            "scramble": [0.24, 0.12],
            "patch-noise": [0.72, 0.56],
            "cue-conflict": [0.25],
            "adv-fgsm": [0.4, 0.12],
            "adv-pgd": [0.36, 0.08],
        },
        extra=[
            row("cue-conflict", "shape_bias", 0.42, n=600),
            row("cue-conflict", "shape_bias_class_mean", 0.4, n=600),
        ],
        efficiency={
            "params": 5_360_000,
            "macs": 1_260_000_000,
            "images_per_s": 900.0,
            "device": "cpu",
            "batch_size": 128,
        },
        arch="vit_tiny_patch4_32",
    )


def student() -> RunRecord:
    """The distilled ViT: its texture ratio is close to its baseline's (difference not significant)."""
    comparison = [
        row("clean", "error_consistency", 0.41),
        row("clean", "mcnemar_p", 0.003, ci=False),
        row("texture", "bias_ratio_diff_baseline", 0.0125),  # interval contains 0: not significant
        row("texture", "bias_ratio_diff_teacher", 0.0375),  # interval excludes 0: significant
        row("shape", "bias_ratio_diff_baseline", 0.05),
        row("shape", "bias_ratio_diff_teacher", 0.0),  # not significant
        row("superpixel", "bias_ratio_diff_baseline", 0.1),
        row("superpixel", "bias_ratio_diff_teacher", -0.06, ci=False),  # undefined interval: not significant
        # transfer: 3 gap hypotheses, Holm-adjusted p = 0.003 (texture), 0.04 (superpixel), 0.6 (shape)
        row("texture", "teacher_baseline_gap", 0.2),
        row("texture", "teacher_baseline_gap_p", 0.001, ci=False),
        row("texture", "bias_transfer", 0.25),
        row("texture", "recipe_control_transfer", 0.1),
        row("texture", "transfer_beyond_recipe", 0.15),
        row("texture", "bias_transfer_raw", 0.3),
        row("shape", "teacher_baseline_gap", 0.01),  # interval contains 0: teacher and baseline not distinguishable
        row("shape", "teacher_baseline_gap_p", 0.6, ci=False),
        row("shape", "bias_transfer_unbounded", 41.0, ci=False),  # noise over noise: never shown
        row("superpixel", "teacher_baseline_gap", 0.1),
        row("superpixel", "teacher_baseline_gap_p", 0.02, ci=False),
        row("superpixel", "bias_transfer", 1.4),
        # the control's Fieller set is (-inf, -0.4] u [0.2, inf): no number describes it
        MetricRow("superpixel", None, "", "recipe_control_transfer_exclusive", 3.0, -0.4, 0.2, 2000),
        MetricRow("superpixel", None, "", "transfer_beyond_recipe_unbounded", -1.6, None, None, 2000),
        # fidelity on clean: agreement inside the range the accuracies allow, the least agreeing class
        row("clean", "top1_agreement", 0.85),
        row("clean", "top1_agreement_min", 0.7, ci=False),
        row("clean", "top1_agreement_max", 0.95, ci=False),
        row("clean", "kl_teacher_student", 0.31),
        row("clean", "top1_agreement:cat", 0.62, n=200),
        row("clean", "top1_agreement:dog", 0.8, n=200),
    ]
    return make_record(
        "vit-kd",
        SOURCE_A,
        0.82,
        {
            "texture": [0.297],
            "shape": [0.41],
            "superpixel": [0.8, 0.7, 0.46],
            "scramble": [0.3, 0.1],
            "patch-noise": [0.75, 0.6],
            "cue-conflict": [0.27],
            "adv-fgsm": [0.43, 0.1],
            "adv-pgd": [0.4, 0.06],
        },
        extra=[
            row("cue-conflict", "shape_bias", 0.55, n=610),
            row("cue-conflict", "shape_bias_class_mean", 0.52, n=610),
            *comparison,
        ],
        kd={
            "teacher": "resnet56@npz-aaaa1111",
            "baseline": "vit-scratch@npz-aaaa1111",
            "method": "DeiT hard distillation",
            "recipe_control": "vit-recipe@npz-aaaa1111",
        },
        efficiency={
            "params": 5_530_000,
            "macs": 1_300_000_000,
            "images_per_s": 850.0,
            "device": "cpu",
            "batch_size": 128,
        },
        arch="vit_tiny_patch4_32",
    )


def other_source() -> RunRecord:
    return make_record("resnet20", SOURCE_B, 0.9, {"scramble": [0.45, 0.18], "adv-autoattack": [0.36, 0.045]})


def all_records() -> list[RunRecord]:
    return [teacher(), baseline(), student(), other_source()]


def write_results(results: Path, records: Sequence[RunRecord] | None = None) -> Path:
    """Write ``records`` (default: all of them) as run records under ``results/runs/``; returns ``results``."""
    for record in all_records() if records is None else records:
        write_record(results, record)
    return results

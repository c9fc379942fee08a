"""The leaderboard's bias-transfer and fidelity tables: one row per (student, set), as table cells.

Transfer (libkd_bench.records.transfer) is read on chance-corrected ratios. A cell is shown as a number only when
the teacher-baseline gap is identified (libkd_bench.reports.identification: significant after Holm's
adjustment across the split's cells, and at least the minimum effect); its interval is Fieller's, and a Fieller
set that is not an interval is written out in words, never as a number. The recipe control's transfer and the
student's transfer beyond it sit beside it, and the raw-ratio transfer of the reference study at the end.

Fidelity (libkd_bench.records.fidelity): top-1 agreement with the teacher beside the range the two accuracies
alone allow, KL(teacher ‖ student), and the class on which the student agrees least with its teacher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from libkd_bench.records.fidelity import AGREEMENT, AGREEMENT_MAX, AGREEMENT_MIN, CLASS_SEPARATOR, KL
from libkd_bench.records.run_record import MetricRow, RunRecord, format_row
from libkd_bench.records.transfer import (
    BEYOND_RECIPE,
    GAP,
    RAW_SUFFIX,
    RECIPE_CONTROL_TRANSFER,
    TRANSFER,
    fieller_metric_names,
)
from libkd_bench.reports.identification import (
    FAMILY_ALPHA,
    MIN_TRANSFER_GAP,
    P_VALUE_METHOD,
    Identification,
)
from libkd_bench.reports.leaderboard import set_rank

NOT_IDENTIFIED = "not identified"
MISSING = "-"


def fieller_cell(record: RunRecord, set_name: str, metric: str) -> str:
    """``0.52 [0.31, 0.75]`` for a bounded Fieller set; the shape in words otherwise; ``-`` when absent."""
    bounded, exclusive, unbounded = (record.metric(set_name, name) for name in fieller_metric_names(metric))
    if bounded is not None:
        return format_row(bounded)
    if exclusive is not None and exclusive.ci_low is not None and exclusive.ci_high is not None:
        return f"unbounded: outside ({exclusive.ci_low:.2f}, {exclusive.ci_high:.2f})"
    if unbounded is not None or exclusive is not None:
        return "unbounded: whole line"
    return MISSING


def _transfer_sets(record: RunRecord) -> list[str]:
    return sorted({row.set for row in record.metrics if row.metric == GAP and row.severity is None}, key=set_rank)


def transfer_table(
    students: Sequence[RunRecord], found: Mapping[tuple[str, str], Identification]
) -> dict[str, list[str]]:
    """Student | Set | gap | Holm p | transfer | recipe control | beyond recipe | raw transfer (empty: none)."""
    columns: dict[str, list[str]] = {
        header: []
        for header in (
            "Student",
            "Set",
            "Gap teacher - baseline",
            "p (Holm)",
            "Transfer (Fieller 95%)",
            "Recipe control transfer",
            "Transfer beyond recipe",
            "Raw-ratio transfer",
        )
    }
    has_control = any(r.metric(s, n) for r in students for s in _transfer_sets(r) for n in _control_names())
    for record in students:
        for set_name in _transfer_sets(record):
            cell = found.get((record.run_id, set_name))
            identified = cell is not None and cell.identified
            columns["Student"].append(record.model)
            columns["Set"].append(set_name)
            columns["Gap teacher - baseline"].append(format_row(record.metric(set_name, GAP)))
            columns["p (Holm)"].append(MISSING if cell is None else f"{cell.p_holm:.2g}")
            if identified:
                transfer = fieller_cell(record, set_name, TRANSFER)
                control = fieller_cell(record, set_name, RECIPE_CONTROL_TRANSFER)
                beyond = fieller_cell(record, set_name, BEYOND_RECIPE)
            else:
                reason = cell.reason if cell is not None else "no gap p-value"
                transfer, control, beyond = f"{NOT_IDENTIFIED} ({reason})", MISSING, MISSING
            columns["Transfer (Fieller 95%)"].append(transfer)
            columns["Recipe control transfer"].append(control)
            columns["Transfer beyond recipe"].append(beyond)
            columns["Raw-ratio transfer"].append(format_row(record.metric(set_name, TRANSFER + RAW_SUFFIX)))
    if not has_control:
        del columns["Recipe control transfer"], columns["Transfer beyond recipe"]
    return columns if columns["Student"] else {}


def _control_names() -> list[str]:
    return [*fieller_metric_names(RECIPE_CONTROL_TRANSFER), *fieller_metric_names(BEYOND_RECIPE)]


def transfer_notes(students: Sequence[RunRecord], names: Mapping[str, str]) -> list[str]:
    """Footnotes of the transfer table: what each column means, the test, the minimum effect, the control."""
    notes = [
        "Transfer = (student - baseline) / (teacher - baseline) on chance-corrected ratios, (acc - chance) / "
        "(clean - clean chance), chance = sum over classes of the run's predicted share x the set's label share; "
        "0 = like the baseline, 1 = like the teacher. Interval: Fieller 95% from the paired-bootstrap covariance "
        "of the two differences; a set that is not an interval is written out as such.",
        f"{NOT_IDENTIFIED}: the gap (teacher - baseline corrected ratio) is not significant at family-wise "
        f"{FAMILY_ALPHA:g} after Holm's adjustment across this split's (teacher, baseline, set) cells, or is smaller "
        f"than the minimum effect {MIN_TRANSFER_GAP:g}; p: {P_VALUE_METHOD}.",
        "Raw-ratio transfer: the reference study's definition on acc / clean ratios (percentile interval), "
        "for comparison only: its chance floor differs between runs.",
    ]
    runs = {str(r.kd["recipe_control"]) for r in students if r.kd.get("recipe_control")}
    controls = sorted(names.get(run, run.split("@", 1)[0]) for run in runs)
    if controls:
        notes.append(
            f"Recipe control ({', '.join(controls)}): the student's architecture trained with the teacher's data "
            "and recipe but without distillation. Its transfer is what the recipe alone moves toward the teacher; "
            "transfer beyond recipe = student transfer - control transfer = (student - control) / (teacher - "
            "baseline), Fieller 95%: the part of the transfer that distillation adds. An interval containing 0 "
            "means the student's transfer is explained by the teacher's data and recipe."
        )
    return notes


def fidelity_table(students: Sequence[RunRecord]) -> dict[str, list[str]]:
    """Student | Set | top-1 agreement | range allowed by the accuracies | KL | least-agreeing class."""
    columns: dict[str, list[str]] = {
        header: []
        for header in (
            "Student",
            "Set",
            "Top-1 agreement",
            "Bounds from accuracies",
            "KL(teacher ‖ student), nats",
            "Lowest-agreement class",
        )
    }
    for record in students:
        sets = sorted(
            {row.set for row in record.metrics if row.metric == AGREEMENT and row.severity is None}, key=set_rank
        )
        for set_name in sets:
            low, high = record.metric(set_name, AGREEMENT_MIN), record.metric(set_name, AGREEMENT_MAX)
            columns["Student"].append(record.model)
            columns["Set"].append(set_name)
            columns["Top-1 agreement"].append(format_row(record.metric(set_name, AGREEMENT)))
            bounds = MISSING if low is None or high is None else f"{low.value:.2f} - {high.value:.2f}"
            columns["Bounds from accuracies"].append(bounds)
            columns["KL(teacher ‖ student), nats"].append(format_row(record.metric(set_name, KL)))
            columns["Lowest-agreement class"].append(_lowest_class(record, set_name))
    return columns if columns["Student"] else {}


def _lowest_class(record: RunRecord, set_name: str) -> str:
    prefix = AGREEMENT + CLASS_SEPARATOR
    per_class: list[MetricRow] = [
        row for row in record.metrics if row.set == set_name and row.severity is None and row.metric.startswith(prefix)
    ]
    if not per_class:
        return MISSING
    lowest = min(per_class, key=lambda row: row.value)
    return f"{lowest.metric.removeprefix(prefix)} {format_row(lowest)}"


FIDELITY_NOTE = (
    "Fidelity (Stanton et al. 2021): top-1 agreement = share of images where student and teacher predict the same "
    "class; bounds = max(0, a_T + a_S - 1) to 1 - |a_T - a_S|, the range the two accuracies alone allow; KL = "
    "mean per-image KL(teacher ‖ student) of the softmax outputs. Per-class values (and per level) in the long CSV."
)

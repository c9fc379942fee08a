"""The wide leaderboard: one Markdown table per clean split, in the reference study's layout.

Columns: Method | clean acc (%) | Texture | Shape | Locality (superpixel) | Scramble | Noise (patch-noise) |
cue-conflict shape bias | PGD ratio | FGSM ratio | AutoAttack ratio | the variants (overlay texture, edge
shape) | any other set | Arch | Params | MACs. A column with no value in a table is left out. Ratios are the
whole-set bias ratios (a set with levels: mean accuracy over its levels / clean accuracy) with their 95%
paired-bootstrap intervals; clean accuracy is a percentage; shape bias a fraction.

The Method cell names the model and what is known of its distillation: ``vit-s (student of resnet56, DeiT
KD; baseline vit-s-scratch)``, ``resnet56 (teacher)``. A student's ratio whose difference from its baseline
(``†``) or teacher (``‡``) is not significant (the 95% interval of the difference contains 0, or is undefined)
is marked, and a footnote says so. Students with bias-transfer rows get a transfer table and students with a
teacher a fidelity table (libkd_bench.reports.transfer_tables). Records of different
sources are never put in one table: the same checkpoint on another split is another experiment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from libkd_bench.records.corruption_summary import FAMILY as CORRUPTIONS
from libkd_bench.records.corruption_summary import is_corruption_set
from libkd_bench.records.run_record import MetricRow, RunRecord, format_row
from libkd_bench.records.transfer import GAP as TRANSFER_GAP
from libkd_bench.reports.identification import identify_transfers
from libkd_bench.reports.leaderboard import display_order, kd_roles, records_by_source, set_rank
from libkd_bench.reports.transfer_tables import (
    FIDELITY_NOTE,
    NOT_IDENTIFIED,
    fidelity_table,
    transfer_notes,
    transfer_table,
)

NOT_SIGNIFICANT_VS_BASELINE = "†"
NOT_SIGNIFICANT_VS_TEACHER = "‡"
TRANSFER_NOT_IDENTIFIED = NOT_IDENTIFIED
DEFAULT_CLASS_FLAG = "⚑"
DEFAULT_CLASS_SHARE = 0.5
MISSING = "-"
ATTENTION_SET = "attention"  # Grad-CAM rows (libkd_bench.scoring.attention)
ATTENTION_ALIGNMENT_HEADER = "Attention alignment (Grad-CAM Spearman vs teacher)"
OBJECT_FOCUS_HEADER = "Object focus (Grad-CAM energy on object)"


@dataclass(frozen=True)
class WideColumn:
    """One column of the wide table: which whole-set metric of which set, and how it is shown."""

    header: str
    set: str
    metric: str = "bias_ratio"
    percent: bool = False


SUPERPIXEL_HEADER = "Locality (superpixel, high = less local)"
REFERENCE_COLUMNS = (
    WideColumn("clean acc (%)", "clean", "accuracy", percent=True),
    WideColumn("Texture", "texture"),
    WideColumn("Shape", "shape"),
    WideColumn(SUPERPIXEL_HEADER, "superpixel"),
    WideColumn("Scramble", "scramble"),
    WideColumn("Noise (patch-noise)", "patch-noise"),
    WideColumn("Corruptions", CORRUPTIONS),
    WideColumn("cue-conflict shape bias", "cue-conflict", "shape_bias"),
    WideColumn("PGD ratio", "adv-pgd"),
    WideColumn("FGSM ratio", "adv-fgsm"),
    WideColumn("AutoAttack ratio", "adv-autoattack"),
    WideColumn("Texture in context (overlay)", "texture-overlay"),
    WideColumn("Shape (edges)", "shape-edges"),
)
# The same columns corrected for chance: (acc - chance) / (clean - clean chance), chance from the run's class
# frequencies (libkd_bench.metrics.chance), and the chance-corrected shape bias with the share of cue-conflict
# images decided by either cue.
CHANCE_CORRECTED_COLUMNS = (
    WideColumn("Texture", "texture", "bias_ratio_cc"),
    WideColumn("Shape", "shape", "bias_ratio_cc"),
    WideColumn(SUPERPIXEL_HEADER, "superpixel", "bias_ratio_cc"),
    WideColumn("Scramble", "scramble", "bias_ratio_cc"),
    WideColumn("Noise (patch-noise)", "patch-noise", "bias_ratio_cc"),
    WideColumn("Corruptions", CORRUPTIONS, "bias_ratio_cc"),
    WideColumn("shape bias (chance-corr.)", "cue-conflict", "shape_bias_cc"),
    WideColumn("cue decisions", "cue-conflict", "decision_rate"),
    WideColumn("PGD ratio", "adv-pgd", "bias_ratio_cc"),
    WideColumn("Texture in context (overlay)", "texture-overlay", "bias_ratio_cc"),
    WideColumn("Shape (edges)", "shape-edges", "bias_ratio_cc"),
)


def leaderboard_markdown(
    records: Sequence[RunRecord], images: Mapping[str, Sequence[tuple[str, str]]] | None = None
) -> str:
    """The whole Markdown document: a title, then one section per source id.

    Args:
        records: run records, any sources.
        images: per source id, ``(title, relative file name)`` of plots to link under its tables.
    """
    groups = records_by_source(records)
    lines = ["# libkd-bench leaderboard", ""]
    lines.append(f"{len(records)} run(s) on {len(groups)} clean split(s); one table per split, never mixed.")
    for source_id, group in groups.items():
        lines += ["", *source_section(group, (images or {}).get(source_id, ()))]
    return "\n".join(lines).rstrip("\n") + "\n"


def source_section(records: Sequence[RunRecord], images: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Heading, wide table, bias-transfer table (when any) and footnotes of one source's records."""
    kind, n = (records[0].source.get(key, "?") for key in ("kind", "n"))
    lines = [f"## {records[0].source_id} ({kind}, n = {n})", ""]
    pooled = {r.model for r in records if r.kd.get("seeds")}  # seed groups: shown once, pooled
    ordered = display_order([r for r in records if r.kd.get("seed_of") not in pooled])
    names = {record.run_id: record.model for record in records}
    columns = wide_columns(records)
    table = {"Method": [method_cell(record, names, records) for record in ordered]}
    for column in columns:
        table[column.header] = [_metric_cell(record, column) for record in ordered]
    table.update(attention_columns(ordered))
    for header, facts in FACT_COLUMNS:
        cells = [facts(record) for record in ordered]
        if any(cell != MISSING for cell in cells):
            table[header] = cells
    lines += [_markdown(table), ""]
    corrected = _corrected_table(ordered)
    if corrected:
        lines += [
            "Corrected for chance: (acc - chance) / (clean - clean chance), chance = sum over classes of the run's "
            "predicted share x the set's label share; 0 = guessing, 1 = nothing lost.",
            "",
        ]
        lines += [_markdown(corrected), ""]
    students = [r for r in ordered if any(row.metric == TRANSFER_GAP for row in r.metrics)]
    transfer = transfer_table(students, identify_transfers(records))
    if transfer:
        lines += ["Bias transfer on chance-corrected ratios: 0 = like the baseline, 1 = like the teacher.", ""]
        lines += [_markdown(transfer), ""]
        lines += [f"- {note}" for note in transfer_notes(students, names)] + [""]
    fidelity = fidelity_table([r for r in ordered if r.kd.get("teacher")])
    if fidelity:
        lines += ["Fidelity to the teacher.", "", _markdown(fidelity), "", f"- {FIDELITY_NOTE}", ""]
    lines += footnotes(records, columns)
    for title, name in images:
        lines += ["", f"![{title}]({name})"]
    return lines


def attention_columns(records: Sequence[RunRecord]) -> dict[str, list[str]]:
    """Grad-CAM alignment columns: student-teacher Spearman agreement beside the baseline's (the reference a
    student is read against), and the share of map energy on the object; left out when no record has them."""
    columns = {}
    agreement = [
        _with_reference(
            record.metric(ATTENTION_SET, "agreement_spearman"),
            record.metric(ATTENTION_SET, "baseline_agreement_spearman"),
        )
        for record in records
    ]
    if any(cell != MISSING for cell in agreement):
        columns[ATTENTION_ALIGNMENT_HEADER] = agreement
    focus = [format_interval(record.metric(ATTENTION_SET, "object_focus")) for record in records]
    if any(cell != MISSING for cell in focus):
        columns[OBJECT_FOCUS_HEADER] = focus
    return columns


def _with_reference(row: MetricRow | None, reference: MetricRow | None) -> str:
    text = format_interval(row)
    return text if reference is None or text == MISSING else f"{text}; baseline {format_interval(reference)}"


def format_interval(row: MetricRow | None, percent: bool = False) -> str:
    """A table cell: ``0.83 [0.80, 0.86]`` (two decimals) or ``91.2 [90.1, 92.3]`` (percent); ``-`` if absent."""
    return format_row(row, percent, digits=2)


def not_significant(row: MetricRow | None) -> bool:
    """True for a difference row whose 95% interval contains 0 or is undefined; False when there is no row."""
    if row is None:
        return False
    return row.ci_low is None or row.ci_high is None or row.ci_low <= 0.0 <= row.ci_high


def wide_columns(records: Sequence[RunRecord]) -> list[WideColumn]:
    """The table's columns in order, without those no record has a value for."""
    known = {column.set for column in REFERENCE_COLUMNS}
    # The 15 corruption sets are summarised by the one Corruptions column (their rows stay in the long CSV).
    summarised = any(r.metric(CORRUPTIONS, "bias_ratio") is not None for r in records)
    extra = sorted(
        {
            row.set
            for r in records
            for row in r.metrics
            if row.set not in known and not (summarised and is_corruption_set(row.set))
        },
        key=set_rank,
    )
    unpaired = external_sets(records)
    columns = [
        *REFERENCE_COLUMNS,
        *(WideColumn(f"{name} ratio" + (" (unpaired)" if name in unpaired else ""), name) for name in extra),
    ]
    return [c for c in columns if any(r.metric(c.set, c.metric) is not None for r in records)]


def external_sets(records: Sequence[RunRecord]) -> dict[str, Mapping[str, object]]:
    """Sets whose images are not drawn from the clean split (CIFAR-10G, say), with their origin, by name."""
    return {
        name: entry.get("external") or {}
        for record in records
        for name, entry in record.sets.items()
        if entry.get("paired_with_clean") is False
    }


def _external_note(records: Sequence[RunRecord], columns: Sequence[WideColumn]) -> list[str]:
    """Footnotes for external sets in the table: why their ratios are unpaired, and their licence and citation."""
    external = {name: origin for name, origin in external_sets(records).items() if name in {c.set for c in columns}}
    if not external:
        return []
    notes = [
        f"(unpaired): {', '.join(sorted(external))} are external sets, not drawn from the clean split; their ratio is "
        "accuracy on the set / clean accuracy on the whole clean split, on other images (not paired: the two are "
        "resampled independently for the interval), and they are left out of error consistency, McNemar and "
        "bias transfer."
    ]
    sources: dict[tuple[str, str, str], list[str]] = {}
    for name, origin in sorted(external.items()):
        key = tuple(str(origin.get(k, "?")) for k in ("name", "licence", "citation"))
        sources.setdefault(key, []).append(name)
    for (source, licence, citation), names in sources.items():
        notes.append(f"{', '.join(names)}: images of {source}, licensed {licence}; cite {citation}.")
    return notes


def _corrected_table(records: Sequence[RunRecord]) -> dict[str, list[str]]:
    columns = [c for c in CHANCE_CORRECTED_COLUMNS if any(r.metric(c.set, c.metric) is not None for r in records)]
    if not columns:
        return {}
    table = {"Method": [r.model for r in records]}
    for column in columns:
        table[column.header] = [_metric_cell(record, column) for record in records]
    return table


def defaulted(record: RunRecord, set_name: str) -> bool:
    """True when one class takes more than half of the record's predictions on the set (whole set)."""
    share = record.metric(set_name, "top_class_share")
    return share is not None and share.value > DEFAULT_CLASS_SHARE


def cell_flags(record: RunRecord, column: WideColumn) -> tuple[str, str]:
    """The marks drawn after a cell's value: the default-class flag (``⚑`` or ""), then the not-significant
    marks of a bias ratio (``†``, ``‡``, both or ""); both empty for a missing value."""
    if record.metric(column.set, column.metric) is None:
        return "", ""
    flag = DEFAULT_CLASS_FLAG if column.set != "clean" and defaulted(record, column.set) else ""
    if column.metric != "bias_ratio":
        return flag, ""
    marks = "".join(
        mark
        for metric, mark in (
            ("bias_ratio_diff_baseline", NOT_SIGNIFICANT_VS_BASELINE),
            ("bias_ratio_diff_teacher", NOT_SIGNIFICANT_VS_TEACHER),
        )
        if not_significant(record.metric(column.set, metric))
    )
    return flag, marks


def _metric_cell(record: RunRecord, column: WideColumn) -> str:
    text = format_interval(record.metric(column.set, column.metric), column.percent)
    return " ".join(part for part in (text, *cell_flags(record, column)) if part)


def _run_name(run: str, names: Mapping[str, str]) -> str:
    return names.get(run, run.split("@", 1)[0])


def method_cell(record: RunRecord, names: Mapping[str, str], records: Sequence[RunRecord]) -> str:
    """``vit-s (student of resnet56, DeiT KD; baseline vit-s-scratch)``: the model and its distillation context."""
    details = kd_roles(record, records)
    teacher, baseline, method = record.kd.get("teacher"), record.kd.get("baseline"), record.kd.get("method")
    if teacher:
        details.append(f"student of {_run_name(str(teacher), names)}" + (f", {method}" if method else ""))
    elif method:
        details.append(str(method))
    if baseline:
        details.append(f"baseline {_run_name(str(baseline), names)}")
    if record.kd.get("seeds"):
        details.append(f"mean of {len(record.kd['seeds'])} seeds")
    return record.model + (f" ({'; '.join(details)})" if details else "")


def _arch(record: RunRecord) -> str:
    return str(record.spec.get("arch") or MISSING)


def _engineering(value: object, units: Sequence[tuple[float, str, int]]) -> str:
    """``value`` in the first unit it reaches (scale, suffix, decimals), e.g. ``0.86 M``; ``-`` if not a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return MISSING
    for scale, unit, digits in units:
        if value >= scale:
            return f"{value / scale:.{digits}f} {unit}"
    scale, unit, digits = units[-1]
    return f"{value / scale:.{digits}f} {unit}"


def _params(record: RunRecord) -> str:
    return _engineering(record.efficiency.get("params"), ((1e9, "G", 2), (1e6, "M", 2)))


def _macs(record: RunRecord) -> str:
    return _engineering(record.efficiency.get("macs"), ((1e9, "G", 2), (1e6, "M", 1)))


# Columns of facts about the model, after the metrics: header and the cell of one record.
FACT_COLUMNS = (("Arch", _arch), ("Params", _params), ("MACs", _macs))


def _levels_note(records: Sequence[RunRecord], column: WideColumn) -> str:
    """``superpixel: n_segments = 256, 128, 64`` from the per-level rows, or "" for a set without levels."""
    labels: dict[int, str] = {}
    for record in records:
        for row in record.metrics:
            if row.set == column.set and row.metric == "accuracy" and row.severity is not None:
                labels.setdefault(row.severity, row.severity_label or str(row.severity))
    if not labels:
        return ""
    ordered = [labels[level] for level in sorted(labels)]
    keys = {label.split("=", 1)[0] for label in ordered if "=" in label}
    if len(keys) == 1 and all("=" in label for label in ordered):
        return f"{column.set}: {keys.pop()} = {', '.join(label.split('=', 1)[1] for label in ordered)}"
    return f"{column.set}: {', '.join(ordered)}"


def footnotes(records: Sequence[RunRecord], columns: Sequence[WideColumn]) -> list[str]:
    """The notes under a source's tables, as Markdown list items (``- ...``), in plain text."""
    notes = [
        "Ratios: accuracy on the set / clean accuracy on the same images; a set with levels is averaged over "
        "them. Brackets: 95% paired-bootstrap intervals."
    ]
    notes += _external_note(records, columns)
    levels = [note for column in columns if (note := _levels_note(records, column))]
    if levels:
        notes.append("Levels: " + "; ".join(levels) + ".")
    attacked = sorted(
        {
            f"{row.set} n = {row.n}"
            for r in records
            for row in r.metrics
            if row.set.startswith("adv-") and not row.severity
        }
    )
    if attacked:
        notes.append("Attacks run on a fixed class-balanced subset of the clean split (" + ", ".join(attacked) + ").")
    panels = sorted({row.n for r in records for row in r.metrics if row.set == ATTENTION_SET})
    if panels:
        notes.append(
            "Attention: Grad-CAM maps of the true class on a seeded class-balanced clean panel (n = "
            + ", ".join(map(str, panels))
            + ", images the mask gate kept when masks exist); alignment = mean per-image Spearman correlation "
            "with the teacher's map, beside the baseline's; object focus = share of map energy inside the mask."
        )
    if any(column.set == CORRUPTIONS for column in columns):
        notes.append(
            "Corruptions: mean accuracy over the 15 CIFAR-10-C corruptions x 5 severities (Hendrycks & Dietterich "
            "2019) / clean accuracy; per corruption and severity in the long CSV."
        )
    if any(column.set == "cue-conflict" for column in columns):
        notes.append(
            "cue-conflict shape bias: among images classified as their shape or their texture class, the "
            "fraction classified by shape (Geirhos et al. 2019)."
        )
    if any(row.metric.startswith("bias_ratio_diff_") for r in records for row in r.metrics):
        notes.append(
            f"{NOT_SIGNIFICANT_VS_BASELINE} / {NOT_SIGNIFICANT_VS_TEACHER}: the student's ratio does not differ "
            "significantly from its baseline's / teacher's (the 95% interval of the difference contains 0 or "
            "is undefined)."
        )
    shown = {column.set for column in columns} - {"clean"}  # the flag is drawn in these columns' cells only
    flagged = sorted({row.set for r in records for row in r.metrics if row.set in shown and defaulted(r, row.set)})
    if flagged:
        notes.append(
            f"{DEFAULT_CLASS_FLAG}: one class takes more than half of this model's predictions on the set "
            f"({', '.join(flagged)}); its accuracy there is mostly that default class, not the cue."
        )
    if any(column.set == "superpixel" for column in columns):
        notes.append(
            "Locality (superpixel): superpixels average away detail inside each region, so a high ratio means the "
            "model relies little on local detail (the opposite direction of Texture)."
        )
    if any(r.efficiency.get("macs") is not None for r in records):
        notes.append("MACs: multiply-accumulates per image.")
    versions = sorted({str(r.versions.get("libkd-bench") or "?") for r in records})
    notes.append(f"Computed with libkd-bench {', '.join(versions)}.")
    return [f"- {note}" for note in notes]


def _markdown(table: Mapping[str, Sequence[str]]) -> str:
    frame = pd.DataFrame({header: [_escape(cell) for cell in cells] for header, cells in table.items()})
    return frame.to_markdown(index=False, disable_numparse=True)


def _escape(cell: str) -> str:
    """A table cell that stays one cell and renders as text: HTML characters as entities, line breaks as spaces,
    pipes escaped (a model name is user input)."""
    text = cell.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.splitlines()).replace("|", "\\|")

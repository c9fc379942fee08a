"""The long leaderboard: every metric row of every run record as one tidy CSV, and reading it back checked.

One row per (model, source, set, severity, metric), with the columns of :data:`LONG_COLUMNS`. ``severity`` is
the 1-based level or empty for the set as a whole; values and interval ends are fractions (never
percentages), empty where undefined. Rows are sorted by source, model, set (in the reference study's order,
then by name), severity (whole set first) and metric, and floats are written with six significant digits, so
the same records always give the same bytes. This file is both the leaderboard's table and the format
``libkd-bench check`` compares against a baseline.

Everything here is a pure function of records or of CSV text; only the commands print or write.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
from libkd_bench.datasets_gen.registry import ATTACK_RANK
from libkd_bench.datasets_gen.registry import set_rank as registered_set_rank
from libkd_bench.metrics.outcomes import ADVERSARIAL_PREFIX
from libkd_bench.records.run_record import MetricRow, RunRecord
from libkd_bench.records.transfer import GAP
from libkd_bench.reports.identification import Identification, identification_values, identify_transfers
from libkd_bench.scoring.adversarial_settings import AttackName

LONG_COLUMNS = (
    "model",
    "source",
    "set",
    "severity",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "value_label",
    "checkpoint_sha256",
    "suite_version",
)
OPTIONAL_COLUMNS = ("value_label",)  # absent from CSVs written before it: read as empty
KEY_COLUMNS = ("model", "source", "set", "severity", "metric")
FLOAT_FORMAT = "%.6g"  # six significant digits: far below any bootstrap interval's width, and stable bytes
SUITE = "libkd-bench"

METRIC_ORDER = (
    "accuracy",
    "bias_ratio",
    "shape_bias",
    "shape_bias_class_mean",
    "error_consistency",
    "mcnemar_p",
    "bias_ratio_diff_teacher",
    "bias_ratio_diff_baseline",
    "teacher_baseline_gap",
    "teacher_baseline_gap_p",
    "teacher_baseline_gap_p_holm",
    "transfer_identified",
    "bias_transfer",
    "bias_transfer_exclusive",
    "bias_transfer_unbounded",
    "recipe_control_transfer",
    "transfer_beyond_recipe",
    "teacher_baseline_gap_raw",
    "bias_transfer_raw",
    "top1_agreement",
    "top1_agreement_min",
    "top1_agreement_max",
    "kl_teacher_student",
)
_TEXT_COLUMNS = ("model", "source", "set", "metric", "value_label", "checkpoint_sha256", "suite_version")
_REQUIRED_TEXT = ("model", "source", "set", "metric")


@functools.cache  # a sort key called once per metric row; ranks are fixed when the sets register
def set_rank(name: str) -> tuple[int, str]:
    """Sort key of a set in reports: the set registry's rank (:func:`~libkd_bench.datasets_gen.registry.set_rank`),
    an adversarial pseudo-set at the registry's ``ATTACK_RANK`` in its attack's place."""
    if name.startswith(ADVERSARIAL_PREFIX):
        try:
            return (ATTACK_RANK + AttackName(name.removeprefix(ADVERSARIAL_PREFIX)).report_place, name)
        except ValueError:
            pass  # not an attack this version knows: placed as any unregistered set
    return registered_set_rank(name)


def metric_rank(name: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(name), "") if name in METRIC_ORDER else (len(METRIC_ORDER), name)


def row_rank(row: MetricRow) -> tuple[object, ...]:
    """Sort key of a metric row within one run: set, then whole set before levels, then metric."""
    return (set_rank(row.set), row.severity or 0, metric_rank(row.metric))


def long_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """Every metric row of ``records`` as a typed frame with :data:`LONG_COLUMNS`, in the file's row order.

    Raises:
        BenchError: two records describe the same model on the same source (their rows would collide).
    """
    records = list(records)
    found = identify_transfers(records)
    seen: set[tuple[str, str]] = set()
    rows = []
    for record in sorted(records, key=lambda r: (r.source_id, r.model)):
        identity = (record.model, record.source_id)
        if identity in seen:
            raise BenchError(
                f"two run records describe model {record.model!r} on source {record.source_id}; "
                "remove or rename one of them"
            )
        seen.add(identity)
        common = {
            "model": record.model,
            "source": record.source_id,
            "checkpoint_sha256": str(record.checkpoint.get("sha256") or ""),
            "suite_version": str(record.versions.get(SUITE) or ""),
        }
        for row in sorted([*record.metrics, *identification_rows(found, record)], key=row_rank):
            rows.append(
                {
                    **common,
                    "set": row.set,
                    "severity": row.severity,
                    "metric": row.metric,
                    "value": row.value,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "n": row.n,
                    "value_label": value_label(row),
                }
            )
    return _typed(pd.DataFrame(rows, columns=list(LONG_COLUMNS)))


def value_label(row: MetricRow) -> str:
    """The name a value stands for: the class of a ``top_class`` row (its value is the class index), else empty."""
    if row.metric == "top_class" and float(row.value).is_integer() and 0 <= row.value < len(CIFAR10_CLASSES):
        return CIFAR10_CLASSES[int(row.value)]
    return ""


def identification_rows(found: Mapping[tuple[str, str], Identification], record: RunRecord) -> list[MetricRow]:
    """A student's leaderboard-level rows per set: the Holm-adjusted gap p-value and ``transfer_identified``
    (1 or 0), see libkd_bench.reports.identification. They depend on every record of the split, so they live in
    the leaderboard, not in the run record."""
    gaps = {row.set: row.n for row in record.metrics if row.metric == GAP and row.severity is None}
    return [
        MetricRow(set_name, None, "", metric, value, None, None, gaps.get(set_name, 0))
        for set_name, values in identification_values(found, record.run_id).items()
        for metric, value in values.items()
    ]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    types: Mapping[str, str] = {
        **dict.fromkeys(_TEXT_COLUMNS, "object"),
        "severity": "Int64",
        "n": "Int64",
        **dict.fromkeys(("value", "ci_low", "ci_high"), "float64"),
    }
    return frame.astype(types).reset_index(drop=True)


def format_long_csv(frame: pd.DataFrame) -> str:
    """The CSV text of a long frame: fixed columns, six significant digits, empty cells for missing values."""
    return frame.loc[:, list(LONG_COLUMNS)].to_csv(
        index=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n"
    )


def written_long_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """:func:`long_frame` rounded exactly as its CSV stores it, so comparisons from records and from the file agree."""
    return parse_long_csv(format_long_csv(long_frame(records)))


def parse_long_csv(text: str, what: str = "CSV") -> pd.DataFrame:
    """A long leaderboard CSV back into a typed frame, refusing anything that is not one.

    Args:
        text: the file's content.
        what: how messages name the file (``baseline results/baseline.csv``).

    Raises:
        BenchError: unparsable text, missing columns, an empty required cell, a non-numeric value or
            interval end, a severity or n that is not a whole number, or two rows with the same key.
    """
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        detail = " ".join(str(exc).split()) or "no columns"
        raise BenchError(
            f"{what} is not a readable CSV ({detail}); give a CSV written by libkd-bench leaderboard"
        ) from None
    width = len(raw.columns)
    for column in OPTIONAL_COLUMNS:
        if column not in raw.columns:
            raw[column] = ""
    missing = [column for column in LONG_COLUMNS if column not in raw.columns]
    if missing:
        raise BenchError(
            f"{what} lacks the column(s) {', '.join(missing)}; give a long CSV written by libkd-bench leaderboard"
        )
    _require_whole_rows(text, width, what)
    raw = raw.loc[:, list(LONG_COLUMNS)].apply(lambda column: column.str.strip())
    for column in _REQUIRED_TEXT:
        _require_filled(raw, column, what)
    _require_hashes(raw, what)
    parsed = {column: raw[column] for column in _TEXT_COLUMNS}
    parsed["value"] = _numbers(raw, "value", what, required=True)
    parsed["ci_low"] = _numbers(raw, "ci_low", what, required=False)
    parsed["ci_high"] = _numbers(raw, "ci_high", what, required=False)
    parsed["severity"] = _whole_numbers(raw, "severity", what, required=False, minimum=1)
    parsed["n"] = _whole_numbers(raw, "n", what, required=True, minimum=0)
    frame = _typed(pd.DataFrame(parsed, columns=list(LONG_COLUMNS)))
    duplicated = frame.duplicated(list(KEY_COLUMNS), keep="first")
    if duplicated.any():
        row = int(duplicated.to_numpy().argmax())
        raise BenchError(f"{what} line {row + 2}: {describe_key(frame.iloc[row])} appears twice; keep one row per key")
    return frame


def read_long_csv(path: Path, what: str = "CSV") -> pd.DataFrame:
    """:func:`parse_long_csv` of a file; a missing or unreadable file is a one-line BenchError."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{what} {path} does not exist; give the path of a CSV written by libkd-bench leaderboard")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(
            f"{what} {path} cannot be read ({exc}); give a UTF-8 CSV written by libkd-bench leaderboard"
        ) from None
    return parse_long_csv(text, f"{what} {path}")


def describe_key(row: Mapping[str, object] | pd.Series) -> str:
    """``model 'resnet20' on npz-..., set scramble, severity 2, metric bias_ratio`` for messages."""
    severity = row["severity"]
    level = "whole set" if severity is None or pd.isna(severity) else f"severity {int(severity)}"
    return f"model {row['model']!r} on {row['source']}, set {row['set']}, {level}, metric {row['metric']}"


def _first_bad(mask: pd.Series) -> int | None:
    return int(mask.to_numpy().argmax()) if mask.any() else None


def _require_whole_rows(text: str, width: int, what: str) -> None:
    """Every row has as many cells as the header: pandas pads a short row (a file cut off mid-line) silently."""
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if row and len(row) != width:
            raise BenchError(
                f"{what} line {number} has {len(row)} cells, the header {width}; the file looks cut off or edited: "
                "write it again with libkd-bench leaderboard (or check --update-baseline)"
            )


def _require_hashes(raw: pd.DataFrame, what: str) -> None:
    cells = raw["checkpoint_sha256"]
    row = _first_bad((cells != "") & ~cells.str.fullmatch(r"[0-9a-f]{64}"))
    if row is not None:
        raise BenchError(
            f"{what} line {row + 2}: checkpoint_sha256 {cells.iloc[row]!r} is not a sha256 (64 hex digits); the file "
            "looks cut off or edited: write it again with libkd-bench leaderboard (or check --update-baseline)"
        )


def _require_filled(raw: pd.DataFrame, column: str, what: str) -> None:
    row = _first_bad(raw[column] == "")
    if row is not None:
        raise BenchError(f"{what} line {row + 2}: the {column} cell is empty; every row needs one")


def _numbers(raw: pd.DataFrame, column: str, what: str, required: bool) -> pd.Series:
    text = raw[column]
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
    bad = (text != "") & ~np.isfinite(numbers)
    if required:
        bad |= text == ""
    row = _first_bad(bad)
    if row is not None:
        shown = text.iloc[row] or "(empty)"
        raise BenchError(f"{what} line {row + 2}: {column} {shown!r} is not a finite number; fix or regenerate it")
    return numbers


def _whole_numbers(raw: pd.DataFrame, column: str, what: str, required: bool, minimum: int) -> pd.Series:
    numbers = _numbers(raw, column, what, required)
    bad = numbers.notna() & ((numbers != numbers.round()) | (numbers < minimum))
    row = _first_bad(bad)
    if row is not None:
        raise BenchError(
            f"{what} line {row + 2}: {column} {raw[column].iloc[row]!r} is not a whole number >= {minimum}; "
            "fix or regenerate it"
        )
    return numbers.astype("Int64")


def records_by_source(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Records grouped by source id (sorted), each group sorted by model name: results never mix sources."""
    groups: dict[str, list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: (r.source_id, r.model)):
        groups.setdefault(record.source_id, []).append(record)
    return groups


def kd_roles(record: RunRecord, records: Sequence[RunRecord]) -> list[str]:
    """``teacher`` / ``baseline`` when another of ``records`` names this run as its teacher / baseline."""
    return [role for role in ("teacher", "baseline") if any(r.kd.get(role) == record.run_id for r in records)]


def is_student(record: RunRecord) -> bool:
    return bool(record.kd.get("teacher") or record.kd.get("baseline"))


def display_order(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Teachers first, then baselines, independent runs and students, each by name: the order a reader compares."""

    def rank(record: RunRecord) -> tuple[int, str]:
        roles = kd_roles(record, records)
        role = 0 if "teacher" in roles else 1 if "baseline" in roles else 3 if is_student(record) else 2
        return (role, record.model)

    return sorted(records, key=rank)

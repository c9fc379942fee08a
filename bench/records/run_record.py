"""Run records: what ``score`` measured for one model on one clean split, and everything it was computed from.

One JSON file per (model, source) under ``RESULTS/runs/``, named ``<model>@<source id>.json``. A record holds
the model's identity (name, checkpoint sha256, architecture, preprocessing), optional knowledge-distillation
context (teacher run, baseline run, KD method), the sets it was scored on with their hashes, the metrics as
tidy rows, efficiency figures, library versions, and the relative path of its logits cache.

Metric rows are the unit every report is built from: ``(set, severity, metric) -> value [ci_low, ci_high], n``.
``severity`` is the 1-based level for sets with levels, or ``None`` for the set as a whole (a set without
levels, or the mean over the levels of one that has them). Accuracies and ratios are fractions, never
percentages.

Records are written atomically; readers skip temporary files and report malformed records by name instead
of failing, so a leaderboard never reads a half-written record and one bad file does not hide the others.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from libkd_bench.core.atomic_io import is_temporary, write_text_atomic
from libkd_bench.core.errors import BenchError

FORMAT_VERSION = 1
RUNS_DIR = "runs"
DEFAULT_RESULTS = Path("results")  # where score writes and leaderboard, check and rescore read
RECORD_SUFFIX = ".json"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class MetricRow:
    """One number of a run.

    Attributes:
        set: set name (``clean``, ``superpixel``, ...) or adversarial attack (``adv-fgsm``, ``adv-pgd``,
            ``adv-autoattack``).
        severity: 1-based level, or None for the set as a whole.
        severity_label: human-readable level, e.g. ``n_segments=64`` or ``eps=2/255``; empty when ``severity`` is None.
        metric: ``accuracy``, ``bias_ratio``, ``shape_bias``, ``shape_bias_class_mean``, ``error_consistency``,
            ``bias_transfer``, ...
        value: the estimate (a fraction for accuracies and ratios).
        ci_low, ci_high: 95% bootstrap interval, None when not defined.
        n: number of images the estimate rests on.
    """

    set: str
    severity: int | None
    severity_label: str
    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int

    def key(self) -> tuple[str, int | None, str]:
        return (self.set, self.severity, self.metric)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricRow:
        return cls(
            set=str(data["set"]),
            severity=None if data.get("severity") is None else int(data["severity"]),
            severity_label=str(data.get("severity_label") or ""),
            metric=str(data["metric"]),
            value=_number(data["value"]),
            ci_low=None if data.get("ci_low") is None else _number(data["ci_low"]),
            ci_high=None if data.get("ci_high") is None else _number(data["ci_high"]),
            n=int(data["n"]),
        )


def format_row(row: MetricRow | None, percent: bool = False, digits: int = 2) -> str:
    """``0.83 [0.80, 0.86]`` (``digits`` decimals) or ``83.5 [80.0, 86.5]`` (percent, one decimal); ``-`` if absent."""
    if row is None:
        return "-"
    scale, digits = (100.0, 1) if percent else (1.0, digits)
    text = f"{row.value * scale:.{digits}f}"
    if row.ci_low is not None and row.ci_high is not None:
        text += f" [{row.ci_low * scale:.{digits}f}, {row.ci_high * scale:.{digits}f}]"
    return text


@dataclass(frozen=True)
class RunRecord:
    """Everything ``score`` measured for one model on one clean split.

    Attributes:
        model: display name (``--name``, else the checkpoint's file stem).
        source: the clean split's identity (``SourceInfo.to_json()``: id, kind, location, sha256, n, limit).
        checkpoint: ``{"path", "sha256", "format", "metadata"}`` of the loaded file.
        spec: the model spec (arch, num_classes, mean, std, input_size, interpolation, ...).
        kd: ``{"teacher": run name or None, "baseline": run name or None, "method": text or None}``.
        sets: set name -> ``{"sha256", "labels_sha256", "generator", "backend", "seed", "parameters",
            "severities"}`` for every set scored (adversarial entries hold the attack settings instead).
        metrics: tidy metric rows.
        efficiency: ``{"params", "macs", "images_per_s", "device", "batch_size"}``.
        scoring: how the numbers were computed (device, batch size, bootstrap resamples and seed, ...).
        versions: library versions (``libkd_bench.core.provenance.library_versions()``).
        created: ISO-8601 UTC time of writing.
        logits: path of the logits cache, relative to the results directory.
        card: the model card (libkd_bench.records.model_card): teacher, method, seed, training data,
            preprocessing, licence, link, citation, authors, notes; empty when none was given.
    """

    model: str
    source: Mapping[str, Any]
    checkpoint: Mapping[str, Any]
    spec: Mapping[str, Any]
    metrics: tuple[MetricRow, ...]
    sets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    kd: Mapping[str, Any] = field(default_factory=dict)
    efficiency: Mapping[str, Any] = field(default_factory=dict)
    scoring: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    created: str = ""
    logits: str = ""
    card: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def source_id(self) -> str:
        return str(self.source["id"])

    @property
    def run_id(self) -> str:
        """``<model>@<source id>``: the record's file stem and how other records refer to it."""
        return run_id(self.model, self.source_id)

    def metric(self, set_name: str, metric: str, severity: int | None = None) -> MetricRow | None:
        for row in self.metrics:
            if row.key() == (set_name, severity, metric):
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = [asdict(row) for row in self.metrics]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        version = int(data.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise ValueError(f"format_version {version} is newer than this libkd-bench understands")
        return cls(
            model=str(data["model"]),
            source=dict(data["source"]),
            checkpoint=dict(data["checkpoint"]),
            spec=dict(data["spec"]),
            metrics=tuple(MetricRow.from_json(row) for row in data["metrics"]),
            sets=dict(data.get("sets", {})),
            kd=dict(data.get("kd", {})),
            efficiency=dict(data.get("efficiency", {})),
            scoring=dict(data.get("scoring", {})),
            versions=dict(data.get("versions", {})),
            created=str(data.get("created", "")),
            logits=str(data.get("logits", "")),
            card=dict(data.get("card") or {}),
            format_version=version,
        )


@dataclass(frozen=True)
class SkippedRecord:
    """A file under ``runs/`` that is not a readable record, and why."""

    path: Path
    reason: str


def run_id(model: str, source_id: str) -> str:
    return f"{safe_name(model)}@{source_id}"


def safe_name(name: str) -> str:
    """A model name usable as a file name: anything outside ``[A-Za-z0-9._+-]`` becomes ``-``."""
    cleaned = _UNSAFE_NAME.sub("-", name).strip("-.")
    return cleaned or "model"


def record_path(results: Path, record: RunRecord) -> Path:
    return Path(results) / RUNS_DIR / f"{record.run_id}{RECORD_SUFFIX}"


def write_record(results: Path, record: RunRecord) -> Path:
    """Write ``record`` atomically to ``RESULTS/runs/<run id>.json``; returns the path.

    Raises:
        RecordNameTaken: the file holds the record of another model name that maps to the same file.
    """
    check_record_slot(results, record.model, record.source_id)
    path = record_path(results, record)
    write_text_atomic(path, record.dumps())
    return path


class RecordNameTaken(BenchError):
    """Two model names that map to one record file (``r 20`` and ``r-20``)."""


def check_record_slot(results: Path, model: str, source_id: str) -> None:
    """Refuse to write ``model``'s record when its file holds another model's record.

    Model names map to file names through :func:`safe_name`, which is many-to-one; a re-run under the same name
    replaces its record, another name never does.

    Raises:
        RecordNameTaken: with the name already recorded there and the fix.
    """
    path = Path(results) / RUNS_DIR / f"{run_id(model, source_id)}{RECORD_SUFFIX}"
    if not path.is_file():
        return
    try:
        holder = read_record(path).model
    except ValueError:
        return  # an unreadable file is replaced, as before
    if holder != model:
        raise RecordNameTaken(
            f"model names {model!r} and {holder!r} map to the same record file {RUNS_DIR}/{path.name}, which holds "
            f"{holder!r}; give this model another --name (or delete that record to replace it)"
        )


def read_record(path: Path) -> RunRecord:
    """Read one record; raises ValueError (with the reason) when the file is not a valid record."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return RunRecord.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a run record ({type(exc).__name__}: {exc})") from None


def read_records(results: Path) -> tuple[list[RunRecord], list[SkippedRecord]]:
    """Every record under ``RESULTS/runs/`` (sorted by run id) and the files that had to be skipped."""
    runs = Path(results) / RUNS_DIR
    if not runs.is_dir():
        return [], []
    records, skipped = [], []
    for path in sorted(runs.glob(f"*{RECORD_SUFFIX}")):
        if is_temporary(path):
            continue
        try:
            records.append(read_record(path))
        except ValueError as exc:
            skipped.append(SkippedRecord(path, str(exc)))
    return sorted(records, key=lambda r: r.run_id), skipped


def find_record(records: Iterable[RunRecord], name: str) -> RunRecord | None:
    """The record whose run id or model name is ``name`` (run id wins; a model name must be unambiguous)."""
    records = list(records)
    for record in records:
        if record.run_id == name:
            return record
    matches = [r for r in records if r.model == name]
    return matches[0] if len(matches) == 1 else None


def _number(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric value {value!r} is not finite")
    return number

"""Teacher, baseline and recipe-control runs a student is compared with: found by run id, model name or record path.

A reference run must have been scored on the same clean split as the student (same source id); its
per-image outcomes come from its own logits cache, so it never needs to be scored again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.comparison import Role
from libkd_bench.records.run_record import RECORD_SUFFIX, RUNS_DIR, RunRecord, find_record, read_record, read_records
from libkd_bench.scoring.stored_outcomes import load_run_outcomes

# where scripts/demo.sh writes its run records (LIBKD_BENCH_WORK defaults to ./work)
DEMO_RESULTS = Path("work") / "results"


@dataclass(frozen=True)
class ReferenceRun:
    """A scored run and the results directory its logits cache lives under."""

    record: RunRecord
    results: Path

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @functools.cached_property
    def outcomes(self) -> dict[str, SetOutcome]:
        """The run's outcomes, read from its cache once and kept for every student of the call."""
        return load_run_outcomes(self.record, self.results)


@dataclass(frozen=True)
class KdContext:
    """Knowledge-distillation context of a student run: its teacher, baseline and recipe-control runs, the KD
    method, and the model this run is one training seed of.

    Attributes:
        teacher: the teacher run.
        baseline: the student's architecture trained without KD (the transfer's 0).
        method: free text describing the distillation.
        recipe_control: the student's architecture trained with the teacher's data and recipe but without KD;
            with it, transfer beyond what the recipe alone gives is measured.
        seed_of: name of the model this checkpoint is one training seed of; the leaderboard pools such runs
            into one row.
    """

    teacher: ReferenceRun | None = None
    baseline: ReferenceRun | None = None
    method: str | None = None
    recipe_control: ReferenceRun | None = None
    seed_of: str | None = None

    def __post_init__(self) -> None:
        if self.recipe_control is not None and (self.teacher is None or self.baseline is None):
            raise BenchError("--recipe-control needs --teacher and --baseline: give both, or drop --recipe-control")
        if self.seed_of is not None and not self.seed_of.strip():
            raise BenchError("--seed-of must not be empty; give the name of the model this run is a seed of")

    def reference_outcomes(self) -> dict[str, Mapping[str, SetOutcome] | None]:
        """The reference runs' outcomes by role, as :func:`~libkd_bench.records.metric_rows.metric_rows` takes
        them (None where a role has no run)."""
        return {
            role: (run.outcomes if run is not None else None)
            for role, run in (
                ("teacher", self.teacher),
                ("baseline", self.baseline),
                ("recipe_control", self.recipe_control),
            )
        }

    def preload(self) -> None:
        """Read the reference runs' logits caches now, so a missing one fails before any forward pass."""
        for reference in (self.teacher, self.baseline, self.recipe_control):
            if reference is not None:
                _ = reference.outcomes

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "teacher": self.teacher.run_id if self.teacher else None,
            "baseline": self.baseline.run_id if self.baseline else None,
            "method": self.method,
        }
        if self.recipe_control is not None:
            data["recipe_control"] = self.recipe_control.run_id
        if self.seed_of is not None:
            data["seed_of"] = self.seed_of
        return data


def find_run(text: str, results: Path, what: str = "run") -> ReferenceRun:
    """The run named by ``text``: a record path, else a run id or unambiguous model name under ``results``.

    Args:
        text: ``<model>@<source id>``, a model name scored once under ``results``, or a record JSON path.
        results: results directory to look names up in.
        what: how messages call the run (``teacher run``).

    Raises:
        BenchError: not found, ambiguous or unreadable.
    """
    path = Path(text).expanduser()
    if text.endswith(RECORD_SUFFIX) or path.is_file():
        if not path.is_file():
            raise BenchError(f"{what} record {path} does not exist; give an existing run record")
        try:
            record = read_record(path)
        except ValueError as exc:
            raise BenchError(f"{what} record {path} is {exc}; give a record written by score") from None
        parent = path.resolve().parent
        return ReferenceRun(record, parent.parent if parent.name == RUNS_DIR else parent)
    records, _ = read_records(results)
    record = find_record(records, text)
    if record is None:
        ambiguous = sum(r.model == text for r in records) > 1
        hint = "it names several runs; give the run id <model>@<source id>" if ambiguous else "score it first"
        known = [r.run_id for r in records]
        message = unknown_name_message(what, text, known) if known else f"{what} {text!r} not found"
        elsewhere = _found_elsewhere(text, Path(results))
        if elsewhere is not None:
            hint = f"it is in {elsewhere}: add --results {elsewhere}"
        raise BenchError(f"{message} (looked up in {Path(results) / RUNS_DIR}; {hint})")
    return ReferenceRun(record, Path(results))


def _found_elsewhere(text: str, results: Path) -> Path | None:
    """The demo's results directory when it holds the run that ``results`` lacks (runs are easily sought there)."""
    if DEMO_RESULTS.resolve() == results.resolve() or not (DEMO_RESULTS / RUNS_DIR).is_dir():
        return None
    records, _ = read_records(DEMO_RESULTS)
    return DEMO_RESULTS if find_record(records, text) is not None else None


def resolve_run(text: str, results: Path, source_id: str, role: Role | str) -> ReferenceRun:
    """A teacher or baseline run (see :func:`find_run`), which must be scored on source ``source_id``."""
    role = Role(role)
    run = find_run(text, results, f"{role.value} run")
    if run.record.source_id != source_id:
        raise BenchError(
            f"{role.value} run {run.run_id} was scored on source {run.record.source_id}, not {source_id}; "
            "score it on the same sets"
        )
    return run

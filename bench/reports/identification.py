"""Whether a student's bias transfer on a set is identified, decided across all cells of a leaderboard.

Transfer divides by the teacher-baseline gap, so it means something only where teacher and baseline really
differ. A cell counts as identified when both hold:

1. the gap (teacher minus baseline chance-corrected ratio) is significant after Holm's adjustment
   (libkd_bench.metrics.multiplicity) across every hypothesis of the leaderboard's clean split, at family-wise
   level :data:`FAMILY_ALPHA`. Each record's ``teacher_baseline_gap_p`` is a two-sided normal-approximation
   p-value with the paired-bootstrap standard error. A hypothesis is one (teacher, baseline, set): students
   sharing a teacher and baseline share the gap, so it is tested once;
2. the gap is at least :data:`MIN_TRANSFER_GAP` in absolute value: a gap of 0.01 can be significant on a large
   test split yet still make the transfer a ratio of two small differences that says nothing about KD.

Because the test and the Fieller interval use the same standard error, an identified transfer always has a
bounded interval. Selecting cells on significance still biases the reported transfers a little towards the
cells with large gaps; the long CSV keeps every cell's numbers, identified or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from libkd_bench.metrics.multiplicity import holm_adjust
from libkd_bench.records.run_record import RunRecord
from libkd_bench.records.transfer import GAP, GAP_P

# Smallest teacher-baseline gap, in chance-corrected ratio units (the share of above-chance accuracy kept), for
# which a transfer is read: 0.05 = teacher and baseline keep at least 5 points more or less of it.
MIN_TRANSFER_GAP = 0.05
FAMILY_ALPHA = 0.05
P_VALUE_METHOD = "two-sided normal approximation with the paired-bootstrap standard error"
HOLM_P = "teacher_baseline_gap_p_holm"
IDENTIFIED = "transfer_identified"


@dataclass(frozen=True)
class Identification:
    """The identification of one student's transfer on one set.

    Attributes:
        gap: teacher minus baseline chance-corrected ratio.
        p: unadjusted p-value of the gap.
        p_holm: Holm-adjusted p-value across the leaderboard's hypotheses.
        identified: True when ``p_holm <= FAMILY_ALPHA`` and ``|gap| >= MIN_TRANSFER_GAP``.
        reason: why not identified ("" when identified).
    """

    gap: float
    p: float
    p_holm: float
    identified: bool
    reason: str


def identify_transfers(records: Iterable[RunRecord]) -> dict[tuple[str, str], Identification]:
    """(student run id, set) -> :class:`Identification`, Holm-adjusted within each clean split.

    Records of different sources are separate leaderboards and are adjusted separately.
    """
    by_source: dict[str, list[RunRecord]] = {}
    for record in records:
        by_source.setdefault(record.source_id, []).append(record)
    found: dict[tuple[str, str], Identification] = {}
    for group in by_source.values():
        found.update(_identify_split(group))
    return found


def _identify_split(records: list[RunRecord]) -> dict[tuple[str, str], Identification]:
    hypotheses: dict[tuple[str, str, str], tuple[float, float]] = {}  # (teacher, baseline, set) -> (gap, p)
    cells: dict[tuple[str, str], tuple[str, str, str]] = {}
    for record in records:
        gaps = {row.set: row for row in record.metrics if row.metric == GAP and row.severity is None}
        for row in record.metrics:
            if row.metric != GAP_P or row.severity is not None or row.set not in gaps:
                continue
            key = (str(record.kd.get("teacher")), str(record.kd.get("baseline")), row.set)
            hypotheses.setdefault(key, (gaps[row.set].value, row.value))
            cells[record.run_id, row.set] = key
    keys = list(hypotheses)
    adjusted = dict(zip(keys, holm_adjust([hypotheses[key][1] for key in keys]), strict=True))
    return {cell: _decide(*hypotheses[key], adjusted[key]) for cell, key in cells.items()}


def _decide(gap: float, p: float, p_holm: float) -> Identification:
    if p_holm > FAMILY_ALPHA:
        reason = "gap not significant after Holm"
    elif abs(gap) < MIN_TRANSFER_GAP:
        reason = f"|gap| below the minimum effect {MIN_TRANSFER_GAP:g}"
    else:
        reason = ""
    return Identification(gap, p, p_holm, not reason, reason)


def identification_values(found: Mapping[tuple[str, str], Identification], run_id: str) -> dict[str, dict[str, float]]:
    """set -> {``teacher_baseline_gap_p_holm``, ``transfer_identified`` (1.0 or 0.0)} of one student run."""
    return {
        set_name: {HOLM_P: cell.p_holm, IDENTIFIED: float(cell.identified)}
        for (run, set_name), cell in found.items()
        if run == run_id
    }

"""The leaderboard site's tables as data: the Markdown leaderboard's rows, values, intervals and flags, per cell.

Nothing is computed here that the Markdown does not show: the wide table's columns and cells come from
libkd_bench.reports.markdown (the same columns, the same ⚑ / † / ‡ marks, the same chance-corrected columns),
the transfer and fidelity tables from libkd_bench.reports.transfer_tables, the notes from the same footnotes.
What the HTML adds is structure: each cell keeps its metric row (for the interval on hover and the bar) and a
sort key, and each model's row links to its page. libkd_bench.reports.html_site turns these into HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from libkd_bench.records.run_record import MetricRow, RunRecord
from libkd_bench.records.transfer import GAP as TRANSFER_GAP
from libkd_bench.reports.identification import identify_transfers
from libkd_bench.reports.leaderboard import display_order
from libkd_bench.reports.markdown import (
    ATTENTION_SET,
    CHANCE_CORRECTED_COLUMNS,
    DEFAULT_CLASS_FLAG,
    FACT_COLUMNS,
    MISSING,
    NOT_SIGNIFICANT_VS_BASELINE,
    NOT_SIGNIFICANT_VS_TEACHER,
    WideColumn,
    attention_columns,
    cell_flags,
    footnotes,
    format_interval,
    method_cell,
    wide_columns,
)
from libkd_bench.reports.transfer_tables import (
    FIDELITY_NOTE,
    NOT_IDENTIFIED,
    fidelity_table,
    transfer_notes,
    transfer_table,
)

# What each mark means, shown where the mark is drawn (hover) and in the legend under a table.
FLAG_MEANINGS = {
    DEFAULT_CLASS_FLAG: "one class takes more than half of this model's predictions on the set: its accuracy there "
    "is mostly that default class, not the cue",
    NOT_SIGNIFICANT_VS_BASELINE: "the student's ratio does not differ significantly from its baseline's (the 95% "
    "interval of the difference contains 0 or is undefined)",
    NOT_SIGNIFICANT_VS_TEACHER: "the student's ratio does not differ significantly from its teacher's (the 95% "
    "interval of the difference contains 0 or is undefined)",
    NOT_IDENTIFIED: "the teacher-baseline gap is not significant after Holm's adjustment, or smaller than the minimum "
    "effect: transfer is not read on this set",
}
_LEADING_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)")


@dataclass(frozen=True)
class Cell:
    """One table cell.

    Attributes:
        text: the value as the Markdown writes it (interval included), without marks.
        sort: what sorting the column compares: a number, a text, or None (always last).
        row: the metric row behind a value, for its interval and bar; None for text cells.
        percent: the value is shown as a percentage.
        flags: marks drawn after the value (keys of :data:`FLAG_MEANINGS`).
        link: the page a model's name links to, relative to the site folder.
        detail: smaller text after a model's name (its distillation context).
    """

    text: str
    sort: float | str | None = None
    row: MetricRow | None = None
    percent: bool = False
    flags: tuple[str, ...] = ()
    link: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Table:
    """A table of one source: a title, headers, rows of cells, and the notes that explain it."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceTables:
    """Everything the index shows for one clean split."""

    source_id: str
    key: str
    heading: str
    wide: Table
    corrected: Table | None
    transfer: Table | None
    fidelity: Table | None
    notes: tuple[str, ...]
    models: tuple[RunRecord, ...]


def value_cell(row: MetricRow | None, percent: bool = False, flags: Sequence[str] = ()) -> Cell:
    """A metric value: the Markdown's text, the row for its interval, its marks."""
    if row is None:
        return Cell(MISSING)
    return Cell(format_interval(row, percent), row.value, row, percent, tuple(flag for flag in flags if flag))


def text_cell(text: str) -> Cell:
    """A cell of a text table (transfer, fidelity): sorted by its leading number when it has one."""
    match = _LEADING_NUMBER.match(text)
    flags = (NOT_IDENTIFIED,) if text.startswith(NOT_IDENTIFIED) else ()
    sort: float | str | None = None if text == MISSING else float(match.group(1)) if match else text
    return Cell(text, sort, flags=flags)


def _column_cell(record: RunRecord, column: WideColumn) -> Cell:
    flag, marks = cell_flags(record, column)
    return value_cell(record.metric(column.set, column.metric), column.percent, (flag, *marks))


def model_cell(record: RunRecord, records: Sequence[RunRecord], pages: Mapping[str, str]) -> Cell:
    """The Method cell: the model's name linking to its page, and its distillation context after it."""
    names = {r.run_id: r.model for r in records}
    detail = method_cell(record, names, records)[len(record.model) :].strip()
    return Cell(record.model, record.model, link=pages.get(record.run_id, ""), detail=detail)


def source_tables(records: Sequence[RunRecord], pages: Mapping[str, str]) -> SourceTables:
    """The tables of one source's records, in the Markdown's row and column order.

    Args:
        records: the records of one source (pooled seed records included).
        pages: run id -> the file name of the model's page.
    """
    source = records[0].source
    pooled = {r.model for r in records if r.kd.get("seeds")}
    ordered = display_order([r for r in records if r.kd.get("seed_of") not in pooled])
    columns = wide_columns(records)
    headers = ["Method", *(c.header for c in columns)]
    rows = [[model_cell(r, records, pages), *(_column_cell(r, c) for c in columns)] for r in ordered]
    attention = attention_columns(ordered)
    for header, cells in attention.items():
        metric = "agreement_spearman" if "alignment" in header.lower() else "object_focus"
        headers.append(header)
        for row, record, text in zip(rows, ordered, cells, strict=True):
            value = record.metric(ATTENTION_SET, metric)
            row.append(Cell(text, None if value is None else value.value, value))
    for header, facts in FACT_COLUMNS:
        texts = [facts(record) for record in ordered]
        if any(text != MISSING for text in texts):
            headers.append(header)
            key = {"Params": "params", "MACs": "macs"}.get(header)
            for row, record, text in zip(rows, ordered, texts, strict=True):
                number = record.efficiency.get(key) if key else None
                row.append(Cell(text, number if isinstance(number, int | float) else text if text != MISSING else None))
    key = _key(records[0].source_id)
    wide = Table(f"{key}-wide", "Bias ratios", tuple(headers), tuple(tuple(row) for row in rows))
    students = [r for r in ordered if any(row.metric == TRANSFER_GAP for row in r.metrics)]
    names = {record.run_id: record.model for record in records}
    transfer = _text_table(
        f"{key}-transfer",
        "Bias transfer on chance-corrected ratios: 0 = like the baseline, 1 = like the teacher",
        transfer_table(students, identify_transfers(records)),
        tuple(transfer_notes(students, names)),
    )
    fidelity = _text_table(
        f"{key}-fidelity",
        "Fidelity to the teacher",
        fidelity_table([r for r in ordered if r.kd.get("teacher")]),
        (FIDELITY_NOTE,),
    )
    return SourceTables(
        source_id=records[0].source_id,
        key=key,
        heading=f"{records[0].source_id} ({source.get('kind', '?')}, n = {source.get('n', '?')})",
        wide=wide,
        corrected=_corrected(ordered, records, pages, key),
        transfer=transfer,
        fidelity=fidelity,
        notes=tuple(note.removeprefix("- ") for note in footnotes(records, columns)),
        models=tuple(ordered),
    )


CORRECTED_NOTE = (
    "Corrected for chance: (acc - chance) / (clean - clean chance), chance = sum over classes of the run's predicted "
    "share x the set's label share; 0 = guessing, 1 = nothing lost."
)


def _corrected(
    ordered: Sequence[RunRecord], records: Sequence[RunRecord], pages: Mapping[str, str], key: str
) -> Table | None:
    columns = [c for c in CHANCE_CORRECTED_COLUMNS if any(r.metric(c.set, c.metric) is not None for r in ordered)]
    if not columns:
        return None
    rows = tuple((model_cell(r, records, pages), *(_column_cell(r, c) for c in columns)) for r in ordered)
    headers = ("Method", *(c.header for c in columns))
    return Table(f"{key}-corrected", "Bias ratios corrected for chance", headers, rows, (CORRECTED_NOTE,))


def _text_table(key: str, title: str, columns: Mapping[str, Sequence[str]], notes: tuple[str, ...]) -> Table | None:
    if not columns:
        return None
    headers = tuple(columns)
    count = len(next(iter(columns.values())))
    rows = tuple(tuple(text_cell(columns[header][i]) for header in headers) for i in range(count))
    return Table(key, title, headers, rows, notes)


def _key(source_id: str) -> str:
    """An HTML id stem for a source: letters, digits and hyphens only."""
    return "s-" + re.sub(r"[^A-Za-z0-9-]+", "-", source_id)


def profile_rows(record: RunRecord, group: Sequence[RunRecord]) -> list[tuple[str, Cell, Cell]]:
    """A model's bias profile: per ratio column of its source's table, its raw and chance-corrected cell."""
    corrected = {c.set: c for c in CHANCE_CORRECTED_COLUMNS if c.metric == "bias_ratio_cc"}
    rows = []
    for column in wide_columns(group):
        if column.metric != "bias_ratio" or record.metric(column.set, column.metric) is None:
            continue
        other = corrected.get(column.set, WideColumn(column.header, column.set, "bias_ratio_cc"))
        rows.append((column.header, _column_cell(record, column), _column_cell(record, other)))
    return rows

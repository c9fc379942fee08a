"""The leaderboard as a static site: ``index.html`` and one page per model, beside the CSV, Markdown and plots.

The index holds, per clean split, the wide table (every column sortable and hideable, each value with its 95%
interval on hover and as a bar, the ⚑ / † / ‡ / not-identified marks explained where they are drawn), its
chance-corrected twin behind one toggle, the transfer and fidelity tables, the notes and the plots. A model's
page (``model_<run id>.html``) holds its card, what it was computed from, its bias profile, its attention
panel when one was drawn, and its rows of ``leaderboard.csv``. ``model-cards.csv`` has one row per model and
source with the card's fields.

Everything is a pure function of the run records, the long frame and the names of the plot files; the
``leaderboard`` command writes the files. Pages link to each other and to the PNGs by relative names, load
nothing else, and so open from disk or from any static host as the folder is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

import pandas as pd

from libkd_bench.records.model_card import CARD_FIELDS, FIELD_LABELS, card_of
from libkd_bench.records.run_record import RunRecord
from libkd_bench.reports.attention_panels import panel_name
from libkd_bench.reports.html_elements import esc, figure_html, href, legend_html, notes_html, page, table_html
from libkd_bench.reports.leaderboard import FLOAT_FORMAT, records_by_source
from libkd_bench.reports.markdown import FACT_COLUMNS, MISSING
from libkd_bench.reports.site_tables import Cell, SourceTables, Table, model_cell, profile_rows, source_tables

INDEX_NAME = "index.html"
CARDS_NAME = "model-cards.csv"
PAGE_PREFIX = "model_"
PAGE_SUFFIX = ".html"
DOWNLOADS = ("leaderboard.csv", "leaderboard.md", CARDS_NAME)
CARD_CSV_COLUMNS = (
    "model",
    "source",
    "checkpoint_sha256",
    "zoo",
    "arch",
    "kd_teacher",
    "kd_baseline",
    "kd_method",
    "card_origin",
    *CARD_FIELDS,
)
LONG_ROW_COLUMNS = ("set", "severity", "metric", "value", "ci_low", "ci_high", "n")

Images = Mapping[str, Sequence[tuple[str, str]]]


def page_names(records: Sequence[RunRecord]) -> dict[str, str]:
    """Run id -> the file name of its page, ``model_<run id>.html`` (a numbered suffix if two ever collide)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for record in sorted(records, key=lambda r: (r.source_id, r.model)):
        stem, number = f"{PAGE_PREFIX}{record.run_id}", 1
        name = f"{stem}{PAGE_SUFFIX}"
        while name in taken:
            number += 1
            name = f"{stem}-{number}{PAGE_SUFFIX}"
        taken.add(name)
        names[record.run_id] = name
    return names


def leaderboard_site(records: Sequence[RunRecord], frame: pd.DataFrame, images: Images) -> dict[str, str]:
    """File name -> HTML text of every page of the site.

    Args:
        records: every run record (pooled seed records included), any sources.
        frame: their long frame (libkd_bench.reports.leaderboard.long_frame), whose rows the model pages list.
        images: per source id, ``(title, file name)`` of the plots in the folder, as the Markdown gets them.
    """
    pages = page_names(records)
    groups = records_by_source(records)
    tables = {source_id: source_tables(group, pages) for source_id, group in groups.items()}
    files = {INDEX_NAME: index_page(records, tables, images)}
    for source_id, group in groups.items():
        shown = {name for _, name in images.get(source_id, ())}
        for record in group:
            rows = frame[(frame["model"] == record.model) & (frame["source"] == source_id)]
            files[pages[record.run_id]] = model_page(record, group, pages, rows, shown)
    return files


def index_page(records: Sequence[RunRecord], tables: Mapping[str, SourceTables], images: Images) -> str:
    downloads = " · ".join(f'<a href="{href(name)}">{esc(name)}</a>' for name in DOWNLOADS)
    toggle = ""
    if any(source.corrected is not None for source in tables.values()):
        toggle = '<label><input type="checkbox" id="chance-corrected"> chance-corrected view</label>'
    nav = "".join(f'<a href="#{esc(source.key)}">{esc(source.heading)}</a>' for source in tables.values())
    header = (
        "<header><h1>libkd-bench leaderboard</h1>"
        f'<p class="muted">{len(records)} run(s) on {len(tables)} clean split(s); one table per split, never '
        f"mixed. Files: {downloads}</p>"
        f'<div class="toolbar">{toggle}<span class="muted">Click a column header to sort, again to reverse; hover '
        "a value for its 95% interval; the bar shows the interval (band) and the estimate (tick), 1 marked.</span>"
        f"</div><nav>{nav}</nav></header>"
    )
    sections = "\n".join(_source_section(source, images.get(source_id, ())) for source_id, source in tables.items())
    return page("libkd-bench leaderboard", f"{header}\n<main>\n{sections}\n</main>")


def _source_section(source: SourceTables, images: Sequence[tuple[str, str]]) -> str:
    parts = [f'<section id="{esc(source.key)}"><h2>{esc(source.heading)}</h2>']
    wide = f"<h3>{esc(source.wide.title)}</h3>{table_html(source.wide)}"
    if source.corrected is not None:
        corrected = source.corrected
        parts.append(f'<div class="view-raw">{wide}</div>')
        parts.append(
            f'<div class="view-cc"><h3>{esc(corrected.title)}</h3>{table_html(corrected)}'
            f"{notes_html(corrected.notes)}</div>"
        )
    else:
        parts.append(wide)
    flags = [flag for table in _tables(source) for row in table.rows for cell in row for flag in cell.flags]
    parts.append(legend_html(flags))
    for table in (source.transfer, source.fidelity):
        if table is not None:
            parts.append(f"<h3>{esc(table.title)}</h3>{table_html(table, bars=False)}{notes_html(table.notes)}")
    parts.append(f"<h3>Notes</h3>{notes_html(source.notes)}")
    if images:
        parts.append("<h3>Plots</h3>" + "".join(figure_html(name, title) for title, name in images))
    parts.append("</section>")
    return "\n".join(parts)


def _tables(source: SourceTables) -> list[Table]:
    return [t for t in (source.wide, source.corrected, source.transfer, source.fidelity) if t is not None]


def model_page(
    record: RunRecord, group: Sequence[RunRecord], pages: Mapping[str, str], rows: pd.DataFrame, images: set[str]
) -> str:
    """One model's page: card, identity, bias profile, attention panel, long-CSV rows."""
    name_cell = model_cell(record, group, pages)
    parts = [
        f'<nav><a href="{href(INDEX_NAME)}">&larr; leaderboard</a></nav>',
        f"<h1>{esc(record.model)}</h1>",
        f'<p class="muted">{esc(name_cell.detail)} on {esc(record.source_id)}</p>' if name_cell.detail else "",
        _card_section(record),
        _identity_section(record, group, pages),
        _profile_section(record, group, images),
    ]
    panel = panel_name(record.model, record.source_id)
    if panel in images:
        parts.append(
            "<h2>Attention</h2>"
            + figure_html(panel, f"Grad-CAM maps of the teacher, {record.model} and the baseline on the clean panel")
        )
    parts.append(_rows_section(record, rows))
    return page(f"{record.model} - libkd-bench leaderboard", "\n".join(part for part in parts if part))


def _definition_list(items: Sequence[tuple[str, str]], css: str = "card") -> str:
    """``<dl>`` of (label, already-escaped HTML) pairs."""
    return f'<dl class="{css}">' + "".join(f"<dt>{esc(label)}</dt><dd>{value}</dd>" for label, value in items) + "</dl>"


def _card_section(record: RunRecord) -> str:
    card, origin = card_of(record.card, record.checkpoint)
    values = card.to_json()
    if not values:
        return (
            '<h2>Model card</h2><p class="muted">No card recorded. Score with <code>--card CARD.json</code> '
            "(teacher, method, seed, training data, preprocessing, licence, link, citation) to add one.</p>"
        )
    items = []
    for key, value in values.items():
        text = esc(value)
        if key == "link":
            text = f'<a href="{esc(value)}" rel="noopener noreferrer">{text}</a>'
        items.append((FIELD_LABELS[key], text))
    source = "" if origin == "record" else f'<p class="muted">From the {esc(origin)}.</p>'
    return f"<h2>Model card</h2>{_definition_list(items)}{source}"


def _run_link(run: object, pages: Mapping[str, str], group: Sequence[RunRecord]) -> str:
    names = {r.run_id: r.model for r in group}
    run = str(run)
    label = esc(names.get(run, run.split("@", 1)[0]))
    return f'<a href="{href(pages[run])}">{label}</a>' if run in pages else label


def _identity_section(record: RunRecord, group: Sequence[RunRecord], pages: Mapping[str, str]) -> str:
    checkpoint = record.checkpoint
    items = [("Run", f"<code>{esc(record.run_id)}</code>")]
    if checkpoint.get("sha256"):
        items.append(("Checkpoint sha256", f"<code>{esc(checkpoint['sha256'])}</code>"))
    if checkpoint.get("zoo"):
        items.append(("Zoo name", f"<code>zoo:{esc(checkpoint['zoo'])}</code>"))
    for header, facts in FACT_COLUMNS:
        if (text := facts(record)) != MISSING:
            items.append((header, esc(text)))
    for role, label in (("teacher", "Teacher run"), ("baseline", "Baseline run"), ("recipe_control", "Recipe control")):
        if record.kd.get(role):
            items.append((label, _run_link(record.kd[role], pages, group)))
    if record.kd.get("method"):
        items.append(("KD method", esc(record.kd["method"])))
    if record.kd.get("seeds"):
        items.append(("Pooled seeds", ", ".join(_run_link(run, pages, group) for run in record.kd["seeds"])))
    clean = record.metric("clean", "accuracy")
    if clean is not None:
        items.append(("Clean accuracy", esc(f"{100 * clean.value:.1f}% (n = {clean.n})")))
    version = record.versions.get("libkd-bench")
    scored = " ".join(part for part in (f"libkd-bench {version}" if version else "", record.created) if part)
    if scored:
        items.append(("Scored", esc(scored)))
    return f"<h2>What it was computed from</h2>{_definition_list(items)}"


def _profile_section(record: RunRecord, group: Sequence[RunRecord], images: set[str]) -> str:
    profile = profile_rows(record, group)
    if not profile:
        return ""
    rows = tuple((Cell(header, index), raw, corrected) for index, (header, raw, corrected) in enumerate(profile))
    table = Table("profile", "Bias profile", ("Set", "Bias ratio", "Chance-corrected ratio"), rows)
    flags = [flag for row in rows for cell in row for flag in cell.flags]
    plot = f"bias-profile_{record.source_id}.png"
    figure = figure_html(plot, "Bias profile of every model on this split") if plot in images else ""
    return (
        "<h2>Bias profile</h2>"
        '<p class="muted">Accuracy on each set / clean accuracy on the same images (1 = nothing lost), and the same '
        "corrected for chance (0 = guessing). Hover for the 95% interval.</p>"
        f"{table_html(table)}{legend_html(flags)}{figure}"
    )


def _rows_section(record: RunRecord, rows: pd.DataFrame) -> str:
    cells = []
    for values in rows.loc[:, list(LONG_ROW_COLUMNS)].itertuples(index=False):
        line = []
        for column, value in zip(LONG_ROW_COLUMNS, values, strict=True):
            if value is None or pd.isna(value):
                line.append(Cell("", None))
            elif column in ("set", "metric"):
                line.append(Cell(str(value), str(value)))
            elif column in ("severity", "n"):
                line.append(Cell(str(int(value)), int(value)))
            else:
                line.append(Cell(FLOAT_FORMAT % value, float(value)))
        cells.append(tuple(line))
    table = Table("long-rows", "Rows of leaderboard.csv", LONG_ROW_COLUMNS, tuple(cells))
    return (
        f"<h2>All rows</h2><details><summary>{len(cells)} row(s) of "
        f'<a href="{href("leaderboard.csv")}">leaderboard.csv</a> for {esc(record.model)} on '
        f"{esc(record.source_id)} (fractions; empty severity = the whole set)</summary>"
        f"{table_html(table, bars=False)}</details>"
    )


def model_cards_csv(records: Sequence[RunRecord]) -> str:
    """One row per model and source: identity, KD context, where the card comes from, and its fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CARD_CSV_COLUMNS)
    for record in sorted(records, key=lambda r: (r.source_id, r.model)):
        card, origin = card_of(record.card, record.checkpoint)
        values = card.to_json()
        writer.writerow(
            [
                record.model,
                record.source_id,
                record.checkpoint.get("sha256") or "",
                record.checkpoint.get("zoo") or "",
                record.spec.get("arch") or "",
                record.kd.get("teacher") or "",
                record.kd.get("baseline") or "",
                record.kd.get("method") or "",
                origin,
                *(values.get(field, "") for field in CARD_FIELDS),
            ]
        )
    return buffer.getvalue()


def is_site_page(name: str) -> bool:
    """A model page this module writes (for removing pages of models that no longer have a record)."""
    return name.startswith(PAGE_PREFIX) and name.endswith(PAGE_SUFFIX)

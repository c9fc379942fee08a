"""HTML building blocks of the leaderboard site: escaped text, a page, a sortable table with interval bars.

Every string that reaches the HTML passes through :func:`esc` (model names, KD methods, card fields and set
names are user input); markup is only ever built from constants and escaped values. A value cell shows the
estimate, its 95% interval on hover (``title``) and as a small bar: the interval as a band, the estimate as a
tick, on a scale shared by the column, with a mark at 1 where a ratio loses nothing.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from libkd_bench.reports.html_assets import SCRIPT, STYLE
from libkd_bench.reports.site_tables import FLAG_MEANINGS, Cell, Table

Domain = tuple[float, float]


def esc(text: object) -> str:
    """``text`` safe inside an element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def href(name: str) -> str:
    """A relative link to a file of the site folder, percent-encoded and escaped (names hold ``@`` and ``+``)."""
    return esc(quote(name))


def page(title: str, body: str) -> str:
    """A whole document: inline style and script, no external resource (a blank icon stops a favicon request)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def flag_mark(flag: str) -> str:
    meaning = FLAG_MEANINGS.get(flag, "")
    shown = "n.i." if len(flag) > 2 else flag
    return f'<abbr class="flag" title="{esc(flag)}: {esc(meaning)}">{esc(shown)}</abbr>'


def column_domains(rows: Sequence[Sequence[Cell]]) -> list[Domain | None]:
    """Per column, the scale of its bars: from min(0, lowest interval end) to max(1, highest); None for a column
    without values."""
    count = len(rows[0]) if rows else 0
    domains: list[Domain | None] = []
    for index in range(count):
        cells = [row[index] for row in rows if row[index].row is not None]
        domains.append(value_domain(cells))
    return domains


def value_domain(cells: Iterable[Cell]) -> Domain | None:
    ends: list[float] = []
    for cell in cells:
        row = cell.row
        if row is None:
            continue
        ends += [row.value, *(end for end in (row.ci_low, row.ci_high) if end is not None)]
    if not ends:
        return None
    return (min(0.0, *ends), max(1.0, *ends))  # 0 and 1 in view: guessing (corrected) or nothing kept, nothing lost


def _position(value: float, domain: Domain) -> float:
    low, high = domain
    return max(0.0, min(100.0, 100.0 * (value - low) / (high - low)))


def bar(cell: Cell, domain: Domain | None, ratio: bool) -> str:
    """The small bar of a value cell: its interval as a band, its estimate as a tick, 1 marked for ratios."""
    row = cell.row
    if row is None or domain is None:
        return ""
    parts = []
    if ratio and domain[0] <= 1.0 <= domain[1]:
        parts.append(f'<i class="one" style="left:{_position(1.0, domain):.1f}%"></i>')
    if row.ci_low is not None and row.ci_high is not None:
        left, right = _position(row.ci_low, domain), _position(row.ci_high, domain)
        parts.append(f'<i class="ci" style="left:{left:.1f}%;width:{max(right - left, 0.5):.1f}%"></i>')
    parts.append(f'<i class="pt" style="left:{_position(row.value, domain):.1f}%"></i>')
    return f'<span class="bar" aria-hidden="true">{"".join(parts)}</span>'


def hover_text(header: str, cell: Cell) -> str:
    """``Texture: 0.83, 95% interval [0.80, 0.86], n = 2000``."""
    row = cell.row
    if row is None:
        return ""
    scale, digits = (100.0, 1) if cell.percent else (1.0, 3)
    text = f"{header}: {row.value * scale:.{digits}f}"
    if row.ci_low is not None and row.ci_high is not None:
        text += f", 95% interval [{row.ci_low * scale:.{digits}f}, {row.ci_high * scale:.{digits}f}]"
    else:
        text += ", no interval"
    return f"{text}, n = {row.n}"


def cell_html(header: str, cell: Cell, domain: Domain | None, ratio: bool = True) -> str:
    """One ``<td>``: its sort key in ``data-v``, the value (the estimate; the interval on hover and as a bar)."""
    sort = "" if cell.sort is None else cell.sort
    attributes = f' data-v="{esc(sort)}"'
    flags = "".join(flag_mark(flag) for flag in cell.flags)
    if cell.link:
        detail = f'<span class="detail">{esc(cell.detail)}</span>' if cell.detail else ""
        return f'<td{attributes}><a href="{href(cell.link)}">{esc(cell.text)}</a>{detail}</td>'
    if cell.row is None:
        text = esc(cell.text)
        if cell.flags:
            text = f'<span title="{esc(FLAG_MEANINGS.get(cell.flags[0], ""))}">{text}</span>'
        return f"<td{attributes}>{text}</td>"
    scale, digits = (100.0, 1) if cell.percent else (1.0, 2)
    value = f"{cell.row.value * scale:.{digits}f}"
    title = esc(hover_text(header, cell))
    drawn = bar(cell, domain, ratio and not cell.percent)
    return f'<td class="num"{attributes} title="{title}">{esc(value)}{flags}{drawn}</td>'


def table_html(table: Table, bars: bool = True) -> str:
    """A table with sortable headers and, when it has more than two columns, checkboxes that hide columns."""
    domains = column_domains(table.rows) if bars else [None] * len(table.headers)
    head = "".join(
        f'<th scope="col"><button class="sort" type="button" title="sort by {esc(header)}">{esc(header)}</button></th>'
        for header in table.headers
    )
    body = "\n".join(
        "<tr>"
        + "".join(
            cell_html(header, cell, domain) for header, cell, domain in zip(table.headers, row, domains, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    toggles = ""
    if len(table.headers) > 2:
        boxes = "".join(
            f'<label><input type="checkbox" class="col-toggle" data-table="{esc(table.key)}" data-col="{index}" '
            f"checked> {esc(header)}</label>"
            for index, header in enumerate(table.headers)
            if index > 0
        )
        toggles = f'<details class="columns"><summary>Columns</summary>{boxes}</details>'
    return (
        f'{toggles}<div class="scroll"><table id="{esc(table.key)}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def legend_html(flags: Iterable[str]) -> str:
    """What each mark used in a table means."""
    used = [flag for flag in FLAG_MEANINGS if flag in set(flags)]
    if not used:
        return ""
    items = "".join(f"<dt>{esc(flag)}</dt><dd>{esc(FLAG_MEANINGS[flag])}</dd>" for flag in used)
    return f'<dl class="legend">{items}</dl>'


def notes_html(notes: Iterable[str]) -> str:
    items = "".join(f"<li>{esc(note)}</li>" for note in notes)
    return f'<ul class="notes">{items}</ul>' if items else ""


def figure_html(name: str, caption: str) -> str:
    return (
        f'<figure><img src="{href(name)}" alt="{esc(caption)}" loading="lazy">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )

"""The leaderboard site in a real browser: the committed reference site and a site with a hostile model name,
opened from disk in headless Chromium: no console errors, sorting reorders rows, columns hide, the
chance-corrected view toggles, user strings render as text, and a screenshot is written to look at."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from browser import chromium_page, open_file
from cli_helpers import run_cli
from conftest import REPO
from leaderboard_records import SOURCE_A, make_record, student, teacher, write_results

from libkd_bench.records.run_record import read_records
from libkd_bench.reports.html_site import INDEX_NAME, page_names

pytestmark = pytest.mark.slow  # starts a browser: a few seconds each
REFERENCE = REPO / "results" / "reference"
NASTY = "<script>alert(1)</script> a|b\nc"


def column_values(page: Any, table_id: str, header: str) -> list[str]:
    return page.evaluate(
        """([id, header]) => {
            const table = document.getElementById(id);
            const index = [...table.tHead.rows[0].cells].findIndex(th => th.textContent.trim() === header);
            return [...table.tBodies[0].rows].map(row => row.cells[index].dataset.v);
        }""",
        [table_id, header],
    )


def model_names(page: Any, table_id: str) -> list[str]:
    return page.evaluate(
        "id => [...document.getElementById(id).tBodies[0].rows]"
        ".map(row => row.cells[0].querySelector('a').textContent)",
        table_id,
    )


def wide_table_id(page: Any) -> str:
    return page.evaluate("document.querySelector('table[id$=\"-wide\"]').id")


def test_reference_site_shows_every_model_and_sorts(tmp_path: Path) -> None:
    index = REFERENCE / INDEX_NAME
    assert index.is_file(), "results/reference/index.html is committed; regenerate with libkd-bench leaderboard"
    records, _ = read_records(REFERENCE)
    with chromium_page(tmp_path / "profile") as (page, console):
        open_file(page, index)
        table = wide_table_id(page)
        shown = model_names(page, table)
        assert sorted(shown) == sorted(r.model for r in records)
        header = "clean acc (%)"
        page.click(f"#{table} thead button:text-is('{header}')")
        ascending = [float(v) for v in column_values(page, table, header)]
        assert ascending == sorted(ascending)
        assert model_names(page, table) != shown  # teachers first is not the order of clean accuracy
        page.click(f"#{table} thead button:text-is('{header}')")
        assert [float(v) for v in column_values(page, table, header)] == sorted(ascending, reverse=True)
        page.screenshot(path=str(tmp_path / "reference.png"))
        for record in records:
            open_file(page, REFERENCE / page_names(records)[record.run_id])
            assert page.locator("h1").inner_text() == record.model
        assert console.errors == []
    assert (tmp_path / "reference.png").stat().st_size > 10_000


def test_hostile_model_name_renders_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nasty = make_record(
        NASTY, SOURCE_A, 0.9, {"texture": [0.3]}, kd={"teacher": None, "baseline": None, "method": NASTY}
    )
    nasty = dataclasses.replace(nasty, card={"method": NASTY, "notes": NASTY})
    records = [teacher(), student(), nasty]
    results = write_results(tmp_path / "results", records)
    out = tmp_path / "board"
    assert run_cli(["leaderboard", "--results", str(results), "--out", str(out)], capsys)[0] == 0
    with chromium_page(tmp_path / "profile") as (page, console):
        for path in (out / INDEX_NAME, out / page_names(records)[nasty.run_id]):
            open_file(page, path)
            assert page.evaluate("document.scripts.length") == 1
            texts = page.evaluate("[...document.querySelectorAll('a, h1, dd')].map(e => e.textContent)")
            assert NASTY in texts, path.name
        page.screenshot(path=str(tmp_path / "hostile.png"))
        assert console.errors == []
        assert console.dialogs == []


def test_columns_hide_and_the_chance_corrected_view_toggles(tmp_path: Path) -> None:
    with chromium_page(tmp_path / "profile") as (page, console):
        open_file(page, REFERENCE / INDEX_NAME)
        table = wide_table_id(page)
        visible = f"document.querySelector('#{table} tbody tr').cells[1].checkVisibility()"
        assert page.evaluate(visible)
        page.evaluate(f"document.querySelector('#{table}').closest('section').querySelector('details').open = true")
        page.uncheck(f"input.col-toggle[data-table='{table}'][data-col='1']")
        assert not page.evaluate(visible)
        corrected = "document.querySelector('.view-cc').checkVisibility()"
        assert not page.evaluate(corrected)
        page.check("#chance-corrected")
        assert page.evaluate(corrected)
        assert not page.evaluate("document.querySelector('.view-raw').checkVisibility()")
        assert console.errors == []

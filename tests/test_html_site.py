"""The leaderboard's static site, read as text: pages written, values and marks from the Markdown's data model,
user strings escaped, cards shown and in model-cards.csv, stale pages removed, kept attention panels."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

import pytest
from cli_helpers import run_cli
from leaderboard_records import SOURCE_A, all_records, baseline, make_record, student, teacher, write_results

from libkd_bench.records.run_record import MetricRow
from libkd_bench.reports.html_site import CARDS_NAME, INDEX_NAME, leaderboard_site, page_names
from libkd_bench.reports.leaderboard import long_frame
from libkd_bench.reports.site_tables import source_tables

NASTY = "<script>alert(1)</script> a|b\nc & 'd'"


def build(tmp_path: Path, records: list | None = None, capsys: pytest.CaptureFixture[str] | None = None) -> Path:
    out = tmp_path / "board"
    results = write_results(tmp_path / "results", records)
    assert capsys is not None
    assert run_cli(["leaderboard", "--results", str(results), "--out", str(out)], capsys)[0] == 0
    return out


def test_the_command_writes_an_index_and_one_page_per_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = build(tmp_path, capsys=capsys)
    index = (out / INDEX_NAME).read_text(encoding="utf-8")
    pages = sorted(path.name for path in out.glob("model_*.html"))
    assert pages == sorted(page_names(all_records()).values())
    for record in all_records():
        assert f">{record.model}</a>" in index
    assert index.count("<table") >= 3  # two sources, the student's source with its chance-free wide table
    assert "http" not in index.replace('href="https://', "")  # nothing loaded from elsewhere
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"(?!data:)", index)


def test_cells_carry_the_markdown_values_intervals_and_marks() -> None:
    records = [teacher(), baseline(), student()]
    tables = source_tables(records, page_names(records))
    headers = tables.wide.headers
    row = next(r for r in tables.wide.rows if r[0].text == "vit-kd")
    texture = row[headers.index("Texture")]
    assert texture.row is not None
    assert texture.text == "0.36 [0.34, 0.38]"
    assert texture.sort == pytest.approx(texture.row.value)
    marks = {flag for r in tables.wide.rows for cell in r for flag in cell.flags}
    assert {"†", "‡"} <= marks
    html = leaderboard_site(records, long_frame(records), {})[INDEX_NAME]
    assert 'title="Texture: 0.362, 95% interval [0.342, 0.382], n = 2000"' in html
    assert "does not differ significantly from its baseline" in html


def test_user_strings_are_escaped_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nasty = make_record(
        NASTY, SOURCE_A, 0.9, {"texture": [0.3]}, kd={"teacher": None, "baseline": None, "method": NASTY}
    )
    nasty = dataclasses.replace(nasty, card={"method": NASTY, "link": 'https://x.org/"><script>'})
    out = build(tmp_path, [teacher(), nasty], capsys)
    for path in [out / INDEX_NAME, *out.glob("model_*.html")]:
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text, path.name
        assert '"><script>' not in text, path.name
        assert text.count("<script>") == 1  # the page's own
    page = next(path for path in out.glob("model_*.html") if "teacher" not in path.name and "resnet56" not in path.name)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a|b\nc &amp; &#x27;d&#x27;" in page.read_text(encoding="utf-8")


def test_cards_show_on_pages_and_in_the_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    carded = dataclasses.replace(teacher(), card={"method": "supervised", "seed": 4, "licence": "MIT"})
    zoo = dataclasses.replace(baseline(), checkpoint={**baseline().checkpoint, "zoo": "ref-vit-baseline"})
    out = build(tmp_path, [carded, zoo, student()], capsys)
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO((out / CARDS_NAME).read_text(encoding="utf-8")))}
    assert (rows["resnet56"]["seed"], rows["resnet56"]["licence"], rows["resnet56"]["card_origin"]) == (
        "4",
        "MIT",
        "record",
    )
    assert rows["vit-scratch"]["card_origin"] == "zoo entry ref-vit-baseline"
    assert rows["vit-kd"]["card_origin"] == ""
    assert rows["vit-kd"]["kd_method"] == student().kd["method"]
    page = (out / page_names([carded])[carded.run_id]).read_text(encoding="utf-8")
    assert "<dt>Licence</dt><dd>MIT</dd>" in page
    assert "<dt>Seed</dt><dd>4</dd>" in page


def test_model_pages_list_their_long_csv_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = build(tmp_path, capsys=capsys)
    record = student()
    page = (out / page_names(all_records())[record.run_id]).read_text(encoding="utf-8")
    frame = long_frame(all_records())
    count = int(((frame["model"] == record.model) & (frame["source"] == record.source_id)).sum())
    assert f"{count} row(s) of" in page
    assert page.count("<tr>") >= count
    assert "Bias profile" in page


def test_pages_of_removed_models_go_and_kept_attention_panels_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = build(tmp_path, capsys=capsys)
    gone = next(out.glob("model_resnet20@*.html"))
    panel = out / f"attention_vit-kd_{SOURCE_A['id']}.png"  # drawn when the cache was there
    panel.write_bytes(b"\x89PNG old")
    results = tmp_path / "results"
    (results / "runs" / f"resnet20@{all_records()[3].source_id}.json").unlink()
    assert run_cli(["leaderboard", "--results", str(results), "--out", str(out)], capsys)[0] == 0
    assert not gone.exists()
    assert panel.exists()
    page = (out / page_names([student()])[student().run_id]).read_text(encoding="utf-8")
    assert panel.name in page
    assert f"({panel.name})" in (out / "leaderboard.md").read_text(encoding="utf-8")


def test_a_record_without_intervals_renders() -> None:
    record = make_record("plain", SOURCE_A, 0.9, {"texture": [0.3]})
    bare = dataclasses.replace(
        record,
        metrics=tuple(MetricRow(r.set, r.severity, "", r.metric, r.value, None, None, r.n) for r in record.metrics),
    )
    html = leaderboard_site([bare], long_frame([bare]), {})[INDEX_NAME]
    assert "no interval" in html

"""The leaderboard: golden long CSV and wide Markdown, CSV reading, skipped and half-written records, the command.

The golden files in tests/golden/ were generated from the hand-made records of leaderboard_records.py and
read by eye. After an intended change of the format, regenerate them with
``LIBKD_BENCH_REGENERATE_GOLDEN=1 python -m pytest tests/test_leaderboard.py`` and read the diff.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import assert_one_line_error, run_cli
from leaderboard_records import SOURCE_A, all_records, baseline, make_record, student, teacher, write_results

from libkd_bench.core.errors import BenchError
from libkd_bench.records.run_record import RUNS_DIR, MetricRow, read_records, write_record
from libkd_bench.reports.leaderboard import LONG_COLUMNS, format_long_csv, long_frame, parse_long_csv, read_long_csv
from libkd_bench.reports.markdown import SUPERPIXEL_HEADER, format_interval, leaderboard_markdown, not_significant

GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = os.environ.get("LIBKD_BENCH_REGENERATE_GOLDEN") == "1"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.read_bytes() == text.encode("utf-8"), f"{name} differs from the golden file"


def section(markdown: str, source_id: str) -> str:
    """The text of one source's section of the Markdown document."""
    return markdown.split(f"## {source_id} ", 1)[1].split("\n## ", 1)[0]


def table_row(markdown: str, source_id: str, model: str, header: str = "Method") -> dict[str, str]:
    """Header -> cell of the row whose first cell starts with ``model``, in that source's first table whose
    first column is ``header``."""
    lines = [line for line in section(markdown, source_id).splitlines() if line.startswith("|")]
    start = next(i for i, line in enumerate(lines) if line.strip("|").split("|")[0].strip() == header)
    lines = lines[start:]
    header_cells = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        if set(line.replace("|", "").strip()) <= {"-", ":"}:
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0].split(" (")[0] == model:
            if len(cells) != len(header_cells):
                break
            return dict(zip(header_cells, cells, strict=True))
    raise AssertionError(f"no row for {model}")


def test_help_stays_light() -> None:
    code = (
        "import sys; from libkd_bench.cli import build_parser; build_parser(); "
        "print(sorted({'pandas', 'matplotlib', 'tabulate'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# Golden files ------------------------------------------------------------------------------------------------


def test_command_writes_golden_csv_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write_results(tmp_path / "results")
    out = tmp_path / "board"
    code, stdout, err = run_cli(["leaderboard", "--results", str(results), "--out", str(out)], capsys)
    assert code == 0, err
    csv_text = (out / "leaderboard.csv").read_text(encoding="utf-8")
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert_golden("leaderboard.csv", csv_text)
    assert_golden("leaderboard.md", markdown)
    assert stdout == markdown
    plots = sorted(path.name for path in out.glob("*.png"))
    assert plots == [
        "accuracy-vs-severity_folder-bbbb2222.png",
        "accuracy-vs-severity_npz-aaaa1111.png",
        "bias-profile_folder-bbbb2222.png",
        "bias-profile_npz-aaaa1111.png",
        "shape-bias-vs-accuracy_npz-aaaa1111.png",
    ]
    for name in plots:  # every plot is linked under its source's section
        assert f"]({name})" in section(markdown, name.split("_", 1)[1].removesuffix(".png"))
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporaries left


def test_default_out_is_results_leaderboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write_results(tmp_path / "results", [other := all_records()[-1]])
    code, _, _ = run_cli(["leaderboard", "--results", str(results)], capsys)
    assert code == 0
    assert other.model in (results / "leaderboard" / "leaderboard.csv").read_text()


def test_pure_functions_match_the_golden_files() -> None:
    records = all_records()
    assert format_long_csv(long_frame(records)) == (GOLDEN / "leaderboard.csv").read_text(encoding="utf-8")
    golden = (GOLDEN / "leaderboard.md").read_text(encoding="utf-8")
    images = {}
    for line in golden.splitlines():
        if line.startswith("!["):
            title, name = line[2:-1].split("](")
            images.setdefault(name.split("_", 1)[1].removesuffix(".png"), []).append((title, name))
    assert leaderboard_markdown(records, images) == golden


# Long CSV ----------------------------------------------------------------------------------------------------


def test_long_csv_has_one_row_per_metric_row_with_fixed_columns() -> None:
    records = all_records()
    frame = long_frame(records)
    assert tuple(frame.columns) == LONG_COLUMNS
    gap_cells = sum(row.metric == "teacher_baseline_gap_p" for r in records for row in r.metrics)
    assert len(frame) == sum(len(r.metrics) for r in records) + 2 * gap_cells  # + Holm p and identified per cell
    whole = frame[(frame.model == "resnet56") & (frame.set == "superpixel") & (frame.metric == "bias_ratio")]
    assert whole.severity.isna().tolist() == [True, False, False, False]  # whole set first, then levels 1..3
    assert whole.severity.dropna().tolist() == [1, 2, 3]
    first = frame.iloc[0]
    assert (first.model, first.source, first.set, first.metric) == ("resnet20", "folder-bbbb2222", "clean", "accuracy")
    assert first.value == pytest.approx(0.9)  # fractions, not percentages
    assert first.suite_version == "0.1.0"
    assert len(first.checkpoint_sha256) == 64


def test_long_csv_is_independent_of_record_order() -> None:
    records = all_records()
    assert format_long_csv(long_frame(records)) == format_long_csv(long_frame(records[::-1]))


def test_long_csv_round_trips() -> None:
    text = format_long_csv(long_frame(all_records()))
    frame = parse_long_csv(text)
    assert format_long_csv(frame) == text
    assert frame.severity.dtype == "Int64"
    assert frame.value.dtype == "float64"
    missing_ci = frame[(frame.metric == "mcnemar_p")]
    assert missing_ci.ci_low.isna().all()  # an undefined interval stays empty, never 0


def test_two_records_of_one_model_and_source_are_refused() -> None:
    twin = dataclasses.replace(teacher(), checkpoint={"sha256": "c" * 64})
    with pytest.raises(BenchError, match="two run records describe model 'resnet56'"):
        long_frame([teacher(), twin])


GOOD_LINE = f"m,src,clean,,accuracy,0.9,0.88,0.92,100,,{'ab' * 32},0.1.0"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not a readable CSV"),
        ("model,source,set\nm,s,clean\n", "lacks the column(s) severity, metric, value"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE.replace('0.9,', 'high,')}\n", "line 2: value 'high' is not a finite"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE.replace('0.9,', ',')}\n", "line 2: value '(empty)'"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE.replace('0.88', 'inf')}\n", "ci_low 'inf' is not a finite"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE.replace('clean,,', 'clean,1.5,')}\n", "severity '1.5' is not a whole"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE.replace('clean,,', 'clean,0,')}\n", "severity '0' is not a whole"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE.replace('m,', ',', 1)}\n", "line 2: the model cell is empty"),
        (f"{','.join(LONG_COLUMNS)}\n{GOOD_LINE}\n{GOOD_LINE}\n", "line 3: model 'm' on src, set clean, whole set"),
    ],
)
def test_malformed_csv_is_one_line_error(text: str, fragment: str) -> None:
    with pytest.raises(BenchError) as caught:
        parse_long_csv(text, "baseline CSV x.csv")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_csv_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"baseline CSV .*nope\.csv does not exist"):
        read_long_csv(tmp_path / "nope.csv", "baseline CSV")


def test_extra_columns_and_column_order_are_tolerated() -> None:
    text = format_long_csv(long_frame([teacher()]))
    frame = pd.read_csv(pd.io.common.StringIO(text), dtype=str, keep_default_na=False)
    frame["note"] = "x"
    shuffled = frame[["note", *reversed(LONG_COLUMNS)]].to_csv(index=False)
    assert format_long_csv(parse_long_csv(shuffled)) == text


# Wide Markdown -----------------------------------------------------------------------------------------------


def test_one_table_per_source_never_mixed() -> None:
    markdown = leaderboard_markdown(all_records())
    first, second = section(markdown, "folder-bbbb2222"), section(markdown, "npz-aaaa1111")
    assert "resnet20" in first
    assert not any(name in first for name in ("resnet56", "vit-scratch", "vit-kd"))
    assert "resnet20" not in second
    assert "## folder-bbbb2222 (folder, n = 1000)" in markdown  # the id, not where this machine read it
    assert "## npz-aaaa1111 (npz, n = 2000)" in markdown
    assert "data/test.npz" not in markdown


def test_columns_follow_the_reference_layout_and_empty_ones_are_dropped() -> None:
    markdown = leaderboard_markdown(all_records())
    a = list(table_row(markdown, "npz-aaaa1111", "resnet56"))
    assert a == [
        "Method",
        "clean acc (%)",
        "Texture",
        "Shape",
        SUPERPIXEL_HEADER,
        "Scramble",
        "Noise (patch-noise)",
        "cue-conflict shape bias",
        "PGD ratio",
        "FGSM ratio",
        "Arch",
        "Params",
        "MACs",
    ]
    b = list(table_row(markdown, "folder-bbbb2222", "resnet20"))
    assert b == ["Method", "clean acc (%)", "Scramble", "AutoAttack ratio"]


def test_cells_show_percentages_ratios_intervals_and_kd_context() -> None:
    markdown = leaderboard_markdown(all_records())
    row = table_row(markdown, "npz-aaaa1111", "vit-kd")
    assert row["Method"] == "vit-kd (student of resnet56, DeiT hard distillation; baseline vit-scratch)"
    assert row["clean acc (%)"] == "82.0 [80.0, 84.0]"
    assert row["cue-conflict shape bias"] == "0.55 [0.53, 0.57]"
    assert row["Params"] == "5.53 M"
    assert row["MACs"] == "1.30 G"
    assert table_row(markdown, "npz-aaaa1111", "resnet56")["Method"] == "resnet56 (teacher)"
    assert table_row(markdown, "npz-aaaa1111", "resnet56")["MACs"] == "125.8 M"
    assert table_row(markdown, "npz-aaaa1111", "vit-scratch")["Method"] == "vit-scratch (baseline)"
    order = [line.split("|")[1].strip().split(" ")[0] for line in section(markdown, "npz-aaaa1111").splitlines()[4:7]]
    assert order == ["resnet56", "vit-scratch", "vit-kd"]  # teacher, baseline, then the student


def test_not_significant_differences_are_marked() -> None:
    markdown = leaderboard_markdown(all_records())
    row = table_row(markdown, "npz-aaaa1111", "vit-kd")
    # texture: vs baseline 0.0125 +- 0.02 contains 0 (†), vs teacher 0.0375 +- 0.02 excludes it.
    assert row["Texture"] == "0.36 [0.34, 0.38] †"
    assert row["Shape"] == "0.50 [0.48, 0.52] ‡"  # vs teacher 0 +- 0.02
    assert row[SUPERPIXEL_HEADER] == "0.80 [0.78, 0.82] ‡"  # vs teacher: no interval, so not significant
    assert row["Scramble"] == "0.24 [0.22, 0.26]"  # no comparison row: nothing to mark
    assert "†" not in str(table_row(markdown, "npz-aaaa1111", "resnet56"))
    assert "† / ‡: the student's ratio does not differ significantly" in markdown
    assert "† / ‡" not in section(markdown, "folder-bbbb2222")  # no comparisons there: no footnote


def set_row(markdown: str, model: str, set_name: str, header: str) -> dict[str, str]:
    """Header -> cell of the (student, set) row of the first table whose first column is ``header``."""
    lines = [line for line in section(markdown, "npz-aaaa1111").splitlines() if line.startswith("|")]
    start = next(i for i, line in enumerate(lines) if line.strip("|").split("|")[0].strip() == header)
    header_cells = [cell.strip() for cell in lines[start].strip("|").split("|")]
    for line in lines[start + 2 :]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[:2] == [model, set_name]:
            return dict(zip(header_cells, cells, strict=True))
    raise AssertionError(f"no row for {model} on {set_name}")


def test_bias_transfer_table_holm_identification_and_recipe_control() -> None:
    markdown = leaderboard_markdown(all_records())
    texture = set_row(markdown, "vit-kd", "texture", "Student")
    assert texture["Transfer (Fieller 95%)"] == "0.25 [0.23, 0.27]"
    assert texture["p (Holm)"] == "0.003"  # 0.001 x 3 hypotheses
    assert texture["Recipe control transfer"] == "0.10 [0.08, 0.12]"
    assert texture["Transfer beyond recipe"] == "0.15 [0.13, 0.17]"
    assert texture["Raw-ratio transfer"] == "0.30 [0.28, 0.32]"
    shape = set_row(markdown, "vit-kd", "shape", "Student")
    assert shape["Transfer (Fieller 95%)"] == "not identified (gap not significant after Holm)"
    assert shape["Transfer beyond recipe"] == "-"
    assert "41" not in "".join(shape.values())  # an unbounded ratio is never shown as a number
    superpixel = set_row(markdown, "vit-kd", "superpixel", "Student")
    assert superpixel["p (Holm)"] == "0.04"  # 0.02 x 2, still under 0.05
    assert superpixel["Transfer (Fieller 95%)"] == "1.40 [1.38, 1.42]"
    assert superpixel["Recipe control transfer"] == "unbounded: outside (-0.40, 0.20)"
    assert superpixel["Transfer beyond recipe"] == "unbounded: whole line"
    assert "Recipe control (vit-recipe)" in markdown


def test_fidelity_table_shows_agreement_bounds_kl_and_the_least_agreeing_class() -> None:
    markdown = leaderboard_markdown(all_records()).split("Fidelity to the teacher.", 1)[1]
    line = next(line for line in markdown.splitlines() if line.startswith("| vit-kd"))
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    expected = ["vit-kd", "clean", "0.85 [0.83, 0.87]", "0.70 - 0.95", "0.31 [0.29, 0.33]", "cat 0.62 [0.60, 0.64]"]
    assert cells == expected


def test_long_csv_carries_holm_p_and_identification() -> None:
    frame = long_frame(all_records())
    student_rows = frame[frame.model == "vit-kd"].set_index(["set", "metric"])["value"]
    assert student_rows["texture", "teacher_baseline_gap_p_holm"] == pytest.approx(0.003)
    assert student_rows["texture", "transfer_identified"] == 1.0
    assert student_rows["shape", "transfer_identified"] == 0.0
    assert student_rows["superpixel", "transfer_identified"] == 1.0


def test_format_interval_and_significance_known_answers() -> None:
    row = MetricRow("texture", None, "", "bias_ratio", 0.8345, 0.80, 0.8649, 100)
    assert format_interval(row) == "0.83 [0.80, 0.86]"
    assert format_interval(row, percent=True) == "83.5 [80.0, 86.5]"
    assert format_interval(None) == "-"
    assert format_interval(dataclasses.replace(row, ci_low=None, ci_high=None)) == "0.83"
    diff = MetricRow("texture", None, "", "bias_ratio_diff_baseline", 0.05, 0.01, 0.09, 100)
    assert not not_significant(diff)
    assert not_significant(dataclasses.replace(diff, ci_low=-0.01))
    assert not_significant(dataclasses.replace(diff, ci_low=0.0))  # touching 0 is not excluding it
    assert not_significant(dataclasses.replace(diff, ci_low=None, ci_high=None))
    assert not not_significant(None)


def test_pipe_in_a_model_name_is_escaped() -> None:
    record = make_record("a|b", SOURCE_A, 0.9, {"texture": [0.3]})
    assert "| a\\|b " in leaderboard_markdown([record])


# Reading records: skipped, half-written, none ----------------------------------------------------------------


def test_malformed_record_is_named_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write_results(tmp_path / "results", [teacher(), student()])
    (results / RUNS_DIR / "broken@npz-aaaa1111.json").write_text('{"model": "broken"', encoding="utf-8")
    (results / RUNS_DIR / "empty@npz-aaaa1111.json").write_text("{}", encoding="utf-8")
    code, stdout, err = run_cli(["leaderboard", "--results", str(results), "--out", str(tmp_path / "b")], capsys)
    assert code == 0
    skipped = [line for line in err.splitlines() if "skipping" in line]
    assert len(skipped) == 2
    assert "broken@npz-aaaa1111.json: not readable JSON" in skipped[0]
    assert "empty@npz-aaaa1111.json: not a run record" in skipped[1]
    assert "vit-kd" in stdout
    assert "broken" not in (tmp_path / "b" / "leaderboard.csv").read_text()


def test_half_written_record_is_never_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write_results(tmp_path / "results", [teacher()])
    runs = results / RUNS_DIR
    # What atomic_io leaves while a write is in progress: a hidden temporary, cut mid-way...
    (runs / ".tmp-vit-kd@npz-aaaa1111.json.4242.x1y2").write_text(student().dumps()[:200], encoding="utf-8")
    # ...and even a complete record under a temporary name ending in .json is not a record yet.
    (runs / ".tmp-vit-kd@npz-aaaa1111.json").write_text(student().dumps(), encoding="utf-8")
    code, stdout, err = run_cli(["leaderboard", "--results", str(results), "--out", str(tmp_path / "b")], capsys)
    assert code == 0
    assert "skipping" not in err
    assert "vit-kd" not in stdout
    assert set(pd.read_csv(tmp_path / "b" / "leaderboard.csv").model) == {"resnet56"}


def test_records_rewritten_while_the_leaderboard_reads_are_read_whole(tmp_path: Path) -> None:
    results = write_results(tmp_path / "results", [teacher(), student()])
    stop = threading.Event()

    def rewrite() -> None:  # another score run writing into the same results directory
        while not stop.is_set():
            write_record(results, student())
            write_record(results, baseline())

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(40):
            records, skipped = read_records(results)
            assert skipped == []
            assert {"resnet56", "vit-kd"} <= {r.model for r in records}
            cells = sum(row.metric == "teacher_baseline_gap_p" for r in records for row in r.metrics)
            assert len(long_frame(records)) == sum(len(r.metrics) for r in records) + 2 * cells
    finally:
        stop.set()
        writer.join()


def test_no_records_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = run_cli(["leaderboard", "--results", str(tmp_path / "empty")], capsys)
    assert_one_line_error(code, err, "no readable run records", "score a checkpoint first")
    assert stdout == ""
    assert not (tmp_path / "empty" / "leaderboard").exists()


def test_only_malformed_records_exit_2_after_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "results" / RUNS_DIR
    runs.mkdir(parents=True)
    (runs / "bad@x.json").write_text("[]", encoding="utf-8")
    code, _, err = run_cli(["leaderboard", "--results", str(tmp_path / "results")], capsys)
    assert code == 2
    assert err.splitlines()[0].endswith("bad@x.json: not a JSON object")
    assert err.splitlines()[1].startswith("libkd-bench: error: no readable run records")


def test_plots_of_a_vanished_source_are_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "board"
    results = write_results(tmp_path / "results", [teacher(), baseline()])
    stale = out / "bias-profile_gone-source.png"
    kept = out / "my-figure.png"
    out.mkdir()
    stale.write_bytes(b"old")
    kept.write_bytes(b"mine")
    assert run_cli(["leaderboard", "--results", str(results), "--out", str(out)], capsys)[0] == 0
    assert not stale.exists()
    assert kept.exists()


def test_a_top_class_row_names_its_class_and_a_csv_without_names_still_reads() -> None:
    records = all_records()
    top = MetricRow("shape", None, "", "top_class", 3.0, None, None, 100)
    frame = long_frame([dataclasses.replace(records[0], metrics=(*records[0].metrics, top))])
    labels = frame.loc[frame["metric"] == "top_class", "value_label"].tolist()
    assert labels == ["cat"]
    assert set(frame.loc[frame["metric"] != "top_class", "value_label"]) == {""}
    older = format_long_csv(long_frame(records)).splitlines()
    column = LONG_COLUMNS.index("value_label")
    without = "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in older) + "\n"
    assert parse_long_csv(without).equals(parse_long_csv("\n".join(older) + "\n"))

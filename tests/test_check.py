"""``libkd-bench check``: the regression rule on known answers, and exit codes 0 / 1 / 2 from the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import assert_one_line_error, run_cli
from leaderboard_records import all_records, student, teacher, write_results

from libkd_bench.core.errors import BenchError
from libkd_bench.reports.leaderboard import format_long_csv, long_frame, parse_long_csv
from libkd_bench.reports.regression import CheckConfig, Verdict, compare, parse_metrics, verdict


def frame() -> pd.DataFrame:
    return parse_long_csv(format_long_csv(long_frame(all_records())))


def changed(
    data: pd.DataFrame, model: str, set_name: str, value: float, low: float | None, high: float | None, **key: object
) -> pd.DataFrame:
    """A copy with the whole-set (or ``severity=``) ``metric=`` (default bias_ratio) row of one model replaced."""
    data = data.copy()
    severity, metric = key.get("severity"), key.get("metric", "bias_ratio")
    mask = (data.model == model) & (data.set == set_name) & (data.metric == metric)
    mask &= data.severity.isna() if severity is None else data.severity == severity
    assert mask.sum() == 1
    data.loc[mask, ["value", "ci_low", "ci_high"]] = [value, low, high]
    return data


def write(path: Path, data: pd.DataFrame) -> Path:
    path.write_text(format_long_csv(data), encoding="utf-8")
    return path


@pytest.fixture
def base_csv(tmp_path: Path) -> Path:
    return write(tmp_path / "baseline.csv", frame())


def check(base: Path, current: pd.DataFrame, tmp_path: Path, *extra: str) -> list[str]:
    return ["check", "--baseline-csv", str(base), "--current", str(write(tmp_path / "current.csv", current)), *extra]


def regression_table(out: str) -> list[list[str]]:
    """Whitespace-split lines of the regressions table: header, rule, then one row per regression."""
    block = out.split("REGRESSIONS", 1)[1].split("\n\n", 1)[0]
    return [line.split() for line in block.splitlines()[1:]]


# The rule on known answers (tolerance 0.02) --------------------------------------------------------------------

RULE = CheckConfig(tolerance=0.02)


@pytest.mark.parametrize(
    ("baseline", "current", "low", "high", "expected"),
    [
        (0.80, 0.80, 0.78, 0.82, Verdict.WITHIN_TOLERANCE),
        (0.80, 0.785, 0.70, 0.79, Verdict.WITHIN_TOLERANCE),  # a drop of 0.015 always passes
        (0.80, 0.78, 0.77, 0.79, Verdict.WITHIN_TOLERANCE),  # exactly the tolerance passes
        (0.80, 0.75, 0.73, 0.77, Verdict.REGRESSION),  # 0.05 down, interval entirely below 0.80
        (0.80, 0.75, 0.70, 0.80, Verdict.NOT_SIGNIFICANT),  # interval reaches the baseline value
        (0.80, 0.75, 0.70, 0.81, Verdict.NOT_SIGNIFICANT),
        (0.80, 0.75, None, None, Verdict.REGRESSION),  # no interval: nothing argues against the drop
        (0.80, 0.85, 0.83, 0.87, Verdict.IMPROVEMENT),
        (0.80, 0.85, 0.79, 0.91, Verdict.IMPROVEMENT),
    ],
)
def test_verdict_known_answers(baseline: float, current: float, low: float, high: float, expected: Verdict) -> None:
    assert verdict(baseline, current, low, high, RULE) is expected


def test_two_sided_fails_significant_rises_only() -> None:
    config = CheckConfig(tolerance=0.02, two_sided=True)
    assert verdict(0.80, 0.85, 0.83, 0.87, config) is Verdict.REGRESSION
    assert verdict(0.80, 0.85, 0.79, 0.91, config) is Verdict.IMPROVEMENT  # rise not significant
    assert verdict(0.80, 0.81, 0.80, 0.82, config) is Verdict.WITHIN_TOLERANCE


def test_strict_fails_every_change_beyond_the_tolerance() -> None:
    config = CheckConfig(tolerance=0.005, strict=True)
    assert verdict(0.80, 0.79, 0.70, 0.90, config) is Verdict.REGRESSION  # a drop the interval cannot see
    assert verdict(0.80, 0.81, 0.70, 0.90, config) is Verdict.REGRESSION  # a rise, too
    assert verdict(0.80, 0.804, 0.70, 0.90, config) is Verdict.WITHIN_TOLERANCE


@pytest.mark.parametrize("tolerance", [-0.01, float("nan"), float("inf")])
def test_bad_tolerance_is_refused(tolerance: float) -> None:
    with pytest.raises(BenchError, match="--tolerance"):
        CheckConfig(tolerance=tolerance)


def test_parse_metrics() -> None:
    assert parse_metrics(" bias_ratio, shape_bias,bias_ratio ,") == ("bias_ratio", "shape_bias")
    with pytest.raises(BenchError, match="--metrics"):
        CheckConfig(metrics=parse_metrics(" , "))


def test_tracks_whole_set_and_level_rows_of_the_default_metrics() -> None:
    report = compare(frame(), frame(), CheckConfig())
    data = frame()
    expected = data[data.metric.isin(["bias_ratio", "shape_bias"])]
    assert len(report.comparisons) == len(expected) == 66
    assert {c.severity for c in report.comparisons} == {None, 1, 2, 3}
    assert report.passed
    assert report.new_rows == 0


def test_current_rows_absent_from_the_baseline_are_new_and_pass() -> None:
    data = frame()
    report = compare(data[data.model != "vit-kd"], data, CheckConfig())
    assert report.passed
    assert report.new_rows == 20  # vit-kd: 19 bias ratios and its shape bias


# Exit codes from the command line -----------------------------------------------------------------------------


def test_identical_results_pass(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(check(base_csv, frame(), tmp_path), capsys)
    assert code == 0
    assert out.startswith("check: 66 tracked value(s) of bias_ratio, shape_bias, tolerance 0.02: 0 regression(s)")


def test_significant_drop_is_a_regression(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # vit-kd texture ratio 0.362195 -> 0.31 [0.29, 0.33]: 0.052 down, interval entirely below the baseline.
    current = changed(frame(), "vit-kd", "texture", 0.31, 0.29, 0.33)
    code, out, err = run_cli(check(base_csv, current, tmp_path), capsys)
    assert code == 1
    assert "1 regression(s)" in out
    header, _, *rows = regression_table(out)
    assert header == [
        "source",
        "model",
        "set",
        "severity",
        "metric",
        "baseline",
        "current",
        "delta",
        "current",
        "95%",
        "CI",
    ]
    assert rows == [
        ["npz-aaaa1111", "vit-kd", "texture", "all", "bias_ratio", "0.3622", "0.3100", "-0.0522", "[0.2900,", "0.3300]"]
    ]
    assert "check failed" in err


def test_regression_of_one_level(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = changed(frame(), "resnet56", "superpixel", 0.2, 0.18, 0.22, severity=3)
    code, out, _ = run_cli(check(base_csv, current, tmp_path), capsys)
    assert code == 1
    assert [row[1:4] for row in regression_table(out)[2:]] == [["resnet56", "superpixel", "3"]]


def test_drop_within_tolerance_passes(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = changed(frame(), "vit-kd", "texture", 0.35, 0.33, 0.37)  # 0.012 down
    current = changed(current, "resnet56", "cue-conflict", 0.295, 0.28, 0.30, metric="shape_bias")  # 0.015 down
    code, out, _ = run_cli(check(base_csv, current, tmp_path), capsys)
    assert code == 0
    assert "0 regression(s), 0 drop(s) beyond tolerance but not significant, 0 improvement(s), 66 within" in out


def test_not_significant_drop_passes_and_is_reported(
    base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = changed(frame(), "vit-kd", "texture", 0.33, 0.28, 0.38)  # 0.032 down, interval reaches 0.362
    code, out, _ = run_cli(check(base_csv, current, tmp_path), capsys)
    assert code == 0
    assert "1 drop(s) beyond tolerance but not significant" in out
    assert "vit-kd" in out.split("not significant (pass):", 1)[1]


def test_improvement_passes_unless_two_sided(
    base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = changed(frame(), "resnet56", "texture", 0.4, 0.38, 0.42)
    code, out, _ = run_cli(check(base_csv, current, tmp_path), capsys)
    assert code == 0
    assert "1 improvement(s)" in out
    assert "Improvements (pass):" in out
    code, out, _ = run_cli(check(base_csv, current, tmp_path, "--two-sided"), capsys)
    assert code == 1


def test_larger_tolerance_and_other_metrics(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = changed(frame(), "vit-kd", "texture", 0.31, 0.29, 0.33)
    assert run_cli(check(base_csv, current, tmp_path, "--tolerance", "0.06"), capsys)[0] == 0
    assert run_cli(check(base_csv, current, tmp_path, "--metrics", "shape_bias"), capsys)[0] == 0
    current = changed(frame(), "vit-kd", "clean", 0.7, 0.68, 0.72, metric="accuracy")
    code, out, _ = run_cli(check(base_csv, current, tmp_path, "--metrics", "accuracy"), capsys)
    assert code == 1
    assert "check: 67 tracked value(s) of accuracy" in out


def test_missing_model_is_bad_input(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = frame()
    code, out, err = run_cli(check(base_csv, data[data.model != "vit-kd"], tmp_path), capsys)
    assert_one_line_error(
        code, err, "model 'vit-kd' on source npz-aaaa1111 is in the baseline but not in", "--update-baseline"
    )
    assert out == ""


def test_missing_set_is_bad_input(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = frame()
    current = data[~((data.model == "resnet20") & (data.set == "adv-autoattack"))]
    code, _, err = run_cli(check(base_csv, current, tmp_path), capsys)
    assert_one_line_error(code, err, "set adv-autoattack of model 'resnet20' on source folder-bbbb2222")


def test_missing_level_is_bad_input(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = frame()
    current = data[~((data.model == "resnet56") & (data.set == "scramble") & (data.severity == 2)).fillna(False)]
    code, _, err = run_cli(check(base_csv, current, tmp_path), capsys)
    assert_one_line_error(code, err, "no value for model 'resnet56' on npz-aaaa1111, set scramble, severity 2")


@pytest.mark.parametrize(
    ("mangle", "fragment"),
    [
        (lambda text: text.replace(",metric,", ",measure,", 1), "lacks the column(s) metric"),
        (lambda text: text.replace(",0.25,0.23,", ",0.25x,0.23,", 1), "value '0.25x' is not a finite number"),
        (
            lambda text: text.replace(
                "resnet56,npz-aaaa1111,superpixel,1,", "resnet56,npz-aaaa1111,superpixel,one,", 1
            ),
            "severity 'one'",
        ),
        (lambda text: text + text.splitlines()[1] + "\n", "appears twice"),
        (lambda text: "", "is not a readable CSV"),
    ],
)
def test_malformed_baseline_is_bad_input(
    mangle: object, fragment: str, base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_csv.write_text(mangle(base_csv.read_text()), encoding="utf-8")
    code, out, err = run_cli(check(base_csv, frame(), tmp_path), capsys)
    assert_one_line_error(code, err, f"baseline CSV {base_csv}", fragment)
    assert out == ""


def test_missing_baseline_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(check(tmp_path / "none.csv", frame(), tmp_path), capsys)
    assert_one_line_error(code, err, "none.csv does not exist")


def test_malformed_current_names_it(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = tmp_path / "cur.csv"
    current.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = run_cli(["check", "--baseline-csv", str(base_csv), "--current", str(current)], capsys)
    assert_one_line_error(code, err, f"current CSV {current} lacks the column(s) model")


def test_unknown_metric_suggests_the_close_one(
    base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(check(base_csv, frame(), tmp_path, "--metrics", "bias_rato"), capsys)
    assert_one_line_error(code, err, "unknown metric 'bias_rato'; did you mean bias_ratio")


def test_baseline_without_tracked_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = frame()
    base = write(tmp_path / "acc.csv", data[data.metric == "accuracy"])
    code, _, err = run_cli(check(base, data, tmp_path), capsys)
    assert_one_line_error(code, err, "the baseline has no rows of bias_ratio, shape_bias")


def test_both_current_sources_are_refused(base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check", "--baseline-csv", str(base_csv), "--current", str(base_csv), "--results", str(tmp_path)]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "not allowed with argument")


# Current results from run records, and --update-baseline --------------------------------------------------------


def test_results_dir_builds_the_current_csv_in_memory(
    base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_results(tmp_path / "results")
    (results / "runs" / "junk@x.json").write_text("not json", encoding="utf-8")
    code, out, err = run_cli(["check", "--baseline-csv", str(base_csv), "--results", str(results)], capsys)
    assert code == 0
    assert "66 within tolerance" in out
    assert "skipping" in err
    assert "junk@x.json" in err
    assert not (results / "leaderboard").exists()  # nothing written


def test_results_dir_missing_a_model_is_bad_input(
    base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_results(tmp_path / "results", [teacher(), student()])
    code, _, err = run_cli(["check", "--baseline-csv", str(base_csv), "--results", str(results)], capsys)
    assert_one_line_error(code, err, "model 'resnet20' on source folder-bbbb2222")


def test_update_baseline_rewrites_it_atomically(
    base_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = changed(frame(), "vit-kd", "texture", 0.31, 0.29, 0.33)
    assert run_cli(check(base_csv, current, tmp_path), capsys)[0] == 1
    code, out, _ = run_cli(check(base_csv, current, tmp_path, "--update-baseline"), capsys)
    assert code == 0
    assert f"baseline {base_csv} updated: 170 rows, 4 model run(s)" in out
    assert base_csv.read_text() == format_long_csv(current)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    assert run_cli(check(base_csv, current, tmp_path), capsys)[0] == 0


def test_update_baseline_creates_it_from_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write_results(tmp_path / "results")
    base = tmp_path / "ci" / "baseline.csv"
    code, _, _ = run_cli(["check", "--baseline-csv", str(base), "--results", str(results), "--update-baseline"], capsys)
    assert code == 0
    assert base.read_text() == format_long_csv(frame())
    assert run_cli(["check", "--baseline-csv", str(base), "--results", str(results)], capsys)[0] == 0

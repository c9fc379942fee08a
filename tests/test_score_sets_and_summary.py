"""``score``'s set selection and printed summary: families on ``--sets`` read by generate-sets' parser, and a table
that marks unpaired ratios, keeps to whole-set fidelity and writes non-interval Fieller sets in words."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED, synthetic_images

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.registry import parse_set_names
from libkd_bench.records.run_record import MetricRow, RunRecord
from libkd_bench.reports.summary_table import format_run_summary
from libkd_bench.reports.transfer_tables import fieller_cell
from libkd_bench.scoring.sets import load_scoring_sets, parse_set_list

CIFAR10G = ("cifar10g-silhouettes", "cifar10g-contours", "cifar10g-line-drawings")
SHARED_CIFAR10G = SHARED / "data" / "cifar10g"
TINY_ARCH = "resnet8_b"


def test_set_list_expands_families_in_place_like_generate_sets() -> None:
    assert parse_set_list("cifar10g") == list(CIFAR10G)
    assert parse_set_list("scramble,cifar10g,cifar10g-contours,scramble") == ["scramble", *CIFAR10G]
    corruptions = parse_set_list("corruptions")
    assert corruptions == parse_set_names("corruptions")
    assert len(corruptions) == 15
    assert all(name.startswith("corruption-") for name in corruptions)
    assert parse_set_list(" shape , corruptions ") == ["shape", *corruptions]


@pytest.mark.parametrize("text", [None, "", " , ,"])
def test_no_set_names_means_every_set_in_the_store(text: str | None) -> None:
    assert parse_set_list(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("cifar10h", "unknown set 'cifar10h'; did you mean cifar10g"), ("scramble,scrambel", "did you mean scramble")],
)
def test_set_list_rejects_an_unknown_name_with_its_close_matches(text: str, fragment: str) -> None:
    with pytest.raises(BenchError, match=fragment):
        parse_set_list(text)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "split.npz"
    images, labels = synthetic_images(60)
    np.savez(path, x=images, y=labels)
    return path


def generate(out: Path, split: Path, sets: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["generate-sets", "--source", f"npz:{split}", "--sets-dir", str(out), "--sets", sets, "--no-progress"]
    code, _, err = run_cli([*args, "--workers", "1"], capsys)
    assert code == 0, err


def test_score_names_the_family_members_missing_from_the_store(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "sets"
    generate(store, split, "scramble", capsys)
    base = ["score", "x.pt", "--sets-dir", str(store), "--results", str(tmp_path / "results"), "--no-progress"]
    code, _, err = run_cli([*base, "--sets", "scramble,cifar10g"], capsys)
    assert_one_line_error(
        code,
        err,
        f"sets {', '.join(CIFAR10G)} not in {store}",
        "it holds clean, scramble",
        f"generate-sets --sets {','.join(CIFAR10G)} --source npz:{split} --sets-dir {store}",
    )
    code, _, err = run_cli([*base, "--sets", "corruptions"], capsys)
    assert_one_line_error(code, err, "corruption-brightness", "corruption-zoom-blur", "not in")
    code, _, err = run_cli([*base, "--sets", "cifarl0g"], capsys)
    assert_one_line_error(code, err, "unknown set 'cifarl0g'; did you mean cifar10g")
    assert not (tmp_path / "results" / "runs").exists()


def test_the_suggested_generate_sets_command_completes_the_store(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "sets"
    generate(store, split, "scramble", capsys)
    code, _, err = run_cli(["score", "x.pt", "--sets-dir", str(store), "--sets", "patch-noise"], capsys)
    assert_one_line_error(code, err, "set patch-noise not in")
    suggested = err.split("build it with libkd-bench ", 1)[1].split()
    code, _, err = run_cli([*suggested, "--no-progress", "--workers", "1"], capsys)
    assert code == 0, err
    loaded = load_scoring_sets(store, parse_set_list("patch-noise"))
    assert list(loaded.sets) == ["clean", "patch-noise"]
    assert loaded.sets["patch-noise"].manifest.source["id"] == loaded.source_id


@pytest.mark.shared
def test_score_a_family_end_to_end_marks_its_ratios_unpaired(
    split: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A random ResNet-8 on 60 synthetic clean images and the 3 x 100 CIFAR-10G drawings of the shared copy."""
    import torch

    from libkd_bench.datasets_gen import cifar10g
    from libkd_bench.models import registry

    if not (SHARED_CIFAR10G / cifar10g.IMAGE_DIR).is_dir():
        pytest.skip(f"shared CIFAR-10G copy not found at {SHARED_CIFAR10G}")
    monkeypatch.setenv(cifar10g.COPY_ENV, str(SHARED_CIFAR10G))
    store = tmp_path / "sets"
    generate(store, split, "scramble,cifar10g", capsys)
    assert list(load_scoring_sets(store, parse_set_list("cifar10g")).sets) == ["clean", *CIFAR10G]

    checkpoint = tmp_path / "tiny.pt"
    torch.manual_seed(0)
    torch.save({"model": registry.create_architecture(TINY_ARCH, num_classes=10).state_dict()}, checkpoint)
    args = ["score", str(checkpoint), "--arch", TINY_ARCH, "--sets-dir", str(store), "--sets", "cifar10g"]
    args += ["--results", str(tmp_path / "results"), "--adv", "none", "--no-attention", "--no-progress"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    record = json.loads(next((tmp_path / "results" / "runs").glob("*.json")).read_text())
    assert sorted(record["sets"]) == sorted(["clean", *CIFAR10G])  # the family, not scramble
    lines = out.splitlines()
    for name in CIFAR10G:
        (line,) = [line for line in lines if line.startswith(name + " ")]
        assert "] (unpaired)" in line, line  # after the ratio's interval
    (clean,) = [line for line in lines if line.startswith("clean ")]
    assert "(unpaired)" not in clean
    (note,) = [line for line in lines if line.startswith("(unpaired) ")]
    assert ", ".join(sorted(CIFAR10G)) in note
    assert "not drawn from the clean split" in note


def row(set_name: str, metric: str, value: float, ci: tuple[float, float] | None = None, n: int = 100) -> MetricRow:
    low, high = ci if ci is not None else (None, None)
    return MetricRow(set_name, None, "", metric, value, low, high, n)


def summary_record() -> RunRecord:
    """A student with one bounded, one excluding and one unbounded transfer, per-class fidelity, one external set."""
    metrics = (
        row("clean", "accuracy", 0.9, (0.88, 0.92)),
        row("clean", "top1_agreement", 0.875, (0.85, 0.9)),
        row("clean", "top1_agreement:cat", 0.123456, (0.1, 0.15), n=10),
        row("clean", "kl_teacher_student:cat", 0.98765, (0.9, 1.1), n=10),
        row("texture", "accuracy", 0.45, (0.42, 0.48)),
        row("texture", "bias_ratio", 0.5, (0.47, 0.53)),
        row("texture", "bias_transfer", 0.52, (0.31, 0.75)),
        row("scramble", "accuracy", 0.36, (0.33, 0.39)),
        row("scramble", "bias_ratio", 0.4, (0.37, 0.43)),
        row("scramble", "bias_transfer_exclusive", 7.25, (-0.4, 0.3)),
        row("scramble", "top1_agreement", 0.8, (0.77, 0.83)),
        row("scramble", "kl_teacher_student", 0.25, (0.2, 0.3)),
        row("scramble", "top1_agreement:dog", 0.654321, (0.6, 0.7), n=10),
        row("shape", "accuracy", 0.27, (0.24, 0.3)),
        row("shape", "bias_ratio", 0.3, (0.27, 0.33)),
        row("shape", "bias_transfer_unbounded", 3.125),
        row("shape", "transfer_beyond_recipe_exclusive", 4.375, (-0.2, 0.1)),
        row("cifar10g-silhouettes", "accuracy", 0.54, (0.44, 0.64)),
        row("cifar10g-silhouettes", "bias_ratio", 0.6, (0.49, 0.71)),
        row("cifar10g-silhouettes", "bias_ratio_cc", 0.5556, (0.43, 0.68)),
    )
    external = {"name": "CIFAR-10G", "licence": "CC BY-NC-SA 4.0", "citation": "CIFAR-10G"}
    return RunRecord(
        model="student",
        source={"id": "npz-0123abcd"},
        checkpoint={"sha256": "0" * 64},
        spec={"arch": "resnet20"},
        metrics=metrics,
        sets={
            "clean": {"sha256": "a"},
            "texture": {"sha256": "b"},
            "scramble": {"sha256": "c"},
            "shape": {"sha256": "d"},
            "cifar10g-silhouettes": {"sha256": "e", "paired_with_clean": False, "external": external},
        },
    )


def summary_line(out: str, set_name: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith(set_name + " ")]
    return line


def test_summary_writes_non_interval_fieller_sets_in_the_leaderboard_words() -> None:
    record = summary_record()
    out = format_run_summary(record)
    scramble, shape = summary_line(out, "scramble"), summary_line(out, "shape")
    assert "transfer unbounded: outside (-0.40, 0.30)" in scramble
    assert fieller_cell(record, "scramble", "bias_transfer") in scramble  # the leaderboard's own cell
    assert "transfer unbounded: whole line" in shape
    assert "transfer beyond recipe unbounded: outside (-0.20, 0.10)" in shape
    for point in ("7.25", "3.12", "4.37", "4.38"):  # the point ratios of non-interval sets never appear
        assert point not in out
    assert "_exclusive" not in out
    assert "_unbounded" not in out
    assert "transfer 0.520 [0.310, 0.750]" in summary_line(out, "texture")


def test_summary_keeps_whole_set_fidelity_and_drops_per_class_rows() -> None:
    out = format_run_summary(summary_record())
    assert "agreement vs teacher 0.875 [0.850, 0.900]" in summary_line(out, "clean")
    assert "agreement vs teacher 0.800 [0.770, 0.830]" in summary_line(out, "scramble")
    assert "KL(teacher ‖ student) 0.250 [0.200, 0.300]" in summary_line(out, "scramble")
    for shown in (":cat", ":dog", "0.123", "0.988", "0.654"):
        assert shown not in out


def test_summary_marks_unpaired_ratios_with_a_footnote() -> None:
    out = format_run_summary(summary_record())
    external = summary_line(out, "cifar10g-silhouettes")
    assert "0.600 [0.490, 0.710] (unpaired)" in external
    assert "0.556 [0.430, 0.680] (unpaired)" in external
    for paired in ("clean", "texture", "scramble", "shape"):
        assert "(unpaired)" not in summary_line(out, paired)
    (note,) = [line for line in out.splitlines() if line.startswith("(unpaired) ")]
    assert note.startswith("(unpaired) cifar10g-silhouettes: external images, not drawn from the clean split")


def test_summary_of_paired_sets_has_no_unpaired_note() -> None:
    record = summary_record()
    paired = dataclasses.replace(record, sets={name: {"sha256": "x"} for name in record.sets})
    assert "(unpaired)" not in format_run_summary(paired)

"""One spelling per concept on the command line; the old spellings still work for one release, with one warning.

``--sets-dir`` names a set store wherever one is read or written, ``--out`` only an output folder, ``check
--baseline-csv`` the baseline CSV, ``list-recipes`` the recipes; ``list-models PATTERN`` matches parts of names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from conftest import synthetic_images

from libkd_bench.cli import build_parser
from libkd_bench.core.errors import BenchWarning
from libkd_bench.models.training.recipe import recipe_names


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    images, labels = synthetic_images(20)
    np.savez(tmp_path / "split.npz", x=images, y=labels)
    return tmp_path / "split.npz"


def generate(npz: Path, *store: str) -> list[str]:
    return ["generate-sets", "--sets", "clean", "--source", f"npz:{npz}", *store, "--no-progress", "--workers", "1"]


def test_generate_sets_out_is_a_deprecated_spelling_of_sets_dir(
    npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(generate(npz, "--sets-dir", str(tmp_path / "new")), capsys)
    assert code == 0, err
    with pytest.warns(BenchWarning, match=r"^--out is deprecated and will be removed; use --sets-dir$"):
        code, _, err = run_cli(generate(npz, "--out", str(tmp_path / "old")), capsys)
    assert code == 0, err
    assert (tmp_path / "old" / "clean").is_dir()
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == sorted(p.name for p in (tmp_path / "new").iterdir())


def test_preview_takes_sets_dir_and_png_and_still_the_old_spellings(
    npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "sets"
    assert run_cli(generate(npz, "--sets-dir", str(store)), capsys)[0] == 0
    code, out, err = run_cli(["preview", "--sets-dir", str(store), "--png", str(tmp_path / "new.png")], capsys)
    assert (code, out.strip()) == (0, f"wrote {tmp_path / 'new.png'}"), err
    with pytest.warns(BenchWarning) as caught:
        code, _, err = run_cli(["preview", str(store), "--out", str(tmp_path / "old.png")], capsys)
    assert code == 0, err
    assert sorted(str(w.message) for w in caught) == [
        "--out is deprecated and will be removed; use --png",
        "a positional SETS_DIR is deprecated and will be removed; use --sets-dir",
    ]
    assert (tmp_path / "old.png").read_bytes() == (tmp_path / "new.png").read_bytes()


def test_check_baseline_is_a_deprecated_spelling_of_baseline_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "base.csv"
    header = "model,source,set,severity,metric,value,ci_low,ci_high,n,value_label,checkpoint_sha256,suite_version"
    csv.write_text(f"{header}\nm,s,clean,,bias_ratio,0.5,0.4,0.6,100,,{'0' * 64},libkd-bench 0.1.0\n")
    code, _, err = run_cli(["check", "--baseline-csv", str(csv), "--current", str(csv)], capsys)
    assert code == 0, err
    with pytest.warns(BenchWarning, match=r"^--baseline is deprecated and will be removed; use --baseline-csv$"):
        code, _, err = run_cli(["check", "--baseline", str(csv), "--current", str(csv)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["check", "--current", str(csv)], capsys)
    assert code == 2
    assert "--baseline-csv" in err


def test_list_recipes_and_the_deprecated_train_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, new, _ = run_cli(["list-recipes"], capsys)
    assert code == 0
    assert all(name in new for name in recipe_names())
    with pytest.warns(BenchWarning, match=r"^train --list is deprecated and will be removed; use list-recipes$"):
        code, old, _ = run_cli(["train", "--list"], capsys)
    assert (code, old) == (0, new)


def test_list_models_matches_parts_of_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-models", "resnet20"], capsys)
    assert code == 0
    names = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert {"resnet20_a", "resnet20_b", "zoo:akamaster-resnet20"} <= names
    assert "resnet56_a" not in names


def test_old_spellings_are_hidden_from_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command, old in (
        ("generate-sets", "--out"),
        ("check", "--baseline "),
        ("train", "--list"),
        ("preview", "--out"),
    ):
        assert old not in subcommands[command].format_help(), command
    score_help = subcommands["score"].format_help()
    for group in ("what is scored and where:", "model loading:", "attacks, intervals and attention maps:", "executor:"):
        assert group in score_help

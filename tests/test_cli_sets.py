"""The set commands from the command line: generate-sets, list-sets, preview, and their bad-input errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import REPO, synthetic_images

import libkd_bench
from libkd_bench.cli import main
from libkd_bench.datasets_gen.registry import list_generators
from libkd_bench.datasets_gen.store import SetStore


def generate_sets(capsys: pytest.CaptureFixture[str], npz: Path, out: Path, sets: str, *extra: str) -> str:
    """Run ``generate-sets`` on an npz source without a progress bar; its stdout (the run must succeed)."""
    args = ["generate-sets", "--sets", sets, "--source", f"npz:{npz}", "--sets-dir", str(out), "--no-progress", *extra]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    return stdout


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"libkd-bench {libkd_bench.__version__}"
    assert main(["--help"]) == 0
    assert "generate-sets" in capsys.readouterr().out


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from libkd_bench.cli import build_parser; build_parser(); "
        "print(sorted({'torch', 'cv2', 'skimage'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_generate_sets_end_to_end(tmp_path: Path, synthetic_npz: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sets"
    stdout = generate_sets(capsys, synthetic_npz, out, "scramble,patch-noise", "--workers", "1", "--seed", "5")
    assert "scramble" in stdout
    assert SetStore(out).names() == ["clean", "patch-noise", "scramble"]
    stdout = generate_sets(capsys, synthetic_npz, out, "scramble", "--seed", "5")
    assert "reused" in stdout


def test_list_sets_shows_every_set_with_its_severities(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(["list-sets"], capsys)
    assert code == 0
    for name in list_generators():
        assert any(line.startswith(name + " ") for line in stdout.splitlines())
    assert "n_segments=256..16" in stdout
    assert "grid=2,4,8" in stdout
    code, stdout, _ = run_cli(["list-sets", "superpixel"], capsys)
    assert "n_segments=256,128,64,32,16" in stdout


def test_preview_draws_a_row_per_set_and_severity(
    tmp_path: Path, synthetic_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    out = tmp_path / "sets"
    generate_sets(capsys, synthetic_npz, out, "scramble")
    png = tmp_path / "grid.png"
    code, _, _ = run_cli(["preview", "--sets-dir", str(out), "--png", str(png), "--examples", "5"], capsys)
    assert code == 0
    with Image.open(png) as image:
        width, height = image.size
    assert height > width * 0.5  # 4 rows (clean + 3 scramble levels) of 5 images


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["generate-sets", "--sets", "scrambel"], ["unknown set 'scrambel'", "did you mean scramble"]),
        (["generate-sets", "--source", "npz:/does/not/exist.npz"], ["does not exist"]),
        (["generate-sets", "--source", "tfds:cifar10"], ["unknown source"]),
        (["generate-sets", "--sets", "scramble", "--param", "scramble.grid=3"], ["has no parameter 'grid'"]),
        (["generate-sets", "--workers", "0", "--source", "SOURCE"], ["--workers must be at least 1"]),
        (["generate-sets", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["preview", "--sets-dir", "/does/not/exist"], ["is not a directory"]),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], fragments: list[str], tmp_path: Path, synthetic_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.replace("SOURCE", f"npz:{synthetic_npz}") for a in args]
    if args[0] == "generate-sets" and "--sets-dir" not in args:
        args += ["--sets-dir", str(tmp_path / "sets")]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, *fragments)


def test_corrupt_source_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"garbage")
    out = tmp_path / "sets"
    code, _, err = run_cli(["generate-sets", "--source", f"npz:{corrupt}", "--sets-dir", str(out)], capsys)
    assert_one_line_error(code, err, "cannot be read")
    assert not out.exists() or list(out.iterdir()) == []


def test_non_32x32_folder_image_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    images, _ = synthetic_images(3)
    (tmp_path / "src" / "cat").mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / "src" / "cat" / f"{i}.png")
    Image.new("RGB", (33, 32)).save(tmp_path / "src" / "cat" / "odd.png")
    out = tmp_path / "sets"
    code, _, err = run_cli(["generate-sets", "--source", f"folder:{tmp_path / 'src'}", "--sets-dir", str(out)], capsys)
    assert_one_line_error(code, err, "odd.png", "33x32")
    assert SetStore(out).names() == []


def test_unwritable_output_dir(tmp_path: Path, synthetic_npz: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(
        ["generate-sets", "--source", f"npz:{synthetic_npz}", "--sets-dir", str(blocker / "sets")], capsys
    )
    assert_one_line_error(code, err, "cannot create output directory", "choose a writable location")
    assert blocker.read_text() == "not a directory"


def test_generated_arrays_match_direct_generator_calls(
    tmp_path: Path, synthetic_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the CLI stores is what the generator returns for the same seeds (no hidden reordering)."""
    from libkd_bench.datasets_gen.registry import Batch, get_generator
    from libkd_bench.datasets_gen.seeding import SetSeed

    generate_sets(capsys, synthetic_npz, tmp_path, "scramble", "--seed", "8")
    with np.load(synthetic_npz) as data:
        images, labels = data["x"], data["y"]
    batch = Batch(images, labels, np.arange(len(images)), 2, SetSeed(8, "scramble"))
    expected = get_generator("scramble").fn(batch, 4).images
    np.testing.assert_array_equal(SetStore(tmp_path).load("scramble").images[1], expected)

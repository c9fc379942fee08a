"""``libkd-bench validate``: bad input (missing store, missing set, too small a store, missing model) fails in
seconds with one line; on a small real store every mutant is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED_CHECKPOINTS, SHARED_TEST_NPZ, synthetic_images

from libkd_bench.datasets_gen.build import build_sets, plan_sets
from libkd_bench.datasets_gen.mutants import MUTANTS, build_mutant_store
from libkd_bench.datasets_gen.registry import default_set_names
from libkd_bench.datasets_gen.sources import SourceInfo, SourceKind, Split, split_sha256
from libkd_bench.datasets_gen.store import SetStore

MUTANT_STORE_IMAGES = 500  # the segmentation gate keeps about a third to two thirds of the images


@pytest.fixture
def zoo_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    if not SHARED_CHECKPOINTS.is_dir():
        pytest.skip(f"shared checkpoints not found at {SHARED_CHECKPOINTS}")
    monkeypatch.setenv("LIBKD_BENCH_ZOO_DIR", str(SHARED_CHECKPOINTS))


def small_store(root: Path, n: int, sets: list[str]) -> SetStore:
    images, labels = synthetic_images(n)
    split = Split(images, labels, SourceInfo(SourceKind.NPZ, "memory", split_sha256(images, labels), n))
    store = SetStore(root)
    plans = plan_sets(sets or default_set_names(), 0, {"segmentation": {"gate": False}})
    build_sets(plans, split, store, progress=False)
    return store


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every default set of 50 synthetic images (a few seconds: the segmentation gate is off)."""
    root = tmp_path_factory.mktemp("tiny") / "sets"
    small_store(root, 50, [])
    return root


def test_a_missing_store_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["validate", "--sets-dir", str(tmp_path / "nowhere")], capsys)
    assert_one_line_error(code, err, "does not exist", "generate-sets")


def test_a_store_missing_a_set_is_bad_input(
    tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "sets"
    shutil.copytree(tiny_store, copy)
    shutil.rmtree(copy / "shape-edges")
    code, _, err = run_cli(["validate", "--sets-dir", str(copy), "--results", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "shape-edges", "missing", "generate-sets")


def test_a_fifty_image_store_is_refused_with_the_number_needed(
    tiny_store: Path, tmp_path: Path, zoo_mirror: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["validate", "--sets-dir", str(tiny_store), "--results", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "has 50 images", "at least 97", "--limit 100")
    assert not (tmp_path / "r").exists()  # refused before any model was loaded or any pass run


def test_a_missing_model_fails_before_any_forward_pass(
    tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIBKD_BENCH_ZOO_DIR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("LIBKD_BENCH_ZOO_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("libkd_bench.models.zoo.DOWNLOAD_TIMEOUT_S", 0.01)
    code, _, err = run_cli(["validate", "--sets-dir", str(tiny_store), "--results", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "zoo:akamaster-resnet20")
    assert not (tmp_path / "r" / "cache").exists()


def test_an_unknown_mutant_is_bad_input(tiny_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["validate", "--sets-dir", str(tiny_store), "--mutants", "unframd"], capsys)
    assert_one_line_error(code, err, "mutant", "unframed")


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_changes_its_set_and_nothing_else(tiny_store: Path, tmp_path: Path, mutant: object) -> None:
    real = SetStore(tiny_store)
    mutated = build_mutant_store(mutant, real, tmp_path / "m")  # type: ignore[arg-type]
    name = mutant.set  # type: ignore[attr-defined]
    a, b = real.load(name), mutated.load(name)
    assert not (np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels))
    for other in real.names():
        assert (mutated.path(other)).exists()
        if (mutated.path(other)).is_symlink():
            assert mutated.manifest(other) == real.manifest(other)
    assert sorted(p.name for p in tiny_store.iterdir()) == sorted(real.names())  # the real store is untouched


def test_outlined_texture_is_the_real_texture_inside_the_object_mask_and_black_outside(
    tiny_store: Path, tmp_path: Path
) -> None:
    """The mutant changes how a texture is shown, not the texture: inside the object's mask its pixels are the
    real set's, byte for byte (same seeds); everywhere else they are black, so the mask's outline is drawn."""
    real = SetStore(tiny_store)
    mutant = next(m for m in MUTANTS if m.name == "outlined-texture")
    outlined = build_mutant_store(mutant, real, tmp_path / "m").load("texture").images[0]
    texture = real.load("texture")
    textures = texture.images[0]
    masks = real.load("segmentation").arrays["masks"][np.asarray(texture.arrays["source_index"])]
    assert outlined.shape == textures.shape
    assert np.array_equal(outlined[masks], textures[masks])
    assert not outlined[~masks].any()
    assert 0 < masks.mean() < 1


def test_an_unchanged_rebuild_reproduces_the_real_set_byte_for_byte(tiny_store: Path, tmp_path: Path) -> None:
    from libkd_bench.datasets_gen.mutants import Mutant

    real = SetStore(tiny_store)
    for name in ("shape", "cue-conflict", "scramble"):
        copy = build_mutant_store(Mutant("none", name, "no change"), real, tmp_path / name).load(name)
        original = real.load(name)
        for array in original.arrays:
            assert np.array_equal(copy.arrays[array], original.arrays[array]), (name, array)


@pytest.mark.slow
@pytest.mark.shared
def test_every_mutant_is_caught_on_a_small_real_store(
    tmp_path_factory: pytest.TempPathFactory, zoo_mirror: None, capsys: pytest.CaptureFixture[str]
) -> None:
    if not SHARED_TEST_NPZ.is_file():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_TEST_NPZ}")
    root = tmp_path_factory.mktemp("real")
    sets = root / "sets"
    args = ["generate-sets", "--source", f"npz:{SHARED_TEST_NPZ}", "--limit", str(MUTANT_STORE_IMAGES)]
    assert run_cli([*args, "--sets-dir", str(sets), "--workers", "2", "--no-progress"], capsys)[0] == 0
    validate = ["validate", "--sets-dir", str(sets), "--results", str(root / "r"), "--no-progress", "--json"]
    code, out, err = run_cli([*validate, "--mutants"], capsys)
    assert code in (0, 1), err
    report = json.loads(out)
    escaped = [m["mutant"] for m in report["mutants"] if not m["caught"]]
    assert not escaped
    assert {m["mutant"] for m in report["mutants"]} == {m.name for m in MUTANTS}
    failed = [j["check"] for j in report["judgements"] if j["verdict"] != "pass"]
    assert code == (0 if not failed else 1)

"""The sanity pass before scoring: a model given the wrong normalisation is stopped with one line.

Known answer: akamaster's ResNet-20 (trained with ImageNet mean/std) classifies 73.0% of the first 256 images of
the shared JPEG CIFAR-10 test set with its own preset, 73.8% with cifar10-kuangliu, and 17.2% without
normalisation (measured here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import RESNET20, SHARED_TEST_NPZ

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.models.loading.cli_args import add_model_arguments, overrides_from_args
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.spec import ModelSpec, SpecOverrides, parse_normalisation
from libkd_bench.scoring.preprocessing_check import (
    CHECK_IMAGES,
    PreprocessingCheck,
    candidate_normalisations,
    check_preprocessing,
    require_plausible_preprocessing,
)

needs_shared = pytest.mark.skipif(
    not (RESNET20.is_file() and SHARED_TEST_NPZ.is_file()),
    reason="akamaster ResNet-20 or the shared CIFAR-10 copy not found",
)


def check(chosen: float, **others: float) -> PreprocessingCheck:
    return PreprocessingCheck("none", {"none": chosen, **others}, 256, 10)


def test_a_clearly_better_preset_is_a_problem_naming_both_figures_and_the_flag() -> None:
    problem = check(0.172, imagenet=0.730, cifar10=0.707).problem()
    assert problem is not None
    assert "17.2% on the first 256 clean images with normalisation none" in problem
    assert "73.0% with preset imagenet" in problem
    assert "--preprocess imagenet" in problem
    assert "--skip-preprocess-check" in problem


@pytest.mark.parametrize(
    ("chosen", "other"),
    [
        (0.70, 0.79),  # 9 points better: within the margin
        (0.10, 0.25),  # 15 points better but under three times chance: two near-random figures
        (0.80, 0.60),  # the chosen one is the best
    ],
)
def test_small_gaps_and_near_random_figures_are_no_problem(chosen: float, other: float) -> None:
    assert check(chosen, imagenet=other).problem() is None


def test_candidates_skip_presets_with_the_chosen_statistics() -> None:
    mean, std = PRESET_STATS[Preset.CIFAR10]
    candidates = candidate_normalisations(ModelSpec("x", 10, mean=mean, std=std, preset=Preset.CIFAR10))
    assert next(iter(candidates)) == "cifar10"
    assert "cifar10-huyvnphan" not in candidates  # std differs by 1e-4: it would score the same
    assert {"cifar10-kuangliu", "cifar100", "imagenet", "none"} <= set(candidates)
    explicit = candidate_normalisations(ModelSpec("x", 10, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))
    assert next(iter(explicit)) == "mean=0.5,0.5,0.5,std=0.25,0.25,0.25"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("imagenet", (Preset.IMAGENET, None, None)),
        ("cifar10-kuangliu", (Preset.CIFAR10_KUANGLIU, None, None)),
        ("0.5,0.5,0.5,0.25,0.25,0.25", (None, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))),
        ("0.5,0.4,0.3/0.2,0.2,0.2", (None, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))),
    ],
)
def test_preprocess_flag_takes_a_preset_or_mean_and_std(text: str, expected: tuple) -> None:
    assert parse_normalisation(text) == expected


def test_bad_preprocess_values_fail_clearly() -> None:
    with pytest.raises(BenchError, match=r"neither a preset .* nor six numbers"):
        parse_normalisation("cifar1000")
    with pytest.raises(BenchError, match="std must be positive"):
        ModelSpec("x", 10, *parse_normalisation("0,0,0,0,1,1")[1:])
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    with pytest.raises(BenchError, match="give --preprocess or --preset/--mean/--std, not both"):
        overrides_from_args(parser.parse_args(["--preprocess", "imagenet", "--preset", "cifar10"]))
    assert overrides_from_args(parser.parse_args(["--preprocess", "none"])).preset is Preset.NONE


def first_clean_images() -> tuple[np.ndarray, np.ndarray]:
    with np.load(SHARED_TEST_NPZ) as data:
        return data["x"][:CHECK_IMAGES], data["y"][:CHECK_IMAGES]


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
def test_zoo_resnet20_under_a_wrong_preset_is_caught_and_under_its_own_is_not() -> None:
    images, labels = first_clean_images()
    wrong = load_model(RESNET20, overrides=SpecOverrides(preset="none"))
    right = load_model(RESNET20)

    found = check_preprocessing(wrong, images, labels)
    assert found is not None
    assert found.accuracies["none"] == pytest.approx(0.172, abs=0.005)
    assert found.accuracies["imagenet"] == pytest.approx(0.730, abs=0.005)
    with pytest.raises(BenchError, match=r"17\.2% .* with normalisation none but 73\.8% with preset cifar10-kuangliu"):
        require_plausible_preprocessing(wrong, images, labels)
    assert require_plausible_preprocessing(right, images, labels).problem() is None  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
def test_score_stops_before_scoring_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets, results = tmp_path / "sets", tmp_path / "results"
    generate = ["generate-sets", "--source", f"npz:{SHARED_TEST_NPZ}", "--sets-dir", str(sets), "--limit", "300"]
    assert run_cli([*generate, "--sets", "scramble", "--workers", "1", "--no-progress"], capsys)[0] == 0
    score = ["score", str(RESNET20), "--sets-dir", str(sets), "--results", str(results), "--adv", "none"]
    score += ["--no-attention", "--no-progress", "--device", "cpu"]

    code, _, err = run_cli([*score, "--preprocess", "none"], capsys)

    assert_one_line_error(code, err, "with normalisation none but", "--preprocess ", "--skip-preprocess-check")
    assert not list(results.glob("runs/*.json"))
    code, _, err = run_cli([*score, "--preprocess", "none", "--skip-preprocess-check"], capsys)
    assert code == 0, err
    assert len(list(results.glob("runs/*.json"))) == 1

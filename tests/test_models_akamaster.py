"""The real akamaster CIFAR-10 ResNets from ../shared: detected, identified, and as accurate as they should be.

Known answers on the lossy JPEG copy of the CIFAR-10 test set with ImageNet normalisation: ResNet-20 81.0% and
ResNet-32 82.6% (+- 0.1) on all 10,000 images. ResNet-44 and ResNet-56 score 82.67% and 83.20% on all of them
(measured here); the suite checks them on every tenth image (100 per class) against the counts measured on
that subset, 793 and 838, within five images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CHECKPOINTS, SHARED_TEST_NPZ

from libkd_bench.cli import main
from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.models.loading.load import LoadedModel, load_model
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

# depth: (file, parameters as counted by akamaster's test(), best_prec1 stored in the file)
AKAMASTER = {
    20: ("resnet20-12fca82f.th", 269_722, 91.78),
    32: ("resnet32-d509ac18.th", 464_154, 92.78),
    44: ("resnet44-014dd654.th", 658_586, 93.14),
    56: ("resnet56-4bfd9763.th", 853_018, 93.62),
}

pytestmark = pytest.mark.shared


def checkpoint(depth: int) -> Path:
    path = SHARED_CHECKPOINTS / AKAMASTER[depth][0]
    if not path.is_file():
        pytest.skip(f"shared checkpoint not found at {path}")
    return path


def accuracy_counts(loaded: LoadedModel, step: int) -> tuple[int, int]:
    """(correct, total) on every ``step``-th image of the shared test split, through the scoring engine."""
    if not SHARED_TEST_NPZ.is_file():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_TEST_NPZ}")
    with np.load(SHARED_TEST_NPZ) as data:
        images, labels = data["x"][::step], data["y"][::step]
    logits = ForwardEngine(loaded.module, EngineConfig("cpu", batch_size=200)).logits(images)
    return int((logits.argmax(1) == labels).sum()), len(labels)


@pytest.mark.parametrize("depth", sorted(AKAMASTER))
def test_loads_with_the_architecture_detected(depth: int) -> None:
    _, parameters, best_prec1 = AKAMASTER[depth]
    loaded = load_model(checkpoint(depth))
    assert (loaded.spec.arch, loaded.arch_detected, loaded.num_parameters) == (f"resnet{depth}_a", True, parameters)
    assert loaded.spec.preset is Preset.IMAGENET  # akamaster trained with ImageNet mean/std
    info = loaded.checkpoint
    assert (info.format, info.location, info.stripped_prefix) == ("torch-legacy", "state_dict", "module.")
    assert info.metadata["best_prec1"] == pytest.approx(best_prec1, abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("depth", "percent"), [(20, 81.0), (32, 82.6)])
def test_accuracy_on_the_whole_test_split(depth: int, percent: float) -> None:
    mean, std = PRESET_STATS[Preset.IMAGENET]
    from libkd_bench.models.spec import ModelSpec

    spec = ModelSpec(f"resnet{depth}_a", 10, mean=mean, std=std, preset=Preset.IMAGENET)
    correct, total = accuracy_counts(load_model(checkpoint(depth), spec=spec), step=1)
    assert total == 10_000
    assert 100 * correct / total == pytest.approx(percent, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize(("depth", "correct"), [(44, 793), (56, 838)])
def test_accuracy_on_a_class_balanced_tenth(depth: int, correct: int) -> None:
    found, total = accuracy_counts(load_model(checkpoint(depth)), step=10)
    assert total == 1_000
    assert abs(found - correct) <= 5


def test_inspect_shows_what_the_file_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(checkpoint(20))]) == 0
    fields = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert fields["format"] == "torch-legacy"
    assert fields["weights"] == "under 'state_dict', prefix 'module.' removed"
    assert fields["parameters"] == "269,722"
    assert fields["architecture"] == "resnet20_a, 10 classes (detected)"
    assert fields["input"] == "preset imagenet; 32x32 (bilinear resize)"
    assert float(fields["metadata.best_prec1"]) == pytest.approx(91.78, abs=1e-4)


def test_inspect_a_zoo_name_through_the_mirror(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIBKD_BENCH_ZOO_DIR", str(checkpoint(56).parent))
    assert main(["inspect", "zoo:akamaster-resnet56", "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert (report["architecture"], report["num_parameters"]) == ("resnet56_a", 853_018)
    assert report["spec"]["preset"] == "imagenet"
    assert report["checkpoint"]["zoo"] == "akamaster-resnet56"

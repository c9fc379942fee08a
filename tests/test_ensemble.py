"""Teacher ensembles scored as one model: the combination rules, identity, errors and the real CLI path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import RESNET20, RESNET32, SHARED_CHECKPOINTS, SHARED_TEST_NPZ
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import Preset
from libkd_bench.models.ensemble import Combine, EnsembleClassifier, ensemble_model
from libkd_bench.models.loading.checkpoints import CheckpointInfo
from libkd_bench.models.loading.load import LoadedModel
from libkd_bench.models.spec import ModelSpec
from libkd_bench.records.run_record import RunRecord, read_record
from libkd_bench.scoring.logits_cache import KEY_DIGITS


class FixedLogits(nn.Module):
    """Returns ``table[i]`` for an image whose first pixel is ``i / 255``."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.table[(images[:, 0, 0, 0] * 255).round().long()]


def member(table: torch.Tensor, sha: str, arch: str = "resnet20_a", preset: Preset = Preset.CIFAR10) -> LoadedModel:
    from libkd_bench.core.normalisation import PRESET_STATS

    mean, std = PRESET_STATS[preset]
    spec = ModelSpec(arch=arch, num_classes=table.shape[1], mean=mean, std=std, preset=preset)
    info = CheckpointInfo(path=f"{sha}.pt", sha256=sha * 64, format="torch-zip", size_bytes=10)
    return LoadedModel(FixedLogits(table), spec, info, num_parameters=7, arch_detected=True)


def images(n: int) -> torch.Tensor:
    x = torch.zeros(n, 3, 32, 32)
    x[:, 0, 0, 0] = torch.arange(n) / 255
    return x


def test_mean_logits_is_the_mean_and_mean_probs_averages_softmax() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(6, 10, generator=generator) * 3 for _ in range(3))
    members = [FixedLogits(t) for t in (a, b, c)]
    x = images(6)
    torch.testing.assert_close(EnsembleClassifier(members, Combine.MEAN_LOGITS)(x), (a + b + c) / 3)
    mixed = EnsembleClassifier(members, Combine.MEAN_PROBS)(x)
    expected = (a.softmax(-1) + b.softmax(-1) + c.softmax(-1)) / 3
    torch.testing.assert_close(mixed.softmax(-1), expected)
    torch.testing.assert_close(mixed.exp().sum(-1), torch.ones(6))  # already log-probabilities


def test_the_two_rules_can_disagree_on_the_prediction() -> None:
    # member a: confident in class 0; member b: mildly prefers class 1 twice over
    a = torch.tensor([[10.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 6.0, 0.0]])
    members = [FixedLogits(a), FixedLogits(b)]
    assert EnsembleClassifier(members, Combine.MEAN_LOGITS)(images(1)).argmax().item() == 0  # 5 vs 3
    three = [FixedLogits(a), FixedLogits(b), FixedLogits(b)]
    assert EnsembleClassifier(three, Combine.MEAN_PROBS)(images(1)).argmax().item() == 1  # 0.33 vs 0.66


def test_identity_covers_members_order_specs_and_rule() -> None:
    table = torch.zeros(4, 10)
    a, b = member(table, "a"), member(table, "b")
    base = ensemble_model([a, b])
    assert base.checkpoint.sha256 == ensemble_model([member(table, "a"), member(table, "b")]).checkpoint.sha256
    others = [
        ensemble_model([b, a]),
        ensemble_model([a, b], "mean-probs"),
        ensemble_model([a, member(table, "b", preset=Preset.IMAGENET)]),
    ]
    assert len({base.checkpoint.sha256, *(o.checkpoint.sha256 for o in others)}) == 4
    assert base.spec.arch == "resnet20_a+resnet20_a"
    assert base.num_parameters == 14
    assert [m["checkpoint"]["sha256"] for m in base.checkpoint.metadata["members"]] == ["a" * 64, "b" * 64]


def test_bad_ensembles_are_one_line_errors() -> None:
    with pytest.raises(BenchError, match="at least two checkpoints"):
        ensemble_model([member(torch.zeros(2, 10), "a")])
    with pytest.raises(BenchError, match="disagree on the number of classes"):
        ensemble_model([member(torch.zeros(2, 10), "a"), member(torch.zeros(2, 100), "b")])
    with pytest.raises(BenchError, match="unknown ensemble combination 'vote'"):
        ensemble_model([member(torch.zeros(2, 10), "a"), member(torch.zeros(2, 10), "b")], "vote")


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean + scramble of a class-balanced 300-image subset of the shared JPEG test set."""
    if not (SHARED_TEST_NPZ.is_file() and RESNET20.is_file() and RESNET32.is_file()):
        pytest.skip(f"shared CIFAR-10 copy or akamaster checkpoints not found under {SHARED_CHECKPOINTS.parents[1]}")
    from libkd_bench.cli import main

    out = tmp_path_factory.mktemp("ensemble") / "sets"
    args = ["generate-sets", "--source", f"npz:{SHARED_TEST_NPZ}", "--limit", "300", "--sets", "scramble"]
    assert main([*args, "--sets-dir", str(out), "--workers", "1", "--no-progress"]) == 0
    return out


def clean_logits(results: Path, record: RunRecord) -> np.ndarray:
    sha = record.sets["clean"]["sha256"]
    return np.load(results / record.logits / f"{sha[:KEY_DIGITS]}.npy")


@pytest.mark.slow
def test_score_ensemble_of_real_resnets_averages_member_logits_and_serves_as_teacher(
    real_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--sets-dir", str(real_store), "--results", str(tmp_path), "--adv", "none", "--no-progress"]
    code, _, err = run_cli(["score", str(RESNET20), str(RESNET32), "--name", "r20", "--name", "r32", *common], capsys)
    assert code == 0, err
    ensemble_args = ["score", "--ensemble", str(RESNET20), str(RESNET32), "--name", "teacher", *common]
    code, _, err = run_cli(ensemble_args, capsys)
    assert code == 0, err
    runs = {name: read_record(next((tmp_path / "runs").glob(f"{name}@*.json"))) for name in ("r20", "r32", "teacher")}
    teacher = runs["teacher"]
    expected = (clean_logits(tmp_path, runs["r20"]) + clean_logits(tmp_path, runs["r32"])) / 2
    np.testing.assert_allclose(clean_logits(tmp_path, teacher), expected, atol=1e-4)
    labels = np.load(real_store / "clean" / "labels.npy")
    accuracy = teacher.metric("clean", "accuracy")
    assert accuracy is not None
    assert accuracy.value == pytest.approx(float((expected[0].argmax(-1) == labels).mean()))
    assert teacher.spec["arch"] == "resnet20_a+resnet32_a"
    assert teacher.checkpoint["format"] == "ensemble"
    members = runs["r20"].efficiency["params"] + runs["r32"].efficiency["params"]
    assert teacher.efficiency["params"] == members

    code, _, err = run_cli(["score", str(RESNET20), "--name", "student", "--teacher", "teacher", *common], capsys)
    assert code == 0, err
    student = read_record(next((tmp_path / "runs").glob("student@*.json")))
    kappa = student.metric("clean", "error_consistency")
    assert kappa is not None
    assert 0 < kappa.value <= 1


def test_ensemble_cli_errors(real_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--sets-dir", str(real_store), "--results", str(tmp_path), "--adv", "none", "--no-progress"]
    code, _, err = run_cli(["score", "--ensemble", str(RESNET20), *common], capsys)
    assert_one_line_error(code, err, "at least two checkpoints")
    code, _, err = run_cli(
        ["score", "--ensemble", str(RESNET20), str(RESNET32), "--name", "a", "--name", "b", *common], capsys
    )
    assert_one_line_error(code, err, "one --name")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.json"))

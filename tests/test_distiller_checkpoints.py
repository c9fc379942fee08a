"""Distillers' training checkpoints: a student and a teacher (and connector modules) in one file.

mdistiller's trainer saves ``{"model": distiller.state_dict(), "optimizer": ..., "epoch": ..., "best_acc": ...}``
from a ``DataParallel`` distiller, to a file without extension: keys ``module.student.*``,
``module.teacher.*`` and, for FitNet, ``module.conv_reg.*``. The student is loaded by default and ``--part
teacher`` picks the other; a file holding the two networks under ``student`` and ``teacher`` keys reads the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import synthetic_images

from libkd_bench.core.errors import BenchError
from libkd_bench.models.checkpoint_contents import KD_PARTS
from libkd_bench.models.cli_args import KD_PARTS as CLI_PARTS
from libkd_bench.models.loading import load_model
from libkd_bench.models.registry import create_architecture


def networks() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    return create_architecture("resnet8_b").eval(), create_architecture("resnet20_b").eval()


def mdistiller_checkpoint(path: Path) -> Path:
    """A FitNet run's ``latest`` file: DataParallel distiller with student, teacher and a ``conv_reg`` connector."""
    student, teacher = networks()
    weights = {f"module.student.{k}": v for k, v in student.state_dict().items()}
    weights |= {f"module.teacher.{k}": v for k, v in teacher.state_dict().items()}
    weights |= {"module.conv_reg.weight": torch.zeros(64, 16, 1, 1), "module.conv_reg.bias": torch.zeros(64)}
    state = {"epoch": 240, "model": weights, "optimizer": {"state": {}, "param_groups": []}, "best_acc": 71.4}
    torch.save(state, path)
    return path


def test_the_student_is_loaded_by_default_and_the_rest_is_dropped(tmp_path: Path) -> None:
    loaded = load_model(mdistiller_checkpoint(tmp_path / "latest"))

    info = loaded.checkpoint
    assert (loaded.spec.arch, loaded.arch_detected) == ("resnet8_b", True)
    assert (info.location, info.stripped_prefix, info.part, info.other_parts) == (
        "model",
        "module.student.",
        "student",
        ("conv_reg", "teacher"),
    )
    assert (info.metadata["epoch"], info.metadata["best_acc"]) == (240, 71.4)
    assert info.to_json()["part"] == "student"
    student, _ = networks()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = student((images - loaded.module.mean) / loaded.module.std)
        torch.testing.assert_close(loaded.module(images), expected)


def test_part_teacher_picks_the_teacher(tmp_path: Path) -> None:
    loaded = load_model(mdistiller_checkpoint(tmp_path / "latest"), part="teacher")

    assert (loaded.spec.arch, loaded.checkpoint.part, loaded.checkpoint.stripped_prefix) == (
        "resnet20_b",
        "teacher",
        "module.teacher.",
    )


def test_networks_side_by_side_under_student_and_teacher_keys(tmp_path: Path) -> None:
    student, teacher = networks()
    path = tmp_path / "kd.pth"
    torch.save({"student": student.state_dict(), "teacher": teacher.state_dict(), "epoch": 3}, path)

    default, other = load_model(path), load_model(path, part="teacher")

    assert (default.spec.arch, default.checkpoint.part, default.checkpoint.other_parts) == (
        "resnet8_b",
        "student",
        ("teacher",),
    )
    assert (other.spec.arch, other.checkpoint.location) == ("resnet20_b", "teacher")


def test_a_single_network_is_its_own_student_and_has_no_teacher(tmp_path: Path) -> None:
    student, _ = networks()
    path = tmp_path / "student.pth"
    torch.save({"model": student.state_dict(), "epoch": 240}, path)  # RepDistiller's train_student.py

    loaded = load_model(path, part="student")
    assert (loaded.spec.arch, loaded.checkpoint.part) == ("resnet8_b", "")
    assert "part" not in loaded.checkpoint.to_json()  # records of single networks are unchanged
    with pytest.raises(BenchError, match="holds one network, not a student and a teacher; drop --part"):
        load_model(path, part="teacher")


def test_inspect_names_the_part_it_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = mdistiller_checkpoint(tmp_path / "latest")

    code, out, _ = run_cli(["inspect", str(path)], capsys)

    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["part"] == "student (scored; dropped: conv_reg, teacher); --part teacher for the teacher"
    assert fields["architecture"] == "resnet8_b, 10 classes (detected)"
    assert fields["weights"] == "under 'model', prefix 'module.student.' removed"

    code, out, _ = run_cli(["inspect", str(path), "--part", "teacher", "--json"], capsys)
    assert code == 0
    assert '"architecture": "resnet20_b"' in out
    assert '"part": "teacher"' in out


def test_part_teacher_of_a_single_network_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.pt"
    torch.save(networks()[0].state_dict(), path)

    code, _, err = run_cli(["inspect", str(path), "--part", "teacher"], capsys)

    assert_one_line_error(code, err, "--part teacher", "holds one network", "drop --part")


def test_score_says_which_part_it_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = synthetic_images(40)
    np.savez(tmp_path / "split.npz", x=images, y=labels)
    sets = tmp_path / "sets"
    generate = ["generate-sets", "--source", f"npz:{tmp_path / 'split.npz'}", "--out", str(sets), "--sets", "scramble"]
    assert run_cli([*generate, "--workers", "1", "--no-progress"], capsys)[0] == 0
    path = mdistiller_checkpoint(tmp_path / "latest")
    score = ["score", str(path), "--sets-dir", str(sets), "--results", str(tmp_path / "results"), "--adv", "none"]

    code, _, err = run_cli([*score, "--no-attention", "--no-progress", "--device", "cpu"], capsys)

    assert code == 0, err
    assert f"note: {path} holds a student and a teacher; scoring the student (--part teacher for the other)" in err


def test_command_line_and_loader_know_the_same_parts() -> None:
    assert CLI_PARTS == KD_PARTS

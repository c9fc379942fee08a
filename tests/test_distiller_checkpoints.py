"""Distillers' training checkpoints: a student and a teacher (and connector modules) in one file.

mdistiller's trainer saves ``{"model": distiller.state_dict(), "optimizer": ..., "epoch": ..., "best_acc": ...}``
from a ``DataParallel`` distiller, to a file without extension: keys ``module.student.*``,
``module.teacher.*`` and, for FitNet, ``module.conv_reg.*``. The student is loaded by default and ``--part
teacher`` picks the other; a file holding the two networks under ``student`` and ``teacher`` keys reads the same.

RepDistiller (``train_student.py`` at commit b84f547c5db6a35318d4671d7d5c4de74c822403) and torchdistill
(``torchdistill/common/main_util.py`` ``save_ckpt`` at commit 3e4373c45214c5c56eebac481d5bfe8b8735aa05, and
v0.3.3) save the student alone, never with a ``module.`` prefix; their files are written below key for key.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import synthetic_images

from libkd_bench.core.errors import BenchError
from libkd_bench.models.loading.cli_args import KD_PARTS as CLI_PARTS
from libkd_bench.models.loading.contents import KD_PARTS
from libkd_bench.models.loading.load import load_model
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


def scramble_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A set store with the clean and scramble sets of 40 synthetic images."""
    images, labels = synthetic_images(40)
    np.savez(tmp_path / "split.npz", x=images, y=labels)
    sets = tmp_path / "sets"
    generate = ["generate-sets", "--source", f"npz:{tmp_path / 'split.npz'}", "--sets-dir", str(sets)]
    assert run_cli([*generate, "--sets", "scramble", "--workers", "1", "--no-progress"], capsys)[0] == 0
    return sets


def test_score_says_which_part_it_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = scramble_sets(tmp_path, capsys)
    path = mdistiller_checkpoint(tmp_path / "latest")
    score = ["score", str(path), "--sets-dir", str(sets), "--results", str(tmp_path / "results"), "--adv", "none"]

    code, _, err = run_cli([*score, "--no-attention", "--no-progress", "--device", "cpu"], capsys)

    assert code == 0, err
    assert f"note: {path} holds a student and a teacher; scoring the student (--part teacher for the other)" in err


def test_command_line_and_loader_know_the_same_parts() -> None:
    assert CLI_PARTS == KD_PARTS


def repdistiller_options(model_s: str) -> argparse.Namespace:
    """The ``opt`` of ``train_student.py``'s ``parse_option()`` (defaults of a KD run), as its last file keeps it."""
    name = f"S:{model_s}_T:resnet32x4_cifar100_kd_r:0.1_a:0.9_b:0.0_1"
    return argparse.Namespace(
        print_freq=100,
        tb_freq=500,
        save_freq=40,
        batch_size=64,
        num_workers=8,
        epochs=240,
        init_epochs=30,
        learning_rate=0.05,
        lr_decay_epochs=[150, 180, 210],
        lr_decay_rate=0.1,
        weight_decay=5e-4,
        momentum=0.9,
        dataset="cifar100",
        model_s=model_s,
        path_t="./save/models/resnet32x4_vanilla/ckpt_epoch_240.pth",
        distill="kd",
        trial="1",
        gamma=0.1,
        alpha=0.9,
        beta=0.0,
        kd_T=4,
        feat_dim=128,
        mode="exact",
        nce_k=16384,
        nce_t=0.07,
        nce_m=0.5,
        hint_layer=2,
        model_t="resnet32x4",
        model_path="./save/student_model",
        tb_path="./save/student_tensorboards",
        model_name=name,
        tb_folder=f"./save/student_tensorboards/{name}",
        save_folder=f"./save/student_model/{name}",
    )


def trained_optimizer(network: torch.nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD and MultiStepLR after one step, so their state dicts hold momentum buffers and a milestone Counter."""
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[91, 136], gamma=0.1)
    network.train()
    network(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    network.eval()
    return optimizer, scheduler


def repdistiller_best(student: torch.nn.Module, folder: Path) -> Path:
    """``{model_s}_best.pth``: ``best_acc`` is the 0-d tensor ``validate()`` returns (``top1.avg``)."""
    path = folder / "resnet8x4_best.pth"
    torch.save({"epoch": 231, "model": student.state_dict(), "best_acc": torch.tensor(73.09)}, path)
    return path


def repdistiller_epoch(student: torch.nn.Module, folder: Path) -> Path:
    """``ckpt_epoch_{epoch}.pth``, every ``save_freq`` epochs."""
    path = folder / "ckpt_epoch_240.pth"
    torch.save({"epoch": 240, "model": student.state_dict(), "accuracy": torch.tensor(72.88)}, path)
    return path


def repdistiller_last(student: torch.nn.Module, folder: Path) -> Path:
    """``{model_s}_last.pth``: the run's options and the student, the file its README's results come from."""
    path = folder / "resnet8x4_last.pth"
    torch.save({"opt": repdistiller_options("resnet8x4"), "model": student.state_dict()}, path)
    return path


def torchdistill_args() -> argparse.Namespace:
    """The parsed arguments of torchdistill's ``examples/torchvision/image_classification.py``."""
    return argparse.Namespace(
        config="configs/sample/cifar10/kd/resnet20_from_densenet_bc_k12_depth100.yaml",
        device="cuda",
        run_log=None,
        start_epoch=0,
        seed=None,
        test_only=False,
        student_only=False,
        log_config=False,
        world_size=1,
        local_rank=-1,
        dist_url="env://",
        adjust_lr=False,
    )


def torchdistill_ckpt(student: torch.nn.Module, folder: Path) -> Path:
    """``save_ckpt``: the student unwrapped from DataParallel/DDP under ``model``, beside the training state."""
    optimizer, scheduler = trained_optimizer(student)
    path = folder / "cifar10-resnet20_from_densenet_bc_k12_depth100.pt"
    state = {
        "model": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_value": 0.9127,
        "lr_scheduler": scheduler.state_dict(),
        "args": torchdistill_args(),
    }
    torch.save(state, path)
    return path


def torchdistill_v0_ckpt(student: torch.nn.Module, folder: Path) -> Path:
    """torchdistill 0.x ``save_ckpt``: the same and the run's YAML ``config`` as nested dicts."""
    optimizer, scheduler = trained_optimizer(student)
    path = folder / "cifar10-resnet20-v0.pt"
    config = {
        "datasets": {"cifar10": {"name": "cifar10", "type": "CIFAR10", "root": "~/dataset/cifar10"}},
        "models": {"student_model": {"name": "resnet20", "params": {"num_classes": 10, "pretrained": False}}},
        "train": {"num_epochs": 182, "optimizer": {"type": "SGD", "params": {"lr": 0.1, "momentum": 0.9}}},
    }
    state = {
        "model": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_value": 0.9127,
        "lr_scheduler": scheduler.state_dict(),
        "config": config,
        "args": torchdistill_args(),
    }
    torch.save(state, path)
    return path


# layout -> (student architecture, writer, metadata the loader must keep, entries it must set aside)
DISTILLER_LAYOUTS: dict[str, tuple[str, Callable[[torch.nn.Module, Path], Path], dict, set[str]]] = {
    "repdistiller-best": ("resnet8x4", repdistiller_best, {"epoch": 231, "best_acc": pytest.approx(73.09)}, set()),
    "repdistiller-epoch": ("resnet8x4", repdistiller_epoch, {"epoch": 240, "accuracy": pytest.approx(72.88)}, set()),
    "repdistiller-last": ("resnet8x4", repdistiller_last, {}, set()),
    "torchdistill": ("resnet20_b", torchdistill_ckpt, {"best_value": 0.9127}, {"optimizer"}),
    "torchdistill-v0": ("resnet20_b", torchdistill_v0_ckpt, {"best_value": 0.9127}, {"optimizer"}),
}


def distiller_student(layout: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_architecture(DISTILLER_LAYOUTS[layout][0]).eval()


@pytest.mark.parametrize("layout", DISTILLER_LAYOUTS)
def test_distiller_student_files_load_as_saved(layout: str, tmp_path: Path) -> None:
    arch, write, metadata, others = DISTILLER_LAYOUTS[layout]
    student = distiller_student(layout)
    path = write(student, tmp_path)

    loaded = load_model(path)

    info = loaded.checkpoint
    assert (loaded.spec.arch, loaded.arch_detected) == (arch, True)
    assert (info.location, info.stripped_prefix, info.part, info.other_parts) == ("model", "", "", ())
    assert {k: info.metadata[k] for k in metadata} == metadata
    assert others <= set(info.other_entries)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = student((images - loaded.module.mean) / loaded.module.std)
        torch.testing.assert_close(loaded.module(images), expected)


def test_run_options_are_kept_as_metadata(tmp_path: Path) -> None:
    """RepDistiller's ``opt`` and torchdistill's ``args`` are argparse Namespaces; they read back as dicts."""
    repdistiller = load_model(repdistiller_last(distiller_student("repdistiller-last"), tmp_path)).checkpoint
    torchdistill = load_model(torchdistill_v0_ckpt(distiller_student("torchdistill-v0"), tmp_path)).checkpoint

    assert repdistiller.metadata["opt"]["model_s"] == "resnet8x4"
    assert repdistiller.metadata["opt"]["lr_decay_epochs"] == [150, 180, 210]
    assert torchdistill.metadata["args"]["config"].endswith("resnet20_from_densenet_bc_k12_depth100.yaml")
    assert torchdistill.metadata["config"]["models"]["student_model"]["name"] == "resnet20"


def test_torchdistill_auxiliary_wrapper_keeps_its_student_under_student_model(tmp_path: Path) -> None:
    """Since its FSDP support, torchdistill's example scripts save ``training_box.student_model``: for methods with an
    auxiliary student wrapper (``Connector4DAB`` here, on one GPU) that is the wrapper, so the student's keys start
    with ``student_model.`` and the connectors' with ``connector_dict.``."""
    student = distiller_student("torchdistill")
    weights = {f"student_model.{k}": v for k, v in student.state_dict().items()}
    weights |= {"connector_dict.connector1.0.weight": torch.zeros(16, 16, 1, 1)}
    weights |= {"connector_dict.connector1.0.bias": torch.zeros(16)}
    path = tmp_path / "cifar10-resnet20_from_resnet56-dab.pt"
    torch.save({"model": weights, "best_value": 0.9, "args": torchdistill_args()}, path)

    loaded = load_model(path)

    assert (loaded.spec.arch, loaded.checkpoint.stripped_prefix) == ("resnet20_b", "student_model.")


@pytest.mark.slow  # five runs, each timing its model's throughput
def test_score_scores_every_distiller_student_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One ``score`` over a file of each layout; ResNet-8 students keep the forward passes short."""
    sets = scramble_sets(tmp_path, capsys)
    paths = {}
    for layout, (_, write, _, _) in DISTILLER_LAYOUTS.items():
        (tmp_path / layout).mkdir()
        paths[layout] = write(networks()[0], tmp_path / layout)
    results = tmp_path / "results"
    score = ["score", *map(str, paths.values()), "--sets-dir", str(sets), "--results", str(results), "--adv", "none"]

    code, _, err = run_cli([*score, "--no-attention", "--no-progress", "--device", "cpu"], capsys)

    assert code == 0, err
    records = [json.loads(p.read_text()) for p in results.glob("runs/*.json")]
    scored = {
        Path(r["checkpoint"]["path"]).parent.name: (r["spec"]["arch"], r["checkpoint"]["location"]) for r in records
    }
    assert scored == {layout: ("resnet8_b", "model") for layout in DISTILLER_LAYOUTS}

"""``libkd_bench.evaluate``: a network in memory, a checkpoint of its weights and the command line agree.

The store is small (30 synthetic images, clean and scramble) and the network a randomly initialised resnet20_a,
so the three runs take seconds; what is compared is every field of the records that does not describe the
checkpoint's identity or the moment and speed of the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

import libkd_bench
from libkd_bench.cli import main
from libkd_bench.core.errors import BenchError
from libkd_bench.models import create_architecture
from libkd_bench.models.loading.in_memory import state_dict_sha256

# what differs between two runs of the same weights: when and how fast they ran, and which file held them
VOLATILE = (
    ("created",),
    ("efficiency", "images_per_s"),
    ("scoring", "cpu_threads"),
    ("scoring", "attention", "seconds"),
)
IDENTITY = (("checkpoint",), ("logits",))
PREPROCESS = "cifar10"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import synthetic_images

    root = tmp_path_factory.mktemp("api")
    images, labels = synthetic_images(30)
    np.savez(root / "split.npz", x=images, y=labels)
    args = ["generate-sets", "--sets", "scramble", "--source", f"npz:{root / 'split.npz'}", "--no-progress"]
    assert main([*args, "--sets-dir", str(root / "sets"), "--workers", "1"]) == 0
    return root / "sets"


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_architecture("resnet20_a")


def without(record: dict, fields: tuple[tuple[str, ...], ...]) -> dict:
    record = json.loads(json.dumps(record))
    for path in fields:
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        parent.pop(path[-1])
    return record


def test_a_module_in_memory_and_a_checkpoint_of_its_weights_give_identical_records(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = network().train()
    checkpoint = tmp_path / "student.pth"
    torch.save(net.state_dict(), checkpoint)
    common = {"sets_dir": store, "preprocess": PREPROCESS, "device": "cpu", "name": "student"}
    in_memory = libkd_bench.evaluate(net, results=tmp_path / "memory", **common)
    from_file = libkd_bench.evaluate(str(checkpoint), results=tmp_path / "file", **common)
    assert net.training  # the caller's module is left as it was
    memory_record, file_record = in_memory.record.to_json(), from_file.record.to_json()
    assert without(memory_record, VOLATILE + IDENTITY) == without(file_record, VOLATILE + IDENTITY)
    assert memory_record["checkpoint"]["format"] == "in-memory"
    assert memory_record["checkpoint"]["sha256"] == state_dict_sha256(net.state_dict())
    assert memory_record["spec"]["arch"] == "resnet20_a"
    assert memory_record["scoring"]["forward_passes"] == ["clean", "scramble"]
    assert sorted(memory_record["sets"]) == ["adv-fgsm", "adv-pgd", "clean", "scramble"]
    frame = in_memory.to_frame()
    assert list(frame.columns[:5]) == ["model", "source", "set", "severity", "metric"]
    assert set(frame["model"]) == {"student"}
    assert "student" in in_memory.leaderboard()

    # the command line on the same checkpoint and store: the same record
    code, out, err = run_cli(
        ["score", str(checkpoint), "--name", "student", "--sets-dir", str(store), "--results", str(tmp_path / "cli"),
         "--preprocess", PREPROCESS, "--device", "cpu", "--no-progress", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    [cli_record] = json.loads(out)
    given_path = (*VOLATILE, ("checkpoint", "path"))  # as given on each side
    assert without(cli_record, given_path) == without(file_record, given_path)


@pytest.mark.slow
def test_a_teacher_in_memory_is_scored_first_and_compared_with(store: Path, tmp_path: Path) -> None:
    teacher = libkd_bench.Model(network(), name="teacher", preprocess=PREPROCESS)
    torch.manual_seed(1)
    student = create_architecture("resnet20_a")
    result = libkd_bench.evaluate(
        student, sets_dir=store, teacher=teacher, preprocess=PREPROCESS, device="cpu", results=tmp_path, name="kd"
    )
    assert [record.model for record in result.records] == ["teacher", "kd"]
    assert result.record.kd["teacher"] == result.records[0].run_id
    assert result.record.metric("clean", "error_consistency") is not None


def test_bad_input_is_one_bench_error(store: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="needs its preprocessing stated"):
        libkd_bench.evaluate(network(), sets_dir=store, results=tmp_path)
    with pytest.raises(BenchError, match=r"a teacher in memory needs a name"):
        libkd_bench.evaluate(network(), sets_dir=store, teacher=network(), preprocess="none", results=tmp_path)
    with pytest.raises(BenchError, match="neither a preset"):
        libkd_bench.evaluate(network(), sets_dir=store, preprocess="cifar11", results=tmp_path)
    with pytest.raises(BenchError, match="unknown set 'scrambel'"):
        libkd_bench.evaluate(network(), sets_dir=store, sets=["scrambel"], preprocess="none", results=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_importing_the_package_stays_light_and_help_works() -> None:
    code = "import sys, libkd_bench; help(libkd_bench.evaluate); assert 'torch' not in sys.modules, 'torch'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "evaluate(model" in done.stdout

"""Bundled zoo entries: weights shipped in models/zoo_weights/, pinned by sha256 and listed by list-models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from safetensors.torch import save_file

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import Preset
from libkd_bench.models import zoo
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.registry import create_architecture
from libkd_bench.models.spec import SpecOverrides


@pytest.fixture
def bundled_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.ZooEntry:
    """``zoo:ref-tiny``: a float16 resnet8_b with a sidecar, in a weights folder standing in for the package's."""
    torch.manual_seed(0)
    weights = {
        k: v.half() if v.is_floating_point() else v for k, v in create_architecture("resnet8_b").state_dict().items()
    }
    path = tmp_path / "ref-tiny.safetensors"
    save_file(weights, path)
    sidecar = {"arch": "resnet8_b", "num_classes": 10, "preset": "cifar10", "training": {"recipe": "ref-tiny"}}
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar))
    entry = zoo.bundled(
        "ref-tiny",
        path.name,
        hashlib.sha256(path.read_bytes()).hexdigest(),
        spec=SpecOverrides(arch="resnet8_b", preset=Preset.CIFAR10),
        description="a test model",
        recipe="ref-tiny",
        method="kd",
        teacher="akamaster-resnet56",
        baseline="ref-tiny-baseline",
    )
    monkeypatch.setattr(zoo, "BUNDLED_DIR", tmp_path)
    monkeypatch.setitem(zoo.ZOO, entry.name, entry)
    monkeypatch.delenv(zoo.MIRROR_ENV, raising=False)
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    return entry


def test_a_bundled_entry_loads_from_the_package_folder_with_its_hash_checked(bundled_entry: zoo.ZooEntry) -> None:
    loaded = load_model("zoo:ref-tiny")
    assert loaded.checkpoint.zoo == "ref-tiny"
    assert loaded.checkpoint.sha256 == bundled_entry.sha256
    assert loaded.checkpoint.path == "zoo:ref-tiny"  # recorded by its zoo name, not the package folder
    assert loaded.spec.arch == "resnet8_b"
    assert (bundled_entry.method, bundled_entry.teacher, bundled_entry.filename) == (
        "kd",
        "akamaster-resnet56",
        "ref-tiny.safetensors",
    )


def test_a_bundled_file_with_another_hash_is_refused(bundled_entry: zoo.ZooEntry) -> None:
    path = zoo.BUNDLED_DIR / bundled_entry.filename
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(BenchError, match=r"zoo:ref-tiny: .*bundled with the package.* not the pinned"):
        load_model("zoo:ref-tiny")


def test_a_missing_bundled_file_is_a_one_line_error(bundled_entry: zoo.ZooEntry) -> None:
    (zoo.BUNDLED_DIR / bundled_entry.filename).unlink()
    with pytest.raises(BenchError, match=r"bundled file .* is missing"):
        zoo.fetch("ref-tiny")


def test_list_models_shows_bundled_entries(bundled_entry: zoo.ZooEntry, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-models"], capsys)
    assert code == 0
    assert "zoo:ref-tiny" in out
    assert "a test model" in out


def test_every_shipped_bundled_entry_has_its_file() -> None:
    for entry in zoo.BUNDLED:
        assert (zoo.BUNDLED_DIR / entry.filename).is_file(), entry.name

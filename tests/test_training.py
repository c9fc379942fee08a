"""Training recipes end to end on tiny data: every recipe learns, exports what the loader reads, and resumes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED_CHECKPOINTS, synthetic_images
from safetensors import safe_open
from training_fixtures import (
    as_numpy,
    random_wrapped,
    split,
    stored_precision,
    teachers_for,
    tiny,
    write_random_export,
)

from libkd_bench.core.errors import BenchError
from libkd_bench.core.torch_runtime import torch_threads
from libkd_bench.models import zoo
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.loading.wrapped import NormalizedClassifier
from libkd_bench.models.training.augment import apply_params
from libkd_bench.models.training.data import load_split
from libkd_bench.models.training.export import export_model
from libkd_bench.models.training.loop import train
from libkd_bench.models.training.recipe import Method, Recipe, TrainConfig, get_recipe, recipe_names
from libkd_bench.models.training.teacher_bank import build_bank, view_table
from libkd_bench.models.training.teachers import TeacherEnsemble

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny batches gain nothing from more threads, and waiting OpenMP threads on busy cores cost seconds."""
    with torch_threads(1):
        yield


@pytest.fixture
def teacher_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for recipe teachers (random weights are written there), with the zoo served from ../shared."""
    folder = tmp_path / "teachers"
    folder.mkdir()
    monkeypatch.setenv(zoo.MIRROR_ENV, str(SHARED_CHECKPOINTS))
    return folder


# The study's recipes (several seconds each on a CPU) run with the slow tests; their methods have quick tests of
# their own in test_training_methods.py.
RECIPE_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n.startswith("study-") else n for n in recipe_names()]


@pytest.mark.parametrize("name", RECIPE_PARAMS)
def test_every_recipe_learns_and_exports_what_the_loader_reads(name: str, teacher_dir: Path, tmp_path: Path) -> None:
    recipe = tiny(get_recipe(name))
    teacher = teachers_for(recipe, teacher_dir)
    result = train(recipe, split(32, seed=1), tmp_path / "work", device=CPU, teacher=teacher)
    assert result.completed
    assert result.logs[-1].loss < result.logs[0].loss
    test = split(20, seed=2)
    exported = export_model(result.network, result.spec, name, tmp_path / "out", test, {"recipe": name}, CPU)

    loaded = load_model(exported.path)
    images = torch.from_numpy(test.images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = NormalizedClassifier(stored_precision(result.network, exported.dtype), result.spec).eval()(images)
        actual = loaded.module(images)
    np.testing.assert_allclose(as_numpy(actual), as_numpy(expected), rtol=1e-5, atol=1e-5)
    assert replace(loaded.spec, arch_kwargs={}) == replace(result.spec, arch_kwargs={})
    assert dict(result.spec.arch_kwargs).items() <= dict(loaded.spec.arch_kwargs).items()
    with safe_open(str(exported.path), "pt") as weights:
        assert set(weights.keys()) == set(result.network.state_dict())  # no KD layer, no loss state
    sidecar = json.loads(exported.path.with_name(exported.path.name + ".json").read_text())
    assert sidecar["training"]["clean_accuracy"] == exported.clean_accuracy


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    recipe = tiny(get_recipe("ref-resnet20-baseline"), epochs=2)
    data = split(32, seed=3)
    whole = train(recipe, data, tmp_path / "whole", device=CPU)
    first = train(recipe, data, tmp_path / "split", device=CPU, stop_after=1)
    assert not first.completed
    assert len(first.logs) == 1
    resumed = train(recipe, data, tmp_path / "split", device=CPU)
    assert resumed.completed
    assert [log.loss for log in resumed.logs] == [log.loss for log in whole.logs]
    for key, value in whole.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    recipe = tiny(get_recipe("ref-resnet20-baseline"), epochs=1)
    train(recipe, split(32, seed=3), tmp_path, device=CPU)
    with pytest.raises(BenchError, match="belongs to another run"):
        train(tiny(recipe, epochs=2), split(32, seed=3), tmp_path, device=CPU)


def test_precomputed_teacher_logits_equal_the_teacher_run_online(tmp_path: Path) -> None:
    torch.manual_seed(0)
    teacher = TeacherEnsemble([random_wrapped("resnet8_b"), random_wrapped("resnet20_a")], [])
    images = torch.from_numpy(synthetic_images(24, seed=4)[0])
    config = TrainConfig(epochs=1, batch_size=8, lr=0.1, weight_decay=0.0)
    bank = build_bank(
        teacher, images, tmp_path, key={"k": 1}, views=3, augment=config.augment, seed=7, batch_size=10, device=CPU
    )
    assert bank.build_seconds > 0
    for epoch in (1, 5):  # epoch 5 reads view 5 mod 3 = 2
        params = view_table(len(images), config.augment, seed=7, view=epoch % 3)
        assert torch.equal(bank.params(epoch, len(images)), params)
        online = teacher(apply_params(images, params))
        np.testing.assert_allclose(bank.logits(epoch).astype(np.float32), as_numpy(online), atol=2e-3, rtol=2e-3)
    assert not torch.equal(view_table(24, config.augment, 7, 0), view_table(24, config.augment, 7, 1))


def test_a_jpeg_archive_is_decoded_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from PIL import Image

    monkeypatch.setenv("LIBKD_BENCH_TRAIN_CACHE", str(tmp_path / "cache"))
    images, labels = synthetic_images(6)
    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=90)
        blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    np.savez(tmp_path / "train-jpeg.npz", jpeg=np.concatenate(blobs), offsets=offsets, y=labels)

    first = load_split(tmp_path / "train-jpeg.npz")
    expected = np.stack([np.asarray(Image.open(io.BytesIO(b.tobytes())).convert("RGB")) for b in blobs])
    np.testing.assert_array_equal(first.images, expected)
    np.testing.assert_array_equal(first.labels, labels)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    again = load_split(tmp_path / "train-jpeg.npz", limit=3)
    assert isinstance(again.images, np.ndarray)
    np.testing.assert_array_equal(again.images, expected[[0, 2, 5]])  # evenly spaced


def test_an_unknown_recipe_names_the_close_matches() -> None:
    with pytest.raises(BenchError, match=r"unknown recipe 'ref-vit-kdd'; did you mean ref-vit-kd"):
        get_recipe("ref-vit-kdd")


def test_a_recipe_whose_method_and_teachers_disagree_is_refused() -> None:
    config = TrainConfig(epochs=1, batch_size=8, lr=0.1, weight_decay=0.0)
    with pytest.raises(BenchError, match="disagree"):
        Recipe(name="x", arch="resnet20_a", train=config, description="", method=Method.KD)
    with pytest.raises(BenchError, match="unknown optimizer"):
        TrainConfig(epochs=1, batch_size=8, lr=0.1, weight_decay=0.0, optimizer="adam")  # type: ignore[arg-type]


def test_cli_trains_and_exports_a_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = synthetic_images(40)
    np.savez(tmp_path / "train.npz", x=images, y=labels)
    np.savez(tmp_path / "test.npz", x=images[:20], y=labels[:20])
    args = ["train", "ref-resnet20-baseline", "--data", f"npz:{tmp_path / 'train.npz'}", "--out", str(tmp_path / "o")]
    code, out, err = run_cli([*args, "--epochs", "1", "--device", "cpu", "--no-progress"], capsys)
    assert code == 0, err
    assert "clean acc" in out
    assert "epoch 1/1: loss" in err
    assert (tmp_path / "o" / "ref-resnet20-baseline.safetensors.json").is_file()
    assert (tmp_path / "o" / "work" / "ref-resnet20-baseline" / "last.pt").is_file()


def test_cli_lists_the_recipes_and_rejects_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-recipes"], capsys)
    assert code == 0
    assert all(name in out for name in recipe_names())
    code, _, err = run_cli(["train", "ref-resnet20-basline", "--data", "npz:x.npz"], capsys)
    assert_one_line_error(code, err, "unknown recipe 'ref-resnet20-basline'", "ref-resnet20-baseline")


def test_a_random_teacher_export_loads(tmp_path: Path) -> None:
    path = write_random_export("ref-rednet", tmp_path)
    assert load_model(path).spec.arch_kwargs["base_channels"] == 16

"""The study's training methods: known answers for DKD, AT and label smoothing, FitNet's regressor kept out of the
export, feature hooks, and every new method learning on a tiny run of real CIFAR-10 images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_CHECKPOINTS
from safetensors import safe_open
from training_fixtures import random_wrapped, split, teachers_for, tiny

from libkd_bench.core.errors import BenchError
from libkd_bench.core.torch_runtime import torch_threads
from libkd_bench.models import zoo
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.registry import create_architecture
from libkd_bench.models.training.data import ImageSplit, load_split
from libkd_bench.models.training.export import clean_accuracy, export_model
from libkd_bench.models.training.feature_losses import at_loss, attention_map
from libkd_bench.models.training.features import RESNET_STAGES, FeatureTap, stage_shapes
from libkd_bench.models.training.loop import train
from libkd_bench.models.training.methods import DKD, LabelSmoothing, build_loss, dkd_loss, smoothed_targets
from libkd_bench.models.training.recipe import Method, Recipe, get_recipe, register_recipe
from libkd_bench.models.training.teachers import TeacherEnsemble

CPU = torch.device("cpu")
SHARED_TEST = SHARED_CHECKPOINTS.parent.parent / "data" / "cifar10-jpeg" / "test.npz"
NEW_METHODS = ("ls", "selfkd", "dkd", "fitnet", "at")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture
def teacher_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "teachers"
    folder.mkdir()
    monkeypatch.setenv(zoo.MIRROR_ENV, str(SHARED_CHECKPOINTS))
    return folder


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float((p * np.log(p / q)).sum())


def dkd_by_definition(student: np.ndarray, teacher: np.ndarray, labels: np.ndarray, alpha, beta, t) -> float:
    """Zhao et al.'s eq. (3) per image: alpha KL(b_T || b_S) + beta KL(p^_T || p^_S), times T^2, mean over images."""
    total = 0.0
    for s_row, t_row, label in zip(student, teacher, labels, strict=True):
        p_s, p_t = _softmax(s_row[None] / t)[0], _softmax(t_row[None] / t)[0]
        b_s, b_t = np.array([p_s[label], 1 - p_s[label]]), np.array([p_t[label], 1 - p_t[label]])
        rest = np.arange(len(s_row)) != label
        hat_s, hat_t = p_s[rest] / p_s[rest].sum(), p_t[rest] / p_t[rest].sum()
        total += t**2 * (alpha * _kl(b_t, b_s) + beta * _kl(hat_t, hat_s))
    return total / len(labels)


def test_dkd_equals_its_definition_on_a_hand_case() -> None:
    student = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -0.5], [-1.0, 1.0, 0.0, 2.0]])
    teacher = np.array([[3.0, -0.5, 0.0, 1.0], [0.0, 1.5, 2.0, 0.5], [0.5, 0.5, -2.0, 1.0]])
    labels = np.array([0, 2, 3])
    for alpha, beta, t in ((1.0, 8.0, 4.0), (1.0, 2.0, 4.0), (0.5, 1.0, 1.0)):
        actual = dkd_loss(torch.tensor(student), torch.tensor(teacher), torch.tensor(labels), alpha, beta, t)
        assert float(actual) == pytest.approx(dkd_by_definition(student, teacher, labels, alpha, beta, t), rel=1e-6)
    same = torch.tensor(student)
    assert float(dkd_loss(same, same, torch.tensor(labels), 1.0, 8.0, 4.0)) == pytest.approx(0.0, abs=1e-6)


def test_dkd_warms_its_kd_term_up_linearly_and_adds_the_cross_entropy() -> None:
    loss = DKD(0.0, alpha=1.0, beta=2.0, temperature=4.0, warmup_epochs=4)
    student, teacher = torch.randn(5, 10, generator=torch.Generator().manual_seed(0)), torch.randn(5, 10)
    labels = torch.arange(5)
    kd = dkd_loss(student, teacher, labels, 1.0, 2.0, 4.0)
    weights = []
    for epoch in range(6):
        loss.start_epoch(epoch)
        weights.append(loss.kd_weight)
        value, _ = loss(student, labels, teacher)
        assert float(value) == pytest.approx(float(F.cross_entropy(student, labels) + loss.kd_weight * kd), rel=1e-6)
    assert weights == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert get_recipe("study-resnet20-dkd").method_options["beta"] == 2.0  # mdistiller's ResNet-56 -> ResNet-20


def test_label_smoothing_targets_sum_to_one_with_the_label_raised() -> None:
    labels = torch.tensor([0, 3, 9])
    targets = smoothed_targets(labels, 10, 0.1)
    np.testing.assert_allclose(targets.sum(dim=1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets[torch.arange(3), labels].numpy(), 1 - 0.1 + 0.1 / 10, rtol=1e-6)
    assert float(targets[0, 1]) == pytest.approx(0.01)
    logits = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    value, _ = LabelSmoothing(0.0, epsilon=0.1)(logits, labels, None)
    assert float(value) == pytest.approx(float(F.cross_entropy(logits, labels, label_smoothing=0.1)), rel=1e-6)
    with pytest.raises(BenchError, match="label_smoothing must be 0"):
        LabelSmoothing(0.1)


def test_attention_transfer_is_zero_for_identical_features_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(2)
    features = [torch.rand(2, c, s, s, generator=g) for c, s in ((16, 32), (32, 16), (64, 8))]
    assert float(at_loss(features, features)) == 0.0
    assert float(at_loss(features, [2.0 * f for f in features])) == pytest.approx(0.0, abs=1e-12)  # normalised
    assert float(at_loss(features, [f.flip(-1) for f in features])) > 0
    np.testing.assert_allclose(attention_map(features[0]).norm(dim=1).numpy(), 1.0, rtol=1e-6)
    # a larger student map is pooled to the teacher's side, as mdistiller does
    assert float(at_loss([features[0]], [F.adaptive_avg_pool2d(features[0], 16)])) >= 0


def test_feature_taps_read_the_stages_and_unhook() -> None:
    network = create_architecture("resnet20_a", 10).eval()
    wrapped = random_wrapped("resnet56_a")
    assert stage_shapes(network, RESNET_STAGES, "student") == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert stage_shapes(wrapped, ("layer2",), "teacher") == [(32, 16, 16)]  # found inside the wrapper
    x = torch.rand(2, 3, 32, 32)
    with FeatureTap(network, RESNET_STAGES, "student") as tap, torch.no_grad():
        network(x)
        out = tap.take()
    expected = network.layer3(network.layer2(network.layer1(F.relu(network.bn1(network.conv1(x))))))
    torch.testing.assert_close(out[2], expected)
    assert not network.layer1._forward_hooks
    with pytest.raises(BenchError, match="no stage named 'layer2'"):
        FeatureTap(create_architecture("vit_cifar", 10), ("layer2",), "student vit_cifar")


def test_fitnet_trains_its_regressor_but_never_exports_it(teacher_dir: Path, tmp_path: Path) -> None:
    recipe = tiny(get_recipe("study-resnet20-fitnet"), epochs=2)
    teacher = teachers_for(recipe, teacher_dir)
    result = train(recipe, split(32, seed=1), tmp_path / "work", device=CPU, teacher=teacher)
    state = torch.load(tmp_path / "work" / "last.pt", weights_only=True)
    assert any(key.startswith("regressor.") for key in state["loss"])
    exported = export_model(result.network, result.spec, "fitnet", tmp_path / "out", split(20, 2), {}, CPU)
    with safe_open(str(exported.path), "pt") as weights:
        keys = set(weights.keys())
    assert keys == set(result.network.state_dict())
    assert not any("regressor" in key for key in keys)
    assert not any(m._forward_hooks for m in result.network.modules())  # the taps are gone
    assert not any(m._forward_hooks for m in teacher.modules())


@pytest.mark.parametrize("name", ["study-resnet20-dkd", "study-resnet20-at"])
def test_a_resumed_feature_or_warmed_up_run_equals_an_uninterrupted_one(
    name: str, teacher_dir: Path, tmp_path: Path
) -> None:
    recipe = tiny(get_recipe(name), epochs=2)
    teacher = teachers_for(recipe, teacher_dir)
    data = split(32, seed=3)
    whole = train(recipe, data, tmp_path / "whole", device=CPU, teacher=teacher)
    train(recipe, data, tmp_path / "split", device=CPU, teacher=teacher, stop_after=1)
    resumed = train(recipe, data, tmp_path / "split", device=CPU, teacher=teacher)
    assert [log.loss for log in resumed.logs] == [log.loss for log in whole.logs]
    for key, value in whole.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key


def test_feature_methods_refuse_an_ensemble_and_a_network_without_stages(tmp_path: Path) -> None:
    recipe = tiny(get_recipe("study-resnet20-at"), epochs=1)
    pair = TeacherEnsemble([random_wrapped("resnet20_a"), random_wrapped("resnet56_a")], [])
    with pytest.raises(BenchError, match="needs exactly one teacher, got 2"):
        train(recipe, split(16, seed=1), tmp_path / "a", device=CPU, teacher=pair)
    vit = replace(recipe, arch="vit_cifar", arch_kwargs={"depth": 1, "embed_dim": 32, "num_heads": 2})
    one = TeacherEnsemble([random_wrapped("resnet20_a")], [])
    with pytest.raises(BenchError, match="student vit_cifar has no stage named 'layer1'"):
        train(vit, split(16, seed=1), tmp_path / "b", device=CPU, teacher=one)
    with pytest.raises(BenchError, match="hint_stage must be 1, 2 or 3"):
        build_loss(Method.FITNET, {"hint_stage": 4}, 0.0, ([(16, 8, 8)], [(16, 8, 8)]))


def test_self_distillation_needs_a_teacher_of_its_own_architecture() -> None:
    student = get_recipe("study-resnet20-selfkd")
    assert get_recipe(student.teachers[0].split(":", 1)[1]).arch == student.arch
    with pytest.raises(ValueError, match="self-kd needs one recipe:NAME teacher"):
        register_recipe(replace(student, name="x-selfkd", teachers=("recipe:study-resnet56",)))
    with pytest.raises(BenchError, match="disagree"):
        replace(get_recipe("study-resnet20-ls"), teachers=("recipe:study-resnet56",))


@pytest.fixture(scope="module")
def cifar() -> tuple[ImageSplit, ImageSplit]:
    """A class-balanced 320 real CIFAR-10 test images to train on and 200 others to measure on."""
    if not SHARED_TEST.is_file():
        pytest.skip(f"shared CIFAR-10 test copy {SHARED_TEST} not found")
    whole = load_split(SHARED_TEST)
    index = np.arange(len(whole))
    train_index, held_index = index[::31][:320], index[7::47][:200]
    pick = lambda i, tag: ImageSplit(whole.images[i], whole.labels[i], tag, tag)  # noqa: E731
    return pick(train_index, "cifar-320"), pick(held_index, "cifar-200")


# A trained teacher per method: the zoo's ResNet-56 for the study's students, the zoo's ResNet-20 (a trained copy of
# the student's architecture) for self-distillation; the label-smoothing control has none.
REAL_TEACHERS = {"selfkd": ("zoo:akamaster-resnet20",), "ls": ()}
# DKD's T^2-scaled terms (about 30 at the start) need a lower rate and more steps on 320 images.
SCHEDULES = {"dkd": (8, 0.05)}


@pytest.mark.slow
@pytest.mark.parametrize("method", NEW_METHODS)
def test_every_new_method_learns_on_real_images(
    method: str, cifar: tuple[ImageSplit, ImageSplit], teacher_dir: Path, tmp_path: Path
) -> None:
    recipe: Recipe = get_recipe(f"study-resnet20-{method}")
    epochs, lr = SCHEDULES.get(method, (5, 0.1))
    recipe = replace(tiny(recipe, epochs=epochs), teachers=REAL_TEACHERS.get(method, ("zoo:akamaster-resnet56",)))
    recipe = replace(recipe, train=replace(recipe.train, batch_size=32, lr=lr))
    teacher = teachers_for(recipe, teacher_dir)
    data, held = cifar
    result = train(recipe, data, tmp_path / "work", device=CPU, teacher=teacher)
    assert result.logs[-1].loss < result.logs[0].loss
    exported = export_model(result.network, result.spec, recipe.name, tmp_path / "out", held, {}, CPU)
    loaded = load_model(exported.path)
    accuracy = clean_accuracy(loaded.module, held, CPU)
    print(f"{method}: train acc {result.logs[-1].accuracy:.3f}, held-out acc {accuracy:.3f}")
    assert accuracy == exported.clean_accuracy
    assert accuracy > 0.15  # chance is 0.10

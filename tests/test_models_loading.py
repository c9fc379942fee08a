"""load_model: spec layering (defaults < sidecar < caller), the wrapper, user and timm architectures, mismatches."""

from __future__ import annotations

import json
import pickle
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import REPO

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.core.torch_runtime import torch_threads
from libkd_bench.models import registry
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.loading.wrapped import NormalizedClassifier, select_logits
from libkd_bench.models.registry import create_architecture
from libkd_bench.models.spec import Interpolation, ModelSpec, SpecOverrides

EXAMPLE = REPO / "examples" / "kd_layer_student.py"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Two-image forward passes run fastest on one thread, and never stall on OpenMP threads of busy cores."""
    with torch_threads(1):
        yield


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Architectures registered by a test (user files, entry points) disappear after it."""
    from libkd_bench.models import user_architectures

    registry.registered_entries()
    monkeypatch.setattr(registry._ENTRIES, "_items", dict(registry._ENTRIES._items))
    monkeypatch.setattr(user_architectures, "_IMPORTED_FILES", {})


def saved(tmp_path: Path, name: str = "resnet8_b", num_classes: int = 10, **kwargs: object) -> Path:
    path = tmp_path / f"{name}.pth"
    torch.save(create_architecture(name, num_classes, **kwargs).state_dict(), path)
    return path


def images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(3))


# --- spec layering --------------------------------------------------------------------------------------------


def test_sidecar_json_sets_the_spec_and_flags_override_it(tmp_path: Path) -> None:
    path = saved(tmp_path)
    sidecar = {"preset": "cifar100", "interpolation": "bicubic", "input_size": 48}
    (tmp_path / "resnet8_b.pth.json").write_text(json.dumps(sidecar))
    from_sidecar = load_model(path)
    assert from_sidecar.spec.to_json() == {
        "arch": "resnet8_b",
        "num_classes": 10,
        "mean": list(PRESET_STATS[Preset.CIFAR100][0]),
        "std": list(PRESET_STATS[Preset.CIFAR100][1]),
        "preset": "cifar100",
        "input_size": 48,
        "interpolation": "bicubic",
        "arch_kwargs": {},
    }
    assert from_sidecar.checkpoint.sidecar == str(tmp_path / "resnet8_b.pth.json")
    flags = SpecOverrides(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_size=32)
    overridden = load_model(path, overrides=flags).spec
    assert (overridden.preset, overridden.mean, overridden.std) == (None, (0.5,) * 3, (0.25,) * 3)
    assert (overridden.input_size, overridden.interpolation) == (32, Interpolation.BICUBIC)


def test_sidecar_yaml_names_the_architecture(tmp_path: Path) -> None:
    path = saved(tmp_path, "vit_cifar", depth=2, embed_dim=32, num_heads=4)
    (tmp_path / "vit_cifar.pth.yaml").write_text("arch: vit_cifar\narch_kwargs:\n  num_heads: 4\npreset: none\n")
    loaded = load_model(path)
    assert (loaded.spec.arch, loaded.spec.arch_kwargs["num_heads"], loaded.spec.preset) == ("vit_cifar", 4, Preset.NONE)
    assert not loaded.arch_detected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("x.pth.yaml", "- arch\n- preset\n", r"must be a mapping .* it holds a list"),
        ("x.pth.yaml", "arch: resnet8_b\nnormalize: imagenet\n", r"unknown field 'normalize'"),
        ("x.pth.yml", "arch: [unclosed\n", r"is not valid YAML \(line 2\)"),
        ("x.pth.json", '{"preset": "imagenet", "mean": [0.5, 0.5, 0.5], "std": [1, 1, 1]}', "not both"),
        ("x.pth.json", '{"mean": [0.5, 0.5]}', "mean and std together"),
        ("x.pth.json", '{"num_classes": 1}', "num_classes must be an integer >= 2"),
        ("x.pth.json", '{"preset": "cifar1000"}', "unknown normalisation preset 'cifar1000'"),
        ("x.pth.json", "{not json", r"not valid JSON \(line 1"),
    ],
)
def test_bad_sidecars_give_one_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    torch.save(create_architecture("resnet8_b").state_dict(), tmp_path / "x.pth")
    (tmp_path / name).write_text(text)
    with pytest.raises(BenchError, match=message) as raised:
        load_model(tmp_path / "x.pth")
    assert "\n" not in str(raised.value)


def test_two_sidecars_are_refused(tmp_path: Path) -> None:
    path = saved(tmp_path)
    (tmp_path / "resnet8_b.pth.json").write_text("{}")
    (tmp_path / "resnet8_b.pth.yaml").write_text("{}")
    with pytest.raises(BenchError, match="several sidecars"):
        load_model(path)


def test_a_complete_spec_replaces_defaults_and_sidecar(tmp_path: Path) -> None:
    path = saved(tmp_path)
    (tmp_path / "resnet8_b.pth.json").write_text('{"preset": "cifar100"}')
    spec = ModelSpec("resnet8_b", 10, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert load_model(path, spec=spec).spec == spec
    with pytest.raises(BenchError, match="contradicts"):
        load_model(path, spec=spec, arch="resnet8x4")


def test_layers_replace_normalisation_as_a_whole_and_drop_options_of_another_arch() -> None:
    sidecar = SpecOverrides(arch="vit_cifar", preset="imagenet", arch_kwargs={"num_heads": 4})
    merged = sidecar.then(SpecOverrides(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)))
    assert (merged.arch, merged.preset, merged.mean, dict(merged.arch_kwargs)) == (
        "vit_cifar",
        None,
        (0.5, 0.5, 0.5),
        {"num_heads": 4},
    )
    assert (merged.then(SpecOverrides(preset="cifar10")).mean, merged.then(SpecOverrides()).mean) == (None, merged.mean)
    assert dict(merged.then(SpecOverrides(arch="resnet20_a")).arch_kwargs) == {}
    assert merged.resolve("vit_cifar", 10).std == (0.2, 0.2, 0.2)


def test_spec_validation() -> None:
    with pytest.raises(BenchError, match="std must be positive"):
        ModelSpec("a", 10, mean=(0, 0, 0), std=(1, 0, 1))
    with pytest.raises(BenchError, match="are not those of preset imagenet"):
        ModelSpec("a", 10, mean=(0, 0, 0), std=(1, 1, 1), preset="imagenet")
    with pytest.raises(BenchError, match="unknown interpolation 'lanczos'"):
        SpecOverrides(interpolation="lanczos")
    with pytest.raises(BenchError, match="must be a number, a string or a boolean"):
        SpecOverrides(arch_kwargs={"layers": [1, 2]})


def test_a_spec_pickles_to_an_equal_read_only_spec() -> None:
    """A model shipped to a cluster's workers is pickled with its spec."""
    spec = ModelSpec("vit", 10, mean=(0.5,) * 3, std=(0.25,) * 3, arch_kwargs={"depth": 4}, class_map=tuple(range(10)))
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec
    assert copy.to_json() == spec.to_json()
    with pytest.raises(TypeError):
        copy.arch_kwargs["depth"] = 5  # type: ignore[index]


# --- the wrapper ----------------------------------------------------------------------------------------------


def test_wrapper_normalises_inside_and_resizes_to_the_input_size() -> None:
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen["x"] = x
            return torch.zeros(x.shape[0], 10)

    spec = ModelSpec("probe", 10, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0), input_size=64, interpolation="nearest")
    NormalizedClassifier(Probe(), spec)(torch.ones(1, 3, 32, 32))
    assert seen["x"].shape == (1, 3, 64, 64)
    # (1 - mean) / std per channel, known by hand
    assert seen["x"][0, :, 0, 0].tolist() == [1.0, 3.0, 0.5]


def test_output_unwrapping_known_cases() -> None:
    logits, other = torch.arange(20.0).view(2, 10), torch.ones(2, 10)
    features = [torch.zeros(2, 64, 8, 8), torch.zeros(2, 64)]
    assert select_logits(logits, 2, 10) is logits
    assert select_logits((features, logits), 2, 10) is logits  # RepDistiller's is_feat=True
    assert select_logits({"logits": logits, "features": features[1]}, 2, 10) is logits
    torch.testing.assert_close(select_logits((logits, other), 2, 10), (logits + other) / 2)  # DeiT heads
    with pytest.raises(BenchError, match=r"returned \[2, 64\], no \(2, 10\) logits"):
        select_logits(features[1], 2, 10)


def test_a_distilled_vit_averages_its_two_heads(tmp_path: Path) -> None:
    network = create_architecture("vit_cifar_tiny_distilled")
    with torch.no_grad():
        for head, bias in ((network.head, 1.0), (network.head_dist, 3.0)):
            head.weight.zero_()
            head.bias.fill_(bias)
    torch.save(network.state_dict(), tmp_path / "deit.pth")
    loaded = load_model(tmp_path / "deit.pth")
    assert loaded.spec.arch == "vit_cifar_tiny_distilled"
    torch.testing.assert_close(loaded.module(images()), torch.full((2, 10), 2.0))  # (1 + 3) / 2


def test_device_is_honoured_and_the_module_is_in_eval_mode(tmp_path: Path) -> None:
    loaded = load_model(saved(tmp_path), device=torch.device("cpu"))
    assert not loaded.module.training
    assert {p.device.type for p in loaded.module.parameters()} == {"cpu"}
    assert loaded.num_parameters == sum(p.numel() for p in create_architecture("resnet8_b").parameters())


# --- wrong architecture, wrong class count ----------------------------------------------------------------------


def test_the_wrong_architecture_names_keys_and_the_likely_one(tmp_path: Path) -> None:
    path = saved(tmp_path, "resnet32_a")
    with pytest.raises(BenchError) as raised:
        load_model(path, arch="resnet32_b")
    message = str(raised.value)
    assert message.startswith("the checkpoint does not fit architecture resnet32_b: missing keys layer2.0.downsample")
    assert "unexpected keys linear.weight, linear.bias" in message
    assert message.endswith("it looks like resnet32_a (--arch resnet32_a)")


def test_a_depth_mismatch_is_a_shape_or_key_error_with_the_right_depth(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"it looks like resnet56_a"):
        load_model(saved(tmp_path, "resnet56_a"), arch="resnet20_a")


@pytest.mark.parametrize("arch", [None, "resnet8_b"])
def test_the_wrong_class_count_is_refused(tmp_path: Path, arch: str | None) -> None:
    path = saved(tmp_path, num_classes=100)
    assert load_model(path).spec.num_classes == 100
    with pytest.raises(BenchError, match=r"classifier fc has 100 classes but 10 were asked for"):
        load_model(path, arch=arch, num_classes=10)


def test_an_ambiguous_checkpoint_lists_the_candidates(tmp_path: Path, isolated_registry: None) -> None:
    registry.register_architecture(
        "resnet20_twin", family="user", source="test", description="", classifier=("linear",)
    )(lambda num_classes=10: create_architecture("resnet20_a", num_classes))
    path = saved(tmp_path, "resnet20_a")
    with pytest.raises(BenchError, match=r"fits several architectures \(resnet20_a, resnet20_twin\); pick one with"):
        load_model(path)
    assert load_model(path, arch="resnet20_twin").spec.arch == "resnet20_twin"


def test_a_repdistiller_style_feature_forward_is_unwrapped(tmp_path: Path, isolated_registry: None) -> None:
    class WithFeatures(torch.nn.Module):
        """Returns ([features...], logits) like RepDistiller's forward(x, is_feat=True)."""

        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.body = create_architecture("resnet8_b", num_classes)

        def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
            return [x.mean(dim=(2, 3))], self.body(x)

    registry.register_architecture("with_features", family="user", source="test", description="")(WithFeatures)
    network = WithFeatures().eval()
    torch.save(network.state_dict(), tmp_path / "feat.pth")
    loaded = load_model(tmp_path / "feat.pth", arch="with_features")
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PRESET_STATS[Preset.CIFAR10])
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(images()), network.body((images() - mean) / std))


def test_nothing_fits_names_the_closest(tmp_path: Path) -> None:
    state = create_architecture("resnet20_a").state_dict()
    del state["layer3.2.conv2.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(BenchError, match=r"no registered architecture fits .* closest is resnet20_a: missing keys "):
        load_model(tmp_path / "partial.pth")


# --- user architectures -------------------------------------------------------------------------------------------


def test_an_arch_module_file_is_registered_and_detected(tmp_path: Path, isolated_registry: None) -> None:
    from libkd_bench.models.user_architectures import load_arch_module

    names = load_arch_module(f"{EXAMPLE}:kd_layer_student")
    student = registry.create_architecture("kd_layer_student")
    torch.save({"model": student.state_dict(), "epoch": 3}, tmp_path / "student.pth")
    loaded = load_model(tmp_path / "student.pth", arch_modules=[f"{EXAMPLE}:kd_layer_student"])
    assert names == ["kd_layer_student"]
    assert (loaded.spec.arch, loaded.arch_detected) == ("kd_layer_student", True)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PRESET_STATS[Preset.CIFAR10])
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(images()), student.eval()((images() - mean) / std))
    # its KD layer is what tells it from resnet20_a: without the file nothing fits
    registry._ENTRIES.remove("kd_layer_student")
    with pytest.raises(BenchError, match="closest is resnet20_a: unexpected keys kd_layer"):
        load_model(tmp_path / "student.pth")


def test_arch_module_errors(tmp_path: Path, isolated_registry: None) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU here')\n")
    with pytest.raises(BenchError, match=r"importing --arch-module .*broken\.py failed: RuntimeError: no GPU here"):
        load_model(tmp_path / "x.pth", arch_modules=[f"{broken}:build"])
    with pytest.raises(BenchError, match=r"unknown builder in .*kd_layer_student\.py 'kd_student'; did you mean"):
        load_model(tmp_path / "x.pth", arch_modules=[f"{EXAMPLE}:kd_student"])
    with pytest.raises(BenchError, match="is not a Python file"):
        load_model(tmp_path / "x.pth", arch_modules=[str(tmp_path / "absent.py")])


def test_a_self_registering_module_needs_no_builder_name(tmp_path: Path, isolated_registry: None) -> None:
    module = tmp_path / "tiny_arch.py"
    module.write_text(
        textwrap.dedent(
            """
            from torch import nn
            from libkd_bench.models.registry import register_architecture

            @register_architecture(family="user", source="test", description="tiny", classifier=("fc",))
            def tiny_net(num_classes=10):
                return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))
            """
        )
    )
    from libkd_bench.models.user_architectures import load_arch_module

    assert load_arch_module(str(module)) == ["tiny_net"]
    assert load_arch_module(str(module)) == []  # imported once


def test_the_entry_point_group_provides_architectures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_registry: None
) -> None:
    package = tmp_path / "fake_kd_students"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def wide_linear(num_classes=10):
                '''A linear probe on raw pixels.'''
                return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))
            """
        )
    )
    info = tmp_path / "fake_kd_students-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-kd-students\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[libkd_bench.architectures]\nlinear_probe = fake_kd_students:wide_linear\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "linear_probe" in registry.list_architectures()
    entry = registry.get_architecture("linear_probe")
    assert (entry.family, entry.description) == ("user", "A linear probe on raw pixels.")
    torch.save(entry.build(10).state_dict(), tmp_path / "probe.pth")
    loaded = load_model(tmp_path / "probe.pth")  # detection imports every entry point
    assert loaded.spec.arch == "linear_probe"


# --- timm ---------------------------------------------------------------------------------------------------------


def test_a_timm_deit_is_resized_and_averages_its_heads(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    network = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, num_classes=10)
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.fill_(-1.0)
        network.head_dist.weight.zero_()
        network.head_dist.bias.copy_(torch.arange(10.0))
    torch.save({"model": network.state_dict()}, tmp_path / "deit.pth")
    with pytest.raises(BenchError, match=r"ViT \(depth 12, width 192, patch 16, .* --arch timm:NAME"):
        load_model(tmp_path / "deit.pth")  # detection never guesses timm models
    loaded = load_model(tmp_path / "deit.pth", arch="timm:deit_tiny_distilled_patch16_224")
    assert (loaded.spec.input_size, loaded.spec.interpolation, loaded.spec.preset) == (224, "bicubic", Preset.IMAGENET)
    logits = loaded.module(images())
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, ((torch.arange(10.0) - 1) / 2).expand(2, 10))
    with pytest.raises(BenchError, match=r"unknown timm model 'deit_tiny_distiled_patch16_224'; did you mean"):
        load_model(tmp_path / "deit.pth", arch="timm:deit_tiny_distiled_patch16_224")


def test_the_plain_torch_vit_computes_what_timm_deit_computes(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    network = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, num_classes=10)
    with torch.no_grad():
        for parameter in network.parameters():  # timm zero-initialises some tensors; make every one count
            parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(5)) * 0.02)
    torch.save(network.state_dict(), tmp_path / "deit.pth")
    preprocessing = SpecOverrides(preset="imagenet", interpolation="bicubic", arch_kwargs={"num_heads": 3})
    ours = load_model(tmp_path / "deit.pth", overrides=preprocessing)
    theirs = load_model(tmp_path / "deit.pth", arch="timm:deit_tiny_distilled_patch16_224")
    assert ours.spec.arch == "vit_cifar"
    assert (ours.spec.input_size, ours.spec.arch_kwargs["patch_size"], ours.spec.arch_kwargs["distilled"]) == (
        224,
        16,
        True,
    )
    torch.testing.assert_close(ours.module(images()), theirs.module(images()), rtol=1e-4, atol=1e-4)

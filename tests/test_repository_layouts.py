"""Checkpoints saved the way the public CIFAR-10 training repositories save them: detected without flags,
loaded with the repository's published normalisation, and computing what the network computes.

One random-weight fixture per registered layout of kuangliu/pytorch-cifar (``{"net", "acc", "epoch"}`` with
DataParallel's ``module.`` prefix), huyvnphan/PyTorch_CIFAR10 and chenyaofo/pytorch-cifar-models (plain state
dicts). The known answer: the loaded model's logits equal the network's own on images normalised by hand with
the repository's mean and std. On the meta device (no weights), every layout is detected as exactly one
architecture and has the parameter count of the upstream module it reproduces.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from conftest import synthetic_images

from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.models.loading.contents import find_state_dict
from libkd_bench.models.loading.detect import detect_architecture, signature
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.registry import ArchitectureEntry, get_architecture, registered_entries
from libkd_bench.models.spec import SpecOverrides

# family -> (published preset, how the repository writes a checkpoint)
REPOSITORIES = {
    "kuangliu": (Preset.CIFAR10_KUANGLIU, "net"),
    "huyvnphan": (Preset.CIFAR10_HUYVNPHAN, "plain"),
    "chenyaofo": (Preset.CIFAR10_KUANGLIU, "plain"),
}
SLOW_PARAMETERS = 12_000_000  # above this, writing and reading the fixture takes seconds


def repository_entries() -> list[ArchitectureEntry]:
    return [entry for entry in registered_entries() if entry.family in REPOSITORIES]


def _layouts() -> list[pytest.param]:
    params = []
    for entry in repository_entries():
        size = signature(entry, 10).num_parameters  # cached: detection reuses it
        marks = [pytest.mark.slow] if size > SLOW_PARAMETERS else []
        params.append(pytest.param(entry.name, marks=marks, id=entry.name))
    return params


def random_network(entry: ArchitectureEntry, seed: int = 0) -> torch.nn.Module:
    """The re-implementation with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    network = entry.build(10)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return network.eval()


def save_as_repository(network: torch.nn.Module, family: str, path: Path) -> None:
    weights = network.state_dict()
    if REPOSITORIES[family][1] == "net":  # kuangliu main.py: DataParallel on CUDA, then {'net', 'acc', 'epoch'}
        torch.save({"net": {f"module.{k}": v for k, v in weights.items()}, "acc": 93.02, "epoch": 187}, path)
    else:
        torch.save(weights, path)


def test_every_repository_has_layouts() -> None:
    families = {entry.family for entry in registered_entries()}
    assert set(REPOSITORIES) <= families
    assert {"resnet18_kuangliu", "resnet18_huyvnphan", "mobilenetv2_x1_0", "repvgg_a0"} <= {
        e.name for e in registered_entries()
    }
    assert set(UPSTREAM_PARAMETERS) <= {e.name for e in repository_entries()}


# Parameters of the upstream modules at the commits the docstrings cite (kuangliu: ``ResNeXt29_2x64d()``, ...;
# huyvnphan: ``googlenet()``, ``inception_v3()``), counted with ``sum(p.numel() for p in net.parameters())``.
UPSTREAM_PARAMETERS = {
    "resnext29_2x64d_kuangliu": 9_128_778,
    "resnext29_4x64d_kuangliu": 27_104_586,
    "resnext29_8x64d_kuangliu": 89_598_282,
    "resnext29_32x4d_kuangliu": 4_774_218,
    "dpn26_kuangliu": 11_574_842,
    "dpn92_kuangliu": 34_236_634,
    "senet18_kuangliu": 11_260_354,
    "regnetx_200mf_kuangliu": 2_321_946,
    "regnetx_400mf_kuangliu": 4_779_338,
    "regnety_400mf_kuangliu": 5_714_362,
    "shufflenetv2_0_5_kuangliu": 352_042,
    "shufflenetv2_1_0_kuangliu": 1_263_854,
    "shufflenetv2_1_5_kuangliu": 2_488_874,
    "shufflenetv2_2_0_kuangliu": 5_338_026,
    "efficientnet_b0_kuangliu": 3_599_686,
    "dla_kuangliu": 16_291_386,
    "googlenet_kuangliu": 6_166_250,
    "googlenet_huyvnphan": 5_490_986,
    "inception_v3_huyvnphan": 21_638_954,
}


@pytest.mark.parametrize(("name", "count"), UPSTREAM_PARAMETERS.items())
def test_parameter_count_is_the_upstream_modules(name: str, count: int) -> None:
    assert signature(get_architecture(name), 10).num_parameters == count


def test_every_layout_is_detected_as_exactly_one_architecture_from_its_keys() -> None:
    """The repository's file layout, on the meta device: the detection pass ``load_model`` runs, for every entry."""
    found = {}
    for entry in repository_entries():
        with torch.device("meta"):
            weights = entry.build(10).state_dict()
        if REPOSITORIES[entry.family][1] == "net":
            content = {"net": {f"module.{k}": v for k, v in weights.items()}, "acc": 93.02, "epoch": 187}
        else:
            content = weights
        found[entry.name] = [m.name for m in detect_architecture(find_state_dict(content, "ckpt.pth").layouts)]
    assert found == {name: [name] for name in found}


def test_kuangliu_and_repdistiller_shufflenet_v2_differ_only_in_the_stem_kernel() -> None:
    kuangliu = signature(get_architecture("shufflenetv2_1_0_kuangliu"), 10).shapes
    repdistiller = signature(get_architecture("shufflenet_v2"), 10).shapes
    assert kuangliu.keys() == repdistiller.keys()
    assert {k for k in kuangliu if kuangliu[k] != repdistiller[k]} == {"conv1.weight"}
    assert (kuangliu["conv1.weight"], repdistiller["conv1.weight"]) == ((24, 3, 3, 3), (24, 3, 1, 1))


@pytest.mark.parametrize("name", _layouts())
def test_layout_is_detected_and_computes_what_the_network_computes(name: str, tmp_path: Path) -> None:
    entry = get_architecture(name)
    preset, container = REPOSITORIES[entry.family]
    network = random_network(entry)
    path = tmp_path / "ckpt.pth"
    save_as_repository(network, entry.family, path)

    loaded = load_model(path)

    assert (loaded.spec.arch, loaded.arch_detected, loaded.spec.num_classes) == (name, True, 10)
    assert loaded.spec.preset is preset
    info = loaded.checkpoint
    expected_place = ("net", "module.") if container == "net" else ("", "")
    assert (info.location, info.stripped_prefix) == expected_place
    images = torch.from_numpy(synthetic_images(3)[0]).permute(0, 3, 1, 2).float() / 255.0
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PRESET_STATS[preset])
    with torch.no_grad():
        expected = network((images - mean) / std)
        actual = loaded.module(images)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_kuangliu_checkpoint_inspects_with_layout_preset_and_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ckpt.pth"
    save_as_repository(random_network(get_architecture("resnet18_kuangliu")), "kuangliu", path)

    code, out, _ = run_cli(["inspect", str(path)], capsys)

    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["architecture"] == "resnet18_kuangliu, 10 classes (detected)"
    assert fields["layout"].startswith("kuangliu/pytorch-cifar@49b7aa97")
    assert fields["input"].startswith("preset cifar10-kuangliu;")
    assert fields["weights"] == "under 'net', prefix 'module.' removed"
    assert (fields["metadata.acc"], fields["metadata.epoch"]) == ("93.02", "187")


def test_huyvnphan_mobilenet_v2_loads_as_chenyaofo_layout_and_takes_its_own_preset(tmp_path: Path) -> None:
    """The two repositories' MobileNetV2 share every key and shape; the preset is then the user's to name."""
    path = tmp_path / "mobilenet_v2.pt"
    torch.save(random_network(get_architecture("mobilenetv2_x1_0")).state_dict(), path)

    loaded = load_model(path)
    named = load_model(path, overrides=SpecOverrides(preset="cifar10-huyvnphan"))

    assert (loaded.spec.arch, loaded.spec.preset) == ("mobilenetv2_x1_0", Preset.CIFAR10_KUANGLIU)
    assert (named.spec.arch, named.spec.preset) == ("mobilenetv2_x1_0", Preset.CIFAR10_HUYVNPHAN)
    assert named.spec.std == (0.2471, 0.2435, 0.2616)


def test_vgg_layouts_of_three_repositories_tell_apart_by_head_shapes() -> None:
    """kuangliu's Linear(512) head, chenyaofo's 512-512-512 and huyvnphan's 4096-4096 heads."""
    from libkd_bench.models.loading.detect import signature

    heads = {}
    for name in ("vgg16_kuangliu", "vgg16_bn_chenyaofo", "vgg16_bn_huyvnphan"):
        shapes = signature(get_architecture(name), 10).shapes
        heads[name] = [
            shape for key, shape in shapes.items() if key.startswith("classifier") and key.endswith("weight")
        ]
    assert heads == {
        "vgg16_kuangliu": [(10, 512)],
        "vgg16_bn_chenyaofo": [(512, 512), (512, 512), (10, 512)],
        "vgg16_bn_huyvnphan": [(4096, 512), (4096, 4096), (10, 4096)],
    }

"""The architecture registry and detection from keys and shapes, checked on the meta device (no weights)."""

from __future__ import annotations

import pytest
import torch

from libkd_bench.core.errors import BenchError
from libkd_bench.models import registry
from libkd_bench.models.loading.detect import describe_mismatch, detect_architecture, signature
from libkd_bench.models.registry import create_architecture, get_architecture, is_architecture, list_architectures

FIXED = [e.name for e in registry.registered_entries() if e.infer_kwargs is None]


def meta_state(name: str, num_classes: int = 10, **kwargs: object) -> dict[str, torch.Tensor]:
    """A state dict of architecture ``name`` whose tensors have shapes but no storage."""
    with torch.device("meta"):
        return create_architecture(name, num_classes, **kwargs).state_dict()


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test disappear after it."""
    registry.registered_entries()
    monkeypatch.setattr(registry._ENTRIES, "_items", dict(registry._ENTRIES._items))


# Published parameter counts, rounded to two or three digits: akamaster's README table (ResNet-20/32/44/56/110:
# 0.27M/0.46M/0.66M/0.85M/1.7M) and the CIFAR-100 sizes quoted for RepDistiller's models in KD papers, less the
# classifier rows of their 90 extra classes.
@pytest.mark.parametrize(
    ("name", "millions"),
    [
        ("resnet20_a", 0.27),
        ("resnet32_a", 0.46),
        ("resnet44_a", 0.66),
        ("resnet56_a", 0.85),
        ("resnet110_a", 1.7),
        ("resnet8x4", 1.23 - 256 * 90 / 1e6),
        ("resnet32x4", 7.43 - 256 * 90 / 1e6),
        ("wrn_40_2", 2.25 - 128 * 90 / 1e6),
        ("wrn_16_2", 0.70 - 128 * 90 / 1e6),
        ("shufflenet_v1", 0.95 - 960 * 90 / 1e6),
        ("shufflenet_v2", 1.36 - 1024 * 90 / 1e6),
        ("mobile_half", 0.81 - 1280 * 90 / 1e6),
        ("vgg8_bn", 3.96 - 512 * 90 / 1e6),
        ("vgg13_bn", 9.46 - 512 * 90 / 1e6),
    ],
)
def test_parameter_counts_match_the_published_ones(name: str, millions: float) -> None:
    count = signature(get_architecture(name), 10).num_parameters
    assert count / 1e6 == pytest.approx(millions, rel=0.03)


def test_akamaster_resnet20_has_exactly_its_known_parameter_count() -> None:
    # 3x3x3x16 stem + 9 blocks + BN affine + 64x10 linear, as counted by akamaster's test(): 269,722
    assert sum(p.numel() for p in create_architecture("resnet20_a").parameters()) == 269_722


def test_list_architectures_filters_with_shell_patterns() -> None:
    assert list_architectures("resnet*_a") == [f"resnet{d}_a" for d in (110, 20, 32, 44, 56)]
    assert "wrn_28_10" in list_architectures()
    assert list_architectures("nothing*") == []


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(BenchError, match=r"unknown architecture 'resnet20'; did you mean .*resnet20_a"):
        get_architecture("resnet20")
    assert not is_architecture("resnet20")
    assert is_architecture("resnet20_b")
    with pytest.raises(BenchError, match="unknown architecture prefix 'tim'"):
        get_architecture("tim:resnet18")


def test_registering_a_name_twice_is_refused(isolated_registry: None) -> None:
    def builder(num_classes: int = 10) -> torch.nn.Module:
        return torch.nn.Linear(3, num_classes)

    registry.register_architecture("twice", family="user", source="test", description="")(builder)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_architecture("twice", family="user", source="test", description="")(builder)


@pytest.mark.parametrize("name", FIXED)
def test_every_fixed_architecture_is_detected_from_its_own_keys(name: str) -> None:
    state = meta_state(name, 7)
    matches = detect_architecture([("", state)])
    assert [(m.name, m.num_classes) for m in matches] == [(name, 7)]


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.module.", "student."])
def test_detection_strips_wrapper_prefixes(prefix: str) -> None:
    state = {prefix + k: v for k, v in meta_state("resnet44_b").items()}
    layouts = [("", state), (prefix, meta_state("resnet44_b"))]
    (match,) = detect_architecture(layouts)
    assert (match.name, match.layout) == ("resnet44_b", prefix)


@pytest.mark.parametrize(("depth", "widen"), [(16, 4), (22, 3), (28, 2)])
def test_detection_reads_wrn_depth_and_width(depth: int, widen: int) -> None:
    state = meta_state("wrn", depth=depth, widen_factor=widen)
    (match,) = detect_architecture([("", state)])
    assert (match.name, dict(match.kwargs)) == ("wrn", {"depth": depth, "widen_factor": widen})


def test_named_wrn_sizes_win_over_the_parametric_family() -> None:
    (match,) = detect_architecture([("", meta_state("wrn", depth=40, widen_factor=2))])
    assert match.label() == "wrn_40_2"


def test_detection_reads_vit_size_and_distillation_token() -> None:
    state = meta_state("vit_cifar", depth=6, embed_dim=256, num_heads=8, mlp_ratio=2.0, distilled=True)
    with pytest.raises(BenchError, match=r"ViT \(depth 6, width 256, patch 4, distillation token\).*num_heads"):
        detect_architecture([("", state)])
    (match,) = detect_architecture([("", state)], options={"num_heads": 8})
    assert match.name == "vit_cifar"
    assert dict(match.kwargs) == {
        "depth": 6,
        "embed_dim": 256,
        "num_heads": 8,
        "mlp_ratio": 2.0,
        "distilled": True,
        "img_size": 32,
        "patch_size": 4,
        "qkv_bias": True,
    }


@pytest.mark.parametrize("name", ["vit_cifar_tiny", "vit_cifar_tiny_distilled", "vit_cifar_small"])
def test_named_vit_sizes_need_no_head_count(name: str) -> None:
    assert [m.name for m in detect_architecture([("", meta_state(name))])] == [name]


def test_two_architectures_with_one_layout_are_an_ambiguity(isolated_registry: None) -> None:
    for twin in ("twin_a", "twin_b"):
        registry.register_architecture(twin, family="user", source="test", description="", classifier=("linear",))(
            lambda num_classes=10: get_architecture("resnet20_a").build(num_classes)
        )
    names = {m.name for m in detect_architecture([("", meta_state("resnet20_a"))])}
    assert names == {"resnet20_a", "twin_a", "twin_b"}


def test_mismatch_names_the_first_missing_and_unexpected_keys() -> None:
    a = signature(get_architecture("resnet20_a"), 10).shapes
    b = signature(get_architecture("resnet20_b"), 10).shapes
    # missing: 5 tensors per projection shortcut (conv + BN) in layer2.0 and layer3.0, and fc's 2
    assert describe_mismatch(b, a) == (
        "missing keys layer2.0.downsample.0.weight, layer2.0.downsample.1.weight, layer2.0.downsample.1.bias "
        "(+9 more); unexpected keys linear.weight, linear.bias"
    )

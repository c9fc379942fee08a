"""``libkd-bench list-models`` and ``libkd-bench inspect``, and the shared model-loading flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.loading.cli_args import (
    add_model_arguments,
    load_model_from_args,
    overrides_from_args,
    parse_arch_options,
)
from libkd_bench.models.registry import create_architecture


def test_list_models_shows_every_family_and_the_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-models"], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["resnet20_a"][1:5] == ["cifar_resnet_a", "0.27M", "imagenet", "32"]
    assert rows["wrn_28_10"][1:3] == ["wrn", "36.48M"]
    assert "zoo:akamaster-resnet56" in rows


def test_list_models_filters_and_refuses_an_empty_match(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-models", "wrn_*"], capsys)
    names = [line.split()[0] for line in out.splitlines()[1:] if not line.startswith("timm:")]
    assert (code, names) == (0, ["wrn_16_1", "wrn_16_2", "wrn_28_10", "wrn_40_1", "wrn_40_2"])
    code, out, err = run_cli(["list-models", "resnet9*"], capsys)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "no architecture matches 'resnet9*'" in err


def test_list_models_lists_timm_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-models", "timm:deit_tiny_*"], capsys)
    assert code == 0
    assert "timm:deit_tiny_distilled_patch16_224" in out.split()


def test_inspect_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    network = create_architecture("wrn", 100, depth=10, widen_factor=2)
    path = tmp_path / "wrn.pth"
    torch.save({"net": {f"module.{k}": v for k, v in network.state_dict().items()}, "epoch": 199}, path)
    code, out, _ = run_cli(["inspect", str(path)], capsys)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["format"] == "torch-zip"
    assert fields["weights"] == "under 'net', prefix 'module.' removed"
    assert fields["architecture"] == "wrn(depth=10, widen_factor=2), 100 classes (detected)"
    assert fields["parameters"] == f"{sum(p.numel() for p in network.parameters()):,}"
    assert fields["input"] == "preset cifar10; 32x32 (bilinear resize)"
    assert fields["metadata.epoch"] == "199"
    code, out, _ = run_cli(["inspect", str(path), "--json", "--preset", "cifar100"], capsys)
    report = json.loads(out)
    assert (code, report["architecture"], report["arch_detected"]) == (0, "wrn", True)
    assert report["spec"]["arch_kwargs"] == {"depth": 10, "widen_factor": 2}
    assert report["spec"]["preset"] == "cifar100"
    assert report["num_tensors"] == len(network.state_dict())
    assert report["checkpoint"]["metadata"] == {"epoch": 199}


def test_inspect_reports_an_undetected_architecture_without_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vit.pth"
    torch.save(create_architecture("vit_cifar", 10, depth=2, embed_dim=64, num_heads=4).state_dict(), path)
    code, out, _ = run_cli(["inspect", str(path)], capsys)
    assert code == 0
    assert "not detected: the checkpoint is a ViT (depth 2, width 64, patch 4)" in out
    assert "parameters" not in out
    code, out, _ = run_cli(["inspect", str(path), "--arch-option", "num_heads=4"], capsys)
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert code == 0
    assert fields["architecture"] == (
        "vit_cifar(depth=2, distilled=False, embed_dim=64, img_size=32, mlp_ratio=4.0, num_heads=4, patch_size=4, "
        "qkv_bias=True), 10 classes (detected)"
    )


def bad_checkpoints(tmp_path: Path) -> dict[str, Path]:
    """One file per problem the command line must report with exit code 2 and one line."""
    names = ("empty", "garbage", "truncated", "nan", "student", "pickled-module")
    paths = {name: tmp_path / f"{name}.pth" for name in names}
    paths["empty"].write_bytes(b"")
    paths["garbage"].write_bytes(b"\x00garbage" * 9)
    state = create_architecture("resnet8_b").state_dict()
    torch.save(state, paths["student"])
    paths["truncated"].write_bytes(paths["student"].read_bytes()[:-300])
    torch.save({**state, "fc.bias": torch.full((10,), float("nan"))}, paths["nan"])
    torch.save(create_architecture("resnet8_b"), paths["pickled-module"])
    return paths


@pytest.mark.parametrize(
    ("name", "flags", "message"),
    [
        ("empty", [], "is empty"),
        ("garbage", [], "not a torch.save"),
        ("truncated", [], "truncated or damaged"),
        ("nan", [], "NaN or infinite values in fc.bias"),
        ("pickled-module", [], "which safe (weights-only) loading refuses"),
        ("student", ["--arch", "resnet20_a"], "does not fit architecture resnet20_a"),
        ("student", ["--num-classes", "100"], "has 10 classes but 100 were asked for"),
        ("student", ["--arch", "resnet_20"], "unknown architecture 'resnet_20'; did you mean"),
    ],
)
def test_inspect_problems_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, flags: list[str], message: str
) -> None:
    code, out, err = run_cli(["inspect", str(bad_checkpoints(tmp_path)[name]), *flags], capsys)
    assert out == ""
    assert_one_line_error(code, err, message)


def parse_model_flags(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    return parser.parse_args(argv)


def test_model_flags_become_overrides() -> None:
    args = parse_model_flags(
        [
            *("--arch", "vit_cifar", "--arch-option", "num_heads=8", "--arch-option", "qkv_bias=false"),
            *("--mean", "0.5", "0.5", "0.5", "--std", "0.2", "0.2", "0.2", "--input-size", "64"),
        ]
    )
    overrides = overrides_from_args(args)
    assert (overrides.arch, dict(overrides.arch_kwargs)) == ("vit_cifar", {"num_heads": 8, "qkv_bias": False})
    assert (overrides.mean, overrides.std, overrides.input_size) == ((0.5,) * 3, (0.2,) * 3, 64)
    assert parse_arch_options(["name=tiny", "ratio=0.5"]) == {"name": "tiny", "ratio": 0.5}


def test_load_model_from_args_honours_every_flag(tmp_path: Path) -> None:
    path = tmp_path / "r.pth"
    torch.save(create_architecture("resnet8_b", 100).state_dict(), path)
    args = parse_model_flags(["--preset", "cifar100", "--num-classes", "100", "--interpolation", "nearest"])
    loaded = load_model_from_args(str(path), args)
    assert (loaded.spec.preset, loaded.spec.num_classes, loaded.spec.interpolation.value) == (
        Preset.CIFAR100,
        100,
        "nearest",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arch-option", "8"], "must be KEY=VALUE"),
        (["--preset", "imagenet", "--mean", "0", "0", "0", "--std", "1", "1", "1"], "not both"),
        (["--mean", "0", "0", "0"], "mean and std together"),
    ],
)
def test_bad_model_flags(argv: list[str], message: str) -> None:
    from libkd_bench.core.errors import BenchError

    with pytest.raises(BenchError, match=message):
        overrides_from_args(parse_model_flags(argv))

"""Checkpoint files of every format, for every registered architecture, load back to the same logits.

Also: every wrapper key with every key prefix, metadata beside the weights, and the files that must be refused
with one line (empty, truncated, garbage, malicious pickles, pickled modules without opt-in, NaN weights).
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import sweep_param
from safetensors.torch import save_file

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS
from libkd_bench.core.torch_runtime import torch_threads
from libkd_bench.models import registry
from libkd_bench.models.loading.contents import PREFIXES, WRAPPER_KEYS
from libkd_bench.models.loading.detect import signature
from libkd_bench.models.loading.formats import UnsafePickleWarning
from libkd_bench.models.loading.load import LoadedModel, load_model
from libkd_bench.models.registry import create_architecture, list_architectures
from libkd_bench.models.spec import SpecOverrides

# Parametric families are saved at a size no named entry has, so detection must read it from the shapes.
PARAMETRIC = {
    "wrn": {"depth": 10, "widen_factor": 2},
    "vit_cifar": {"depth": 2, "embed_dim": 64, "num_heads": 2, "mlp_ratio": 2.0, "distilled": True},
}
LOAD_OPTIONS = {"vit_cifar": {"num_heads": 2}}  # the one thing no weight reveals
NESTINGS = [(w, p) for w in WRAPPER_KEYS for p in PREFIXES]
FORMATS = ("zip", "legacy", "safetensors", "torchscript", "namespace", "nested")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Two-image forward passes run fastest on one thread, and never stall on OpenMP threads of busy cores."""
    with torch_threads(1):
        yield


@functools.cache
def reference(name: str) -> torch.nn.Module:
    """Architecture ``name`` in eval mode with random weights and non-trivial BatchNorm statistics."""
    network = create_architecture(name, 10, **PARAMETRIC.get(name, {})).eval()
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return network


def images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def expected_logits(network: torch.nn.Module, loaded: LoadedModel) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (loaded.spec.mean, loaded.spec.std))
    with torch.no_grad():
        return network((images() - mean) / std)


def save_torchscript(network: torch.nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated and traces with notes; the archive is what counts
        torch.jit.save(torch.jit.trace(network, images(), check_trace=False), str(path))


def write(fmt: str, network: torch.nn.Module, path: Path, nesting: tuple[str, str] = ("model", "module.")) -> None:
    state = network.state_dict()
    if fmt == "zip":
        torch.save(state, path)
    elif fmt == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"epoch": "240"})
    elif fmt == "torchscript":
        save_torchscript(network, path)
    elif fmt == "namespace":
        args = argparse.Namespace(model="x", lr=0.05, epochs=240, path=Path("/runs/x"))
        torch.save({"model": state, "opt": args, "epoch": 240, "best_acc": torch.tensor(71.5)}, path)
    elif fmt == "nested":
        wrapper, prefix = nesting
        torch.save({wrapper: {prefix + k: v for k, v in state.items()}}, path)
    else:
        raise AssertionError(fmt)


def family_representatives() -> list[str]:
    """The smallest fixed architecture of every registered family: each family's layout code in every format."""
    smallest: dict[str, tuple[int, str]] = {}
    for entry in registry.registered_entries():
        if entry.infer_kwargs is None:
            size = (signature(entry, 10).num_parameters, entry.name)
            smallest[entry.family] = min(smallest.get(entry.family, size), size)
    return sorted(name for _, name in smallest.values())


def load_and_compare(name: str, path: Path) -> LoadedModel:
    """Load ``path`` with detection and check it reproduces ``reference(name)`` exactly."""
    loaded = load_model(path, overrides=SpecOverrides(arch_kwargs=LOAD_OPTIONS.get(name, {})))
    assert loaded.arch_detected
    assert loaded.spec.arch == name
    assert PARAMETRIC.get(name, {}).items() <= loaded.spec.arch_kwargs.items()
    stored = reference(name).state_dict()
    loaded_state = loaded.module.network.state_dict()
    assert loaded_state.keys() == stored.keys()
    assert all(torch.equal(loaded_state[k], stored[k]) for k in stored)
    return loaded


@pytest.mark.parametrize("name", [sweep_param(name) for name in list_architectures()])
def test_every_architecture_round_trips_with_detection(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.pth"
    write("zip", reference(name), path)
    loaded = load_and_compare(name, path)
    logits = loaded.module(images())
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, expected_logits(reference(name), loaded), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [*family_representatives(), *PARAMETRIC])
def test_every_format_round_trips(name: str, fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.{fmt}"
    write(fmt, reference(name), path, NESTINGS[sorted(list_architectures()).index(name) % len(NESTINGS)])
    loaded = load_and_compare(name, path)
    assert loaded.checkpoint.format == {"legacy": "torch-legacy"}.get(fmt, loaded.checkpoint.format)


@pytest.mark.parametrize(("wrapper", "prefix"), NESTINGS)
def test_every_wrapper_key_with_every_prefix(wrapper: str, prefix: str, tmp_path: Path) -> None:
    network = reference("resnet8_b")
    path = tmp_path / "nested.pth"
    write("nested", network, path, (wrapper, prefix))
    loaded = load_model(path)
    assert (loaded.checkpoint.location, loaded.checkpoint.stripped_prefix) == (wrapper, prefix)
    torch.testing.assert_close(loaded.module(images()), expected_logits(network, loaded))


def test_deep_nesting_chained_prefixes_and_metadata(tmp_path: Path) -> None:
    network = reference("resnet20_a")
    state = {f"_orig_mod.module.{k}": v.half() for k, v in network.state_dict().items()}
    args = argparse.Namespace(arch="resnet20", lr=0.1, milestones=[100, 150], save=Path("/runs/s"))
    optimizer = {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.1}]}
    path = tmp_path / "deep.pth"
    torch.save({"student": {"state_dict": state}, "args": args, "optimizer": optimizer, "epoch": 7}, path)
    loaded = load_model(path)
    info = loaded.checkpoint
    assert (loaded.spec.arch, info.location) == ("resnet20_a", "student/state_dict")
    assert info.stripped_prefix == "_orig_mod.module."
    assert info.other_entries == ("optimizer",)
    assert dict(info.metadata) == {
        "epoch": 7,
        "args": {"arch": "resnet20", "lr": 0.1, "milestones": [100, 150], "save": "/runs/s"},
    }
    # float16 weights run in float32
    assert next(loaded.module.parameters()).dtype == torch.float32


def test_metadata_of_each_format(tmp_path: Path) -> None:
    network = reference("resnet8_b")
    write("namespace", network, tmp_path / "ns.pth")
    write("safetensors", network, tmp_path / "w.safetensors")
    namespace = load_model(tmp_path / "ns.pth").checkpoint
    assert namespace.format == "torch-zip"
    assert dict(namespace.metadata) == {
        "opt": {"model": "x", "lr": 0.05, "epochs": 240, "path": "/runs/x"},
        "epoch": 240,
        "best_acc": 71.5,
    }
    safetensors = load_model(tmp_path / "w.safetensors").checkpoint
    assert (safetensors.format, dict(safetensors.metadata)) == ("safetensors", {"epoch": "240"})


def test_a_model_prefix_that_belongs_to_the_architecture_is_kept(tmp_path: Path) -> None:
    class Holder(torch.nn.Module):
        def __init__(self, num_classes: int = 10) -> None:
            super().__init__()
            self.model = torch.nn.Linear(4, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x.mean(dim=(2, 3)).repeat(1, 2)[:, :4])

    from libkd_bench.models import registry

    registry.registered_entries()
    entry = registry.ArchitectureEntry("holder_test", Holder, "user", "test", "")
    path = tmp_path / "holder.pth"
    torch.save(Holder().state_dict(), path)
    with registry._ENTRIES.isolated():
        registry._ENTRIES.add("holder_test", entry)
        loaded = load_model(path, arch="holder_test")
    assert loaded.checkpoint.stripped_prefix == ""


# --- files that must be refused, each with one line ------------------------------------------------------


class Payload:
    """Unpickling this creates a directory: proof that code from the checkpoint ran."""

    marker: Path

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return os.mkdir, (str(self.marker),)


def malicious_files(tmp_path: Path) -> dict[str, Path]:
    Payload.marker = tmp_path / "payload-ran"
    state = reference("resnet8_b").state_dict()
    files = {}
    for kind in ("zip", "legacy"):
        files[kind] = tmp_path / f"evil-{kind}.pth"
        torch.save({"state_dict": state, "x": Payload()}, files[kind], _use_new_zipfile_serialization=kind == "zip")
    files["raw"] = tmp_path / "evil.pkl"
    files["raw"].write_bytes(pickle.dumps({"state_dict": {}, "x": Payload()}, protocol=2))
    return files


@pytest.mark.parametrize("kind", ["zip", "legacy", "raw"])
def test_a_malicious_pickle_is_refused_without_running(kind: str, tmp_path: Path) -> None:
    path = malicious_files(tmp_path)[kind]
    with pytest.raises(BenchError) as raised:
        load_model(path)
    message = str(raised.value)
    assert "\n" not in message
    assert "--unsafe-pickle" in message
    assert not Payload.marker.exists()


def test_the_unsafe_opt_in_warns_and_really_unpickles(tmp_path: Path) -> None:
    path = malicious_files(tmp_path)["zip"]
    with pytest.warns(UnsafePickleWarning, match=r"posix\.mkdir"):
        loaded = load_model(path, unsafe_pickle=True)
    assert Payload.marker.exists()  # the opt-in is what let it run: the refusal above is not vacuous
    assert loaded.spec.arch == "resnet8_b"
    assert dict(loaded.checkpoint.metadata) == {"x": None}  # what os.mkdir returned


def test_a_whole_pickled_module_needs_the_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "module.pth"
    torch.save(reference("resnet8_b"), path)
    with pytest.raises(
        BenchError, match=r"needs libkd_bench\.models\.architectures\.cifar_resnet\.CifarResNetB .*--unsafe-pickle"
    ):
        load_model(path)
    with pytest.warns(UnsafePickleWarning):
        loaded = load_model(path, unsafe_pickle=True)
    torch.testing.assert_close(loaded.module(images()), expected_logits(reference("resnet8_b"), loaded))


def broken_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    state = reference("resnet8_b").state_dict()
    buffers = {}
    for kind in ("zip", "legacy"):
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=kind == "zip")
        buffers[kind] = buffer.getvalue()
    cases = {
        "empty": (b"", "is empty"),
        "truncated-zip": (buffers["zip"][: len(buffers["zip"]) // 2], "truncated or damaged"),
        "truncated-zip-head": (buffers["zip"][:40], "truncated or damaged"),
        "truncated-legacy": (buffers["legacy"][: len(buffers["legacy"]) // 2], "truncated or damaged"),
        "truncated-legacy-head": (buffers["legacy"][:20], "truncated or damaged"),
        "garbage": (bytes(range(7, 256)) * 40, "not a torch.save, safetensors or TorchScript file"),
        "garbage-pickle-like": (b"\x80" + bytes(range(256)) * 4, "cannot be read safely"),
        "text": (b"hello, world\n", "not a torch.save"),
        "safetensors-truncated": (b"\x40\x00\x00\x00\x00\x00\x00\x00{" + b"x" * 70, "safetensors checkpoint"),
    }
    files = {}
    for name, (data, expected) in cases.items():
        files[name] = (tmp_path / f"{name}.pth", expected)
        files[name][0].write_bytes(data)
    return files


@pytest.mark.parametrize(
    "kind",
    [
        "empty",
        "truncated-zip",
        "truncated-zip-head",
        "truncated-legacy",
        "truncated-legacy-head",
        "garbage",
        "garbage-pickle-like",
        "text",
        "safetensors-truncated",
    ],
)
def test_damaged_files_give_one_line(kind: str, tmp_path: Path) -> None:
    path, expected = broken_files(tmp_path)[kind]
    with pytest.raises(BenchError, match=expected) as raised:
        load_model(path)
    assert "\n" not in str(raised.value)
    assert str(path) in str(raised.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="does not exist"):
        load_model(tmp_path / "absent.pth")
    with pytest.raises(BenchError, match="is a directory"):
        load_model(tmp_path)


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    state = dict(reference("resnet8_b").state_dict())
    state["layer1.0.conv2.weight"] = state["layer1.0.conv2.weight"].clone()
    state["layer1.0.conv2.weight"][0, 0, 0, 0] = float("nan")
    state["fc.bias"] = torch.full_like(state["fc.bias"], float("inf"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(BenchError, match=r"NaN or infinite values in layer1\.0\.conv2\.weight \(\+1 more tensors\)"):
        load_model(tmp_path / "nan.pth")


def test_a_dict_without_weights_says_what_it_found(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "no-weights.pth")
    with pytest.raises(BenchError, match="has no weights: found epoch, optimizer"):
        load_model(tmp_path / "no-weights.pth")


def test_the_preprocessing_default_is_the_architectures(tmp_path: Path) -> None:
    for name, preset in (("resnet8_b", "cifar10"), ("resnet20_a", "imagenet")):
        torch.save(reference(name).state_dict(), tmp_path / f"{name}.pth")
        loaded = load_model(tmp_path / f"{name}.pth")
        assert loaded.spec.to_json()["preset"] == preset
        assert loaded.spec.mean == PRESET_STATS[loaded.spec.preset][0]

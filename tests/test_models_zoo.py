"""zoo:NAME: local mirror, download cache, hash pinning and the offline error, without any network access."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from conftest import SHARED_CHECKPOINTS

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import Preset
from libkd_bench.models import zoo
from libkd_bench.models.loading.load import load_model
from libkd_bench.models.registry import create_architecture
from libkd_bench.models.spec import SpecOverrides


@pytest.fixture
def synthetic_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.ZooEntry:
    """A zoo entry for a checkpoint written here, served from ``tmp_path/origin`` by a file:// URL."""
    origin = tmp_path / "origin"
    origin.mkdir()
    path = origin / "tiny-0123abcd.th"
    torch.save({"state_dict": create_architecture("resnet8_b").state_dict(), "best_prec1": 55.5}, path)
    entry = zoo.ZooEntry(
        name="tiny",
        url=path.as_uri(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        spec=SpecOverrides(arch="resnet8_b", preset=Preset.CIFAR100),
        description="test entry",
    )
    monkeypatch.setitem(zoo.ZOO, "tiny", entry)
    monkeypatch.delenv(zoo.MIRROR_ENV, raising=False)
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    return entry


def test_a_mirror_file_is_used_and_its_entry_sets_the_spec(
    synthetic_entry: zoo.ZooEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(zoo.MIRROR_ENV, str(tmp_path / "origin"))
    loaded = load_model("zoo:tiny")
    assert loaded.checkpoint.zoo == "tiny"
    assert loaded.checkpoint.sha256 == synthetic_entry.sha256
    assert loaded.checkpoint.path == "zoo:tiny"  # recorded by its zoo name, wherever the file was read
    assert (loaded.spec.arch, loaded.spec.preset) == ("resnet8_b", Preset.CIFAR100)
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_a_mirror_file_with_another_hash_is_refused(
    synthetic_entry: zoo.ZooEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save({"state_dict": create_architecture("resnet8_b").state_dict()}, mirror / synthetic_entry.filename)
    monkeypatch.setenv(zoo.MIRROR_ENV, str(mirror))
    with pytest.raises(BenchError, match=r"zoo:tiny: .* has sha256 .*not the pinned .* different or damaged file"):
        load_model("zoo:tiny")


def test_download_once_into_the_cache(synthetic_entry: zoo.ZooEntry, tmp_path: Path) -> None:
    first = zoo.fetch("tiny")
    assert first == tmp_path / "cache" / "tiny-0123abcd.th"
    (tmp_path / "origin" / "tiny-0123abcd.th").unlink()  # the origin is gone: the cache must serve
    assert zoo.fetch("tiny") == first
    assert load_model("zoo:tiny").checkpoint.metadata == {"best_prec1": 55.5}


def test_a_download_with_another_hash_is_not_kept(
    synthetic_entry: zoo.ZooEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(zoo.ZOO, "tiny", zoo.ZooEntry("tiny", synthetic_entry.url, "0" * 64, synthetic_entry.spec, ""))
    with pytest.raises(BenchError, match="no longer has the pinned sha256"):
        zoo.fetch("tiny")
    assert not (tmp_path / "cache" / "tiny-0123abcd.th").exists()


def test_offline_without_a_mirror_is_one_line(synthetic_entry: zoo.ZooEntry, monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = zoo.ZooEntry(
        "tiny", "http://127.0.0.1:9/tiny-0123abcd.th", synthetic_entry.sha256, SpecOverrides(), ""
    )
    monkeypatch.setitem(zoo.ZOO, "tiny", unreachable)
    monkeypatch.setattr(zoo, "DOWNLOAD_TIMEOUT_S", 2)
    with pytest.raises(BenchError) as raised:
        load_model("zoo:tiny")
    message = str(raised.value)
    assert message.startswith("zoo:tiny: cannot download http://127.0.0.1:9/tiny-0123abcd.th (")
    assert message.endswith(f"put tiny-0123abcd.th in a folder and set {zoo.MIRROR_ENV} to it")
    assert "\n" not in message


def test_unknown_zoo_names_get_close_matches() -> None:
    with pytest.raises(BenchError, match=r"unknown zoo checkpoint 'akamaster-resnet21'; did you mean .*resnet20"):
        load_model("zoo:akamaster-resnet21")


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(name for name, entry in zoo.ZOO.items() if entry.bundled is None))
def test_the_pinned_hashes_are_those_of_the_published_files(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not SHARED_CHECKPOINTS.is_dir():
        pytest.skip(f"shared checkpoints not found at {SHARED_CHECKPOINTS}")
    monkeypatch.setenv(zoo.MIRROR_ENV, str(SHARED_CHECKPOINTS))
    entry = zoo.ZOO[name]
    assert zoo.fetch(name) == SHARED_CHECKPOINTS / entry.filename
    assert entry.url.startswith("https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/")
    assert entry.filename.split("-")[1].startswith(entry.sha256[:8])  # akamaster names files by hash prefix


@pytest.mark.parametrize("name", sorted(name for name, entry in zoo.ZOO.items() if entry.bundled is not None))
def test_every_bundled_model_is_shipped_small_verified_and_loads(name: str) -> None:
    entry = zoo.ZOO[name]
    path = zoo.fetch(name)
    assert path.parent == zoo.BUNDLED_DIR
    assert path.stat().st_size < 5 * 2**20  # committed weights stay small
    assert entry.recipe == name
    loaded = load_model(f"zoo:{name}")
    assert loaded.spec.arch == entry.spec.arch
    assert loaded.checkpoint.sha256 == entry.sha256


def test_a_damaged_bundled_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = next(name for name, entry in zoo.ZOO.items() if entry.bundled is not None)
    damaged = tmp_path / zoo.ZOO[name].filename
    damaged.write_bytes(b"not the weights")
    monkeypatch.setattr(zoo, "BUNDLED_DIR", tmp_path)
    with pytest.raises(BenchError, match="not the pinned"):
        zoo.fetch(name)


@pytest.mark.slow
@pytest.mark.shared
def test_bundled_models_reproduce_their_recorded_clean_accuracy() -> None:
    """Each bundled model's sidecar records its clean accuracy on the 2,000-image shared subset; scoring it here
    (CPU, float32) must count exactly the same correct images."""
    import json

    import numpy as np
    from conftest import SHARED_TEST_NPZ

    from libkd_bench.datasets_gen.sources import load_source
    from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

    if not SHARED_TEST_NPZ.is_file():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_TEST_NPZ}")
    split = load_source(f"npz:{SHARED_TEST_NPZ}", limit=2000)
    for name, entry in sorted(zoo.ZOO.items()):
        if entry.bundled is None:
            continue
        recorded = json.loads((zoo.BUNDLED_DIR / f"{entry.bundled}.json").read_text())["training"]
        engine = ForwardEngine(load_model(f"zoo:{name}").module, EngineConfig("cpu", 250))
        predicted = engine.set_logits(split.images[None])[0].argmax(axis=1)
        assert int((predicted == split.labels).sum()) == round(recorded["clean_accuracy"] * 2000), name
        assert np.isfinite(recorded["train_seconds"])

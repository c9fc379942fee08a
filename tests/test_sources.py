"""Sources of the clean split: npz, folder and the official CIFAR-10 python batches."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_images

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen import cifar10
from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
from libkd_bench.datasets_gen.sources import DATA_ENV, balanced_subset, load_source


def write_official_batch(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """A test_batch in the official format: dict with 'data' (N, 3072) uint8 in CHW order and 'labels' list."""
    folder = root / cifar10.BATCHES_DIR
    folder.mkdir(parents=True)
    batch = {
        "batch_label": "testing batch 1 of 1",
        "labels": [int(v) for v in labels],
        "data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
        "filenames": [f"img_{i}.png" for i in range(len(images))],
    }
    with open(folder / cifar10.TEST_BATCH, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": len(images)}, handle)
    return folder / cifar10.TEST_BATCH


def test_cifar10_reads_official_batch_format(tmp_path: Path) -> None:
    images, labels = synthetic_images(25)
    write_official_batch(tmp_path, images, labels)
    split = load_source("cifar10", data_root=tmp_path)
    np.testing.assert_array_equal(split.images, images)
    np.testing.assert_array_equal(split.labels, labels)
    assert split.info.kind.value == "cifar10"
    assert split.info.id.startswith("cifar10-")


def test_cifar10_data_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = synthetic_images(10)
    write_official_batch(tmp_path, images, labels)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert load_source("cifar10").info.n == 10


def test_cifar10_offline_without_copy_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(BenchError) as info:
        load_source("cifar10", data_root=tmp_path / "empty")
    message = str(info.value)
    assert "could not be downloaded" in message
    assert "--source npz:PATH" in message
    assert "\n" not in message


def test_cifar10_batch_that_runs_code_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    folder = tmp_path / cifar10.BATCHES_DIR
    folder.mkdir()
    (folder / cifar10.TEST_BATCH).write_bytes(pickle.dumps({"data": Payload(), "labels": []}))
    with pytest.raises(BenchError, match="not a CIFAR-10 python batch"):
        load_source("cifar10", data_root=tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_npz_source_round_trip_and_id(synthetic_npz: Path) -> None:
    split = load_source(f"npz:{synthetic_npz}")
    with np.load(synthetic_npz) as data:
        np.testing.assert_array_equal(split.images, data["x"])
    again = load_source(f"npz:{synthetic_npz}")
    assert split.info.sha256 == again.info.sha256
    assert split.info.id == f"npz-{split.info.sha256[:16]}"


def test_npz_content_changes_change_the_id(tmp_path: Path) -> None:
    images, labels = synthetic_images(20)
    np.savez(tmp_path / "a.npz", x=images, y=labels)
    images[0, 0, 0, 0] ^= 1
    np.savez(tmp_path / "b.npz", x=images, y=labels)
    assert load_source(f"npz:{tmp_path / 'a.npz'}").info.id != load_source(f"npz:{tmp_path / 'b.npz'}").info.id


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 32, 32, 3), np.uint8)}, "lacks array"),
        ({"x": np.zeros((4, 32, 32, 3), np.float32), "y": np.zeros(4, int)}, "must be uint8"),
        ({"x": np.zeros((4, 28, 28, 3), np.uint8), "y": np.zeros(4, int)}, "must be uint8"),
        ({"x": np.zeros((4, 32, 32, 3), np.uint8), "y": np.zeros(3, int)}, "labels of shape"),
        ({"x": np.zeros((4, 32, 32, 3), np.uint8), "y": np.full(4, 10)}, "labels must be integers"),
    ],
)
def test_npz_source_rejects_bad_arrays(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BenchError, match=message):
        load_source(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_source_rejects_corrupt_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(BenchError, match="cannot be read"):
        load_source(f"npz:{tmp_path / 'corrupt.npz'}")
    with pytest.raises(BenchError, match="does not exist"):
        load_source(f"npz:{tmp_path / 'missing.npz'}")


def test_shared_npz_source(shared_test_npz: Path) -> None:
    split = load_source(f"npz:{shared_test_npz}")
    assert split.images.shape == (10000, 32, 32, 3)
    assert np.bincount(split.labels).tolist() == [1000] * 10


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / CIFAR10_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:04d}.png")


def test_folder_source_reads_png_tree_in_class_order(tmp_path: Path) -> None:
    images, labels = synthetic_images(20)
    write_folder(tmp_path, images, labels)
    split = load_source(f"folder:{tmp_path}")
    order = np.lexsort((np.arange(20), labels))  # class, then file name
    np.testing.assert_array_equal(split.labels, labels[order])
    np.testing.assert_array_equal(split.images, images[order])


def test_folder_source_names_the_offending_image(tmp_path: Path) -> None:
    from PIL import Image

    images, labels = synthetic_images(10)
    write_folder(tmp_path, images, labels)
    bad = tmp_path / "cat" / "big.png"
    Image.new("RGB", (64, 64)).save(bad)
    with pytest.raises(BenchError, match=r"big\.png is RGB 64x64; only 32x32 RGB"):
        load_source(f"folder:{tmp_path}")
    bad.unlink()
    Image.new("L", (32, 32)).save(tmp_path / "dog" / "grey.png")
    with pytest.raises(BenchError, match=r"grey\.png is L 32x32"):
        load_source(f"folder:{tmp_path}")


def test_folder_source_rejects_unknown_class(tmp_path: Path) -> None:
    (tmp_path / "zebra").mkdir()
    with pytest.raises(BenchError, match="'zebra' is not a CIFAR-10 class"):
        load_source(f"folder:{tmp_path}")


def test_unknown_source_kind() -> None:
    with pytest.raises(BenchError, match="unknown source"):
        load_source("imagenet")


def test_balanced_subset_is_round_robin_and_nested() -> None:
    labels = np.repeat(np.arange(10), 100)  # sorted by class, like the shared copy
    subset = balanced_subset(labels, 250)
    assert np.bincount(labels[subset]).tolist() == [25] * 10
    assert np.all(np.diff(subset) > 0)
    assert set(balanced_subset(labels, 100)) <= set(subset)


def test_limit_keeps_a_balanced_subset(synthetic_npz: Path) -> None:
    split = load_source(f"npz:{synthetic_npz}", limit=20)
    assert np.bincount(split.labels).tolist() == [2] * 10
    assert split.info.limit == 20
    assert split.info.id != load_source(f"npz:{synthetic_npz}").info.id

"""The official CIFAR-10 test split: download through torchvision, read the python-pickle batch safely.

The download is torchvision's own (URL and md5 from ``torchvision.datasets.CIFAR10``). Reading does not use
``pickle.load``: the batch file is unpickled with an allow-list that admits only the numpy reconstruction
helpers the official files use, so a hostile ``test_batch`` cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.classes import IMAGE_SHAPE

BATCHES_DIR = "cifar-10-batches-py"
TEST_BATCH = "test_batch"
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 carry bytes
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def read_test_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,32,32,3) uint8 and labels (N,) int64 from a CIFAR-10 python batch file."""
    try:
        batch = _BatchUnpickler(io.BytesIO(Path(path).read_bytes()), encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BenchError(f"{path} is not a CIFAR-10 python batch ({exc}); delete it to download a fresh copy") from None
    if images.shape[1:] != IMAGE_SHAPE or len(labels) != len(images):
        raise BenchError(f"{path} has {len(images)} images and {len(labels)} labels; expected matching counts")
    return np.ascontiguousarray(images), labels


def download_test_split(root: Path) -> Path:
    """Download and extract the official archive into ``root`` (md5 checked); returns the batch file path."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except OSError as exc:  # URLError, DNS failure, refused connection, disk full
        reason = getattr(exc, "reason", None) or exc
        raise BenchError(
            f"CIFAR-10 is not in {root} and could not be downloaded ({reason}); put cifar-10-python.tar.gz or "
            f"its extracted {BATCHES_DIR}/ folder there (--data-root or LIBKD_BENCH_DATA), "
            "or use --source npz:PATH"
        ) from None
    return root / BATCHES_DIR / TEST_BATCH


def load_test_split(root: Path, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The official test split from ``root``, extracting or downloading the archive when needed."""
    batch = root / BATCHES_DIR / TEST_BATCH
    if not batch.is_file():
        if not download:
            raise BenchError(f"CIFAR-10 test batch not found at {batch}; run once online or copy the data there")
        batch = download_test_split(root)
    return read_test_batch(batch)

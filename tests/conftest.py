"""Fixtures shared by the whole suite: paths to ../shared and small synthetic clean splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_TEST_NPZ = SHARED / "data" / "cifar10-jpeg" / "test.npz"
SHARED_CHECKPOINTS = SHARED / "checkpoints" / "akamaster"
RESNET20 = SHARED_CHECKPOINTS / "resnet20-12fca82f.th"
RESNET32 = SHARED_CHECKPOINTS / "resnet32-d509ac18.th"


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random-but-structured images (smooth gradients plus noise) and round-robin labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    base = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1).astype(np.float64)
    images = base[None] * rng.uniform(0.2, 1.0, size=(n, 1, 1, 3)) + rng.normal(0, 20, size=(n, 32, 32, 3))
    images = np.clip(images, 0, 255).astype(np.uint8)
    return images, np.arange(n, dtype=np.int64) % 10


@pytest.fixture
def synthetic_npz(tmp_path: Path) -> Path:
    """An ``npz:`` source of 60 synthetic images, 6 per class."""
    images, labels = synthetic_images(60)
    path = tmp_path / "synthetic.npz"
    np.savez(path, x=images, y=labels)
    return path


@pytest.fixture
def shared_test_npz() -> Path:
    if not SHARED_TEST_NPZ.is_file():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_TEST_NPZ}")
    return SHARED_TEST_NPZ


# Architectures of the public training repositories: tests/test_repository_layouts.py loads each one saved the
# repository's way in the fast tier; the suite-wide architecture sweeps run them in the full tier only.
REPOSITORY_FAMILIES = frozenset({"kuangliu", "huyvnphan", "chenyaofo"})


def sweep_param(name: str, slow: bool = False) -> object:
    """``name`` as a parameter of a test run over every registered architecture, marked slow when ``slow`` is set
    or the architecture belongs to a public repository's family (covered in the fast tier by its layout test)."""
    from libkd_bench.models.registry import get_architecture

    if slow or get_architecture(name).family in REPOSITORY_FAMILIES:
        return pytest.param(name, marks=pytest.mark.slow, id=name)
    return pytest.param(name, id=name)

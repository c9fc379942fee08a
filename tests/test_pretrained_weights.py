"""The neural backends' pretrained weights: read from the torch hub cache, never downloaded."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.segmentation import fcn as fcn_backend
from libkd_bench.datasets_gen.texture_synthesis import gatys as gatys_backend


@pytest.mark.parametrize(
    ("backend", "weights_file"),
    [(fcn_backend, "fcn_resnet101_coco-7ecb50ca.pth"), (gatys_backend, "vgg19-dcbb9e9d.pth")],
    ids=["fcn", "gatys"],
)
def test_missing_weights_is_one_line_naming_file_and_folder(
    backend: ModuleType, weights_file: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(BenchError) as info:
        backend.network_identity()
    message = str(info.value)
    assert "\n" not in message
    assert weights_file in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message

"""The forward engine, efficiency figures and the logits cache, on a tiny CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scoring_fixtures import TinyNet

from libkd_bench.core.errors import BenchError
from libkd_bench.core.torch_runtime import available_cpus, resolve_device, thread_candidates
from libkd_bench.scoring.efficiency import count_macs, count_parameters, efficiency_figures
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine, release_pages
from libkd_bench.scoring.logits_cache import LogitsCache


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def plain_forward(module: torch.nn.Module, batch: np.ndarray) -> np.ndarray:
    """The reference: one forward pass on contiguous float32 (N, 3, H, W) in [0, 1]."""
    inputs = torch.from_numpy(batch.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return module(inputs).numpy()


def test_engine_logits_equal_a_plain_forward_for_any_batch_size(tmp_path: Path) -> None:
    data = images(70)
    path = tmp_path / "images.npy"
    np.save(path, data[None])
    mapped = np.load(path, mmap_mode="r")  # read-only memory map, as the store hands it out
    expected = plain_forward(TinyNet(), data)
    for batch_size in (1, 16, 128):
        engine = ForwardEngine(TinyNet(), EngineConfig("cpu", batch_size))
        logits = engine.set_logits(mapped)
        assert logits.shape == (1, 70, 10)
        assert logits.dtype == np.float32
        np.testing.assert_allclose(logits[0], expected, rtol=1e-4, atol=1e-4)  # summation order varies with threads
        assert engine.images == 70
        assert engine.images_per_second is not None


def test_progress_callback_counts_every_image() -> None:
    seen = []
    ForwardEngine(TinyNet(), EngineConfig("cpu", 32)).logits(images(70), seen.append)
    assert seen == [32, 32, 6]


def test_device_choice_and_batch_size_validation() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(BenchError, match="unknown --device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(BenchError, match="--batch-size"):
        EngineConfig("cpu", 0)
    assert EngineConfig("cpu").batch == 128


def test_thread_count_is_chosen_among_candidates_and_restored() -> None:
    assert thread_candidates(8) == [8, 4, 1]
    assert thread_candidates(2) == [2, 1]
    assert thread_candidates(1) == [1]
    before = torch.get_num_threads()
    engine = ForwardEngine(TinyNet(), EngineConfig("cpu", 8))
    with engine.threads():
        inside = torch.get_num_threads()
    assert inside == engine.cpu_thread_count
    assert inside in thread_candidates(min(before, available_cpus()))
    assert torch.get_num_threads() == before


def test_macs_and_parameters_by_hand() -> None:
    net = TinyNet()
    # conv 3->8, 3x3, on 32x32: 32*32*8*27 MACs; linear 2048->10: 20480 MACs
    assert count_macs(net, (3, 32, 32), torch.device("cpu")) == 32 * 32 * 8 * 27 + 2048 * 10
    assert count_parameters(net) == (8 * 27 + 8) + (2048 * 10 + 10)
    figures = efficiency_figures(
        ForwardEngine(net, EngineConfig("cpu", 8)), (3, 32, 32), torch.Generator().manual_seed(0)
    )
    assert figures["images_per_s"] > 0
    assert (figures["device"], figures["batch_size"]) == ("cpu", 8)


def test_logits_cache_round_trip_and_misses(tmp_path: Path) -> None:
    cache = LogitsCache.for_model(tmp_path, "ab" * 32, {"arch": "tiny"})
    assert cache.relative.parts[0] == "cache"
    assert LogitsCache.for_model(tmp_path, "ab" * 32, {"arch": "other"}).relative != cache.relative
    labels = tmp_path / "labels.npy"
    np.save(labels, np.arange(5))
    logits = np.random.default_rng(0).random((2, 5, 10)).astype(np.float32)
    assert cache.load_set("cd" * 32, 2, 5) is None
    cache.save_set("cd" * 32, logits, {"labels": labels})
    np.testing.assert_array_equal(cache.load_set("cd" * 32, 2, 5), logits)
    assert cache.load_set("cd" * 32, 3, 5) is None  # another shape is a miss
    from libkd_bench.core.provenance import sha256_file

    hashes = {"labels": sha256_file(labels)}
    assert cache.has_labels("cd" * 32, hashes)
    np.testing.assert_array_equal(cache.load_labels("cd" * 32, hashes)["labels"], np.arange(5))
    with pytest.raises(BenchError, match="does not match"):
        cache.load_labels("cd" * 32, {"labels": "0" * 64})
    assert not any(p.name.startswith(".tmp-") for p in cache.directory.iterdir())


def _resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="resident memory is read from /proc")
def test_release_pages_drops_a_read_only_map_from_resident_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    np.save(path, np.arange(64 << 20, dtype=np.uint8).reshape(1, -1))  # 64 MB
    mapped = np.load(path, mmap_mode="r")
    total = int(mapped.sum(dtype=np.uint64))  # touch every page
    before = _resident_mb()
    release_pages(mapped[0])
    assert before - _resident_mb() > 32
    assert int(mapped.sum(dtype=np.uint64)) == total  # the data reads back unchanged
    plain = np.ones(10)
    release_pages(plain)  # not a map: nothing happens
    assert plain.sum() == 10

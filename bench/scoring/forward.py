"""The forward-pass engine: memory-mapped uint8 images in, float32 logits out, one batch at a time.

Images stay uint8 on disk and in the page cache; each batch is sliced from the memory map, moved to the
device as uint8 (a quarter of the bytes of float32) and converted there. The (N, H, W, C) uint8 batch seen as
(N, C, H, W) is already channels-last in memory, which is also the faster layout for the convolutions on CPU
(oneDNN) and CUDA (cuDNN), so the model is moved to channels-last once and no copy is made per batch. On CUDA
the forward runs under autocast (bf16 where supported, else fp16) and logits come back as float32.

On CPU the intra-op thread count is chosen once per engine by timing a batch of the real input with every
candidate (all CPUs this process may use, after affinity and cgroup quota, then half, then one). On an idle
machine all CPUs win; on a shared one, OpenMP threads that wait on a busy core can make a forward pass tens
of times slower than a single thread, and the timing catches that. A user's ``OMP_NUM_THREADS`` (or
``torch.set_num_threads``) stays the upper bound.
"""

from __future__ import annotations

import contextlib
import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from libkd_bench.core.errors import BenchError
from libkd_bench.core.torch_runtime import available_cpus, thread_candidates, torch_threads

DEFAULT_BATCH_SIZE = {"cpu": 128, "cuda": 1024}
CALIBRATION_PASSES = 2  # timed forward passes per thread count (the fastest counts)


@dataclass(frozen=True)
class EngineConfig:
    """How forward passes run.

    Attributes:
        device: ``cpu`` or ``cuda`` (resolved, see :func:`resolve_device`).
        batch_size: images per forward pass; None picks the device default.
        amp: autocast on CUDA (ignored on CPU, where reduced precision is slower and less exact).
    """

    device: str = "cpu"
    batch_size: int | None = None
    amp: bool = True

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise BenchError(f"--batch-size must be at least 1, got {self.batch_size}")

    @property
    def batch(self) -> int:
        return self.batch_size or DEFAULT_BATCH_SIZE.get(torch.device(self.device).type, 128)


def release_pages(array: np.ndarray) -> None:
    """Drop a memory-mapped array's pages from this process's resident set; a no-op for other arrays.

    The pages stay in the operating system's page cache, so reading them again costs no disk access. Only
    read-only maps are released (MADV_DONTNEED would discard unwritten changes of a writable one).
    """
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or array.flags.writeable or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with contextlib.suppress(OSError, ValueError):
        base.madvise(mmap.MADV_DONTNEED)


class ForwardEngine:
    """Runs one model over uint8 image arrays; holds the device, batch size, precision and thread choices.

    The module is moved to the device and to channels-last in place (it is the caller's loaded model).
    """

    def __init__(self, module: torch.nn.Module, config: EngineConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.module = module.to(self.device, memory_format=torch.channels_last).eval()
        self.seconds = 0.0  # time spent in forward passes (including conversion), for throughput
        self.images = 0
        self.cpu_thread_count: int | None = None  # chosen on first use (CPU only)

    def threads(self, sample: torch.Tensor | None = None) -> contextlib.AbstractContextManager[None]:
        """Context running torch at the engine's thread count; the first call on CPU times the candidates.

        Args:
            sample: a batch of real inputs to time; None times random inputs of the batch size.
        """
        if self.device.type != "cpu":
            return contextlib.nullcontext()
        if self.cpu_thread_count is None:
            self.cpu_thread_count = self._fastest_thread_count(sample)
        return torch_threads(self.cpu_thread_count)

    def _fastest_thread_count(self, sample: torch.Tensor | None) -> int:
        candidates = thread_candidates(min(torch.get_num_threads(), available_cpus()))
        if len(candidates) == 1:
            return candidates[0]
        if sample is None:
            sample = torch.rand((self.config.batch, 3, 32, 32), generator=torch.Generator().manual_seed(0))
        timings = {}
        for count in candidates:
            with torch_threads(count):
                self.forward(sample)  # warm-up: kernels are set up per thread count
                timings[count] = min(_seconds(self.forward, sample) for _ in range(CALIBRATION_PASSES))
        return min(timings, key=timings.__getitem__)

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype on CUDA with AMP on (bf16 where supported, else fp16); None: float32 throughout."""
        if self.device.type != "cuda" or not self.config.amp:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        dtype = self.amp_dtype
        return contextlib.nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)

    def to_input(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> float32 (n, 3, H, W) in [0, 1] on the device, channels-last."""
        tensor = torch.from_numpy(np.array(batch, dtype=np.uint8))  # a writable copy of the (read-only) map
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.permute(0, 3, 1, 2).float().div_(255.0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (n, C) float32 of float [0, 1] inputs, without autograd."""
        with torch.inference_mode(), self.autocast():
            return self.module(inputs).float()

    def logits(self, images: np.ndarray, advance: Callable[[int], object] | None = None) -> np.ndarray:
        """float32 (N, C) logits of uint8 (N, H, W, 3) images (a memory map is read one batch at a time).

        Args:
            images: uint8 images, e.g. one severity slab of a stored set.
            advance: called with the number of images after every batch (a progress bar's ``update``).
        """
        batch = self.config.batch
        outputs = []
        calibrate = self.device.type == "cpu" and self.cpu_thread_count is None and len(images) > 0
        threads = self.threads(self.to_input(images[:batch]) if calibrate else None)
        started = time.perf_counter()
        with threads:
            for start in range(0, len(images), batch):
                chunk = images[start : start + batch]
                outputs.append(self.forward(self.to_input(chunk)))
                if advance is not None:
                    advance(len(chunk))
            result = torch.cat(outputs).cpu().numpy() if outputs else np.zeros((0, 0), np.float32)
        self.seconds += time.perf_counter() - started
        self.images += len(images)
        return result

    def set_logits(self, images: np.ndarray, advance: Callable[[int], object] | None = None) -> np.ndarray:
        """float32 (S, N, C) logits of a stored set's uint8 (S, N, H, W, 3) images, level by level.

        A memory map's pages are released after each level, so resident memory holds about one batch of
        images rather than every set scored so far.
        """
        levels = []
        for level in range(images.shape[0]):
            levels.append(self.logits(images[level], advance))
            release_pages(images)
        return np.stack(levels)

    @property
    def images_per_second(self) -> float | None:
        """Throughput of the forward passes run so far, None before any."""
        return self.images / self.seconds if self.images and self.seconds > 0 else None


def _seconds(function: Callable[[torch.Tensor], object], argument: torch.Tensor) -> float:
    started = time.perf_counter()
    function(argument)
    return time.perf_counter() - started

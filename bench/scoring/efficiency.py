"""Efficiency figures as KD papers report them: parameters, MACs per image and measured throughput.

MACs come from torch's own ``FlopCounterMode`` (no extra dependency), which counts 2 FLOPs per
multiply-accumulate of convolutions and matrix products and ignores elementwise work (normalisation,
activations), the convention of the MAC tables in KD papers. Throughput is images per second at the scoring
batch size on the scoring device: taken from the scoring passes themselves when they ran, or measured on
random inputs when every set came from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from libkd_bench.scoring.forward import ForwardEngine

MIN_TIMING_SECONDS = 0.5
MIN_TIMING_BATCHES = 3


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def count_macs(module: torch.nn.Module, input_size: Sequence[int], device: torch.device) -> int:
    """Multiply-accumulates of one forward pass on one image of ``input_size`` (C, H, W)."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = torch.zeros((1, *input_size), device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(inputs)
    return int(counter.get_total_flops()) // 2


def measure_throughput(engine: ForwardEngine, input_size: Sequence[int], generator: torch.Generator) -> float:
    """Images/s of full batches of random [0, 1] inputs, after one warm-up batch; at least 0.5 s and 3 batches."""
    batch = engine.config.batch
    inputs = torch.rand((batch, *input_size), generator=generator).to(engine.device)
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    with engine.threads(inputs):
        engine.forward(inputs)
        _synchronise(engine.device)
        batches, started = 0, time.perf_counter()
        while batches < MIN_TIMING_BATCHES or time.perf_counter() - started < MIN_TIMING_SECONDS:
            engine.forward(inputs)
            batches += 1
        _synchronise(engine.device)
        elapsed = time.perf_counter() - started
    return batches * batch / elapsed


def efficiency_figures(engine: ForwardEngine, input_size: Sequence[int], generator: torch.Generator) -> dict[str, Any]:
    """The run record's ``efficiency`` block: params, macs (per image), images_per_s, device, batch_size."""
    throughput = engine.images_per_second
    if throughput is None:
        throughput = measure_throughput(engine, input_size, generator)
    return {
        "params": count_parameters(engine.module),
        "macs": count_macs(engine.module, input_size, engine.device),
        "images_per_s": round(float(throughput), 1),
        "device": str(engine.device),
        "batch_size": engine.config.batch,
    }


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

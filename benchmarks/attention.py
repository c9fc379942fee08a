"""Attention-map speed: Grad-CAM maps of a panel against a bare forward + backward of the same batches.

Usage:
    python benchmarks/attention.py [--model zoo:akamaster-resnet56] [--n 500] [--batch-size 128] [--repeat 3]
                                   [--device cpu] [--json OUT]

Figures, all in this one process, each the best of ``--repeat`` runs, interleaved run by run:

- ``maps``: :func:`libkd_bench.scoring.attention.compute_maps` on ``--n`` class-balanced images of the shared
  CIFAR-10 copy (captum ``LayerGradCam`` at the registry's layer, upsampling to 32x32, per-image normalisation,
  rollout for ViTs), through the scoring engine (channels-last, its CPU thread choice);
- ``bare``: the same model on the same batches, channels-last, a forward pass and ``backward`` of the summed
  true-class logits down to every parameter, nothing else. Grad-CAM needs gradients only down to its layer (the
  last stage), so ``maps`` can cost less than ``bare``; the ratio maps / bare says what captum, the hooks and
  the post-processing cost on top of the gradient work;
- ``forward``: the engine's inference-mode forward over the same images (what scoring one set costs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_NPZ = SHARED / "data" / "cifar10-jpeg" / "test.npz"
os.environ.setdefault("LIBKD_BENCH_ZOO_DIR", str(SHARED / "checkpoints" / "akamaster"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:akamaster-resnet56")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from libkd_bench.datasets_gen.sources import balanced_subset
    from libkd_bench.models import load_model
    from libkd_bench.scoring.attention import compute_maps
    from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

    data = np.load(SHARED_NPZ)
    keep = balanced_subset(data["y"], args.n)
    images, labels = data["x"][keep], data["y"][keep].astype(np.int64)
    loaded = load_model(args.model, device=args.device)
    engine = ForwardEngine(loaded.module, EngineConfig(args.device, args.batch_size))
    arch = loaded.spec.arch

    def maps() -> Any:
        return compute_maps(engine, arch, images, labels)

    def bare() -> None:
        with engine.threads():
            for start in range(0, len(images), args.batch_size):
                inputs = engine.to_input(images[start : start + args.batch_size])
                targets = torch.as_tensor(labels[start : start + args.batch_size], device=inputs.device)
                logits = engine.module(inputs)
                logits.gather(1, targets[:, None]).sum().backward()
        engine.module.zero_grad(set_to_none=True)

    def forward() -> None:
        engine.logits(images)

    layer = maps()["layer"]  # warm-up: thread choice, captum import, kernels
    bare()
    actions = {"bare": bare, "maps": maps, "forward": forward}
    timings = dict.fromkeys(actions, float("inf"))
    for _ in range(args.repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            timings[name] = min(timings[name], time.perf_counter() - started)
    result = {
        "model": args.model,
        "arch": arch,
        "images": len(images),
        "device": args.device,
        "batch_size": args.batch_size,
        "cpu_threads": engine.cpu_thread_count,
        "layer": layer,
        "maps_s": round(timings["maps"], 3),
        "bare_forward_backward_s": round(timings["bare"], 3),
        "ratio": round(timings["maps"] / timings["bare"], 2),
        "inference_forward_s": round(timings["forward"], 3),
        "maps_images_per_s": round(len(images) / timings["maps"], 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Silhouette judge speed: what ``segmentation`` pays per kept mask for ``judge_score`` and ``readable``.

Usage:
    python benchmarks/silhouette_judge.py [--source npz:../shared/data/cifar10-jpeg/test.npz] [--limit 1000]
                                          [--batches 16,64,256,1024] [--repeats 3]

Segments ``--limit`` images of the source with the default segmentation (untimed), then times, on one thread as
in a generation worker: the framing of the kept masks into the judge's input (``judge_inputs``) and the judge's
forward passes (the silhouette and its mirror) at each batch size. Ratios are against batch 64, the size
``segmentation`` uses, measured in the same process; the best of ``--repeats`` runs counts.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = f"npz:{REPO.parent / 'shared' / 'data' / 'cifar10-jpeg' / 'test.npz'}"


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    import numpy as np

    from libkd_bench.core.torch_runtime import torch_threads
    from libkd_bench.datasets_gen.seeding import SetSeed
    from libkd_bench.datasets_gen.segmentation import SegmentationConfig, judge, segment_images
    from libkd_bench.datasets_gen.sources import load_source

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--batches", default="16,64,256,1024")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    split = load_source(args.source, limit=args.limit)
    rngs = SetSeed(0, "segmentation").image_rngs(1, np.arange(len(split.labels)))
    result = segment_images("grabcut", np.asarray(split.images), rngs, SegmentationConfig())
    masks = result.masks[result.kept]
    network, _ = judge.load_judge()
    with torch_threads(1):
        framing = best_seconds(lambda: judge.judge_inputs(masks), args.repeats)
        inputs = judge.judge_inputs(masks)
        seconds = {}
        for batch in [int(b) for b in args.batches.split(",")]:
            forward = functools.partial(judge.class_probabilities, network, inputs, batch)
            seconds[batch] = best_seconds(forward, args.repeats)
    base = seconds.get(64) or next(iter(seconds.values()))
    print(f"{len(masks)} kept masks of {len(split.labels)} images; one thread")
    print(f"framing (judge_inputs): {framing:.2f} s ({1000 * framing / len(masks):.2f} ms per mask)")
    print(f"{'batch':>6} {'seconds':>8} {'ms/mask':>8} {'vs 64':>6}")
    for batch, value in seconds.items():
        print(f"{batch:>6} {value:>8.2f} {1000 * value / len(masks):>8.2f} {value / base:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

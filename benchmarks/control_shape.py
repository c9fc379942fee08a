"""The shape control's figure/ground front end: its speed against a bare forward of its CNN, and its masks
against the true silhouettes.

Usage:
    python benchmarks/control_shape.py [--store DIR] [--limit N] [--batch 250] [--repeats 3] [--json OUT]

Two measurements, in this process:

- speed, median of ``--repeats`` passes over ``--limit`` clean images of the store (CPU, float32, batches of
  ``--batch`` as ``validate`` scores them): images per second of the whole ``control_shape`` network (front end
  and CNN) against the CNN alone on the front end's maps (the baseline), and the front end alone;
- masks: the front end's map of every image of ``shape`` and ``cue-conflict`` (normalised with the CIFAR-10
  statistics, as the zoo model sees it) against the true silhouette, the image's segmentation mask framed the
  way both sets frame it: mean IoU, and the mean IoU of images whose fill's mean luminance is under 60/255.

The network is built with seeded random weights: the front end has none, and the CNN costs the same whatever
its weights.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.datasets_gen.segmentation.framing import frame_masks, framing_transforms
from libkd_bench.datasets_gen.store import SetStore
from libkd_bench.datasets_gen.visibility import fill_luminance
from libkd_bench.models.architectures.controls import ShapeOnlyNet, figure_ground

STORE = Path("/work/store/s2000")
FRAME_MARGIN = 1  # as datasets_gen/generators/shape.py frames silhouettes
DARK_FILL = 60 / 255


def _normalised(images: np.ndarray) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PRESET_STATS[Preset.CIFAR10])
    return (torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 255 - mean) / std


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def _images_per_second(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _batched(fn, x, batch)
        times.append(time.perf_counter() - started)
    return len(x) / statistics.median(times)


def speed(store: SetStore, limit: int, batch: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    net = ShapeOnlyNet().eval()
    x = _normalised(store.load("clean").arrays["images"][0][:limit])
    maps = _batched(figure_ground, x, batch)
    return {
        "images": len(x),
        "cnn_only_img_s": _images_per_second(net.shape_net, maps, batch, repeats),
        "front_end_img_s": _images_per_second(figure_ground, x, batch, repeats),
        "whole_img_s": _images_per_second(net, x, batch, repeats),
    }


def mask_agreement(store: SetStore, name: str, batch: int) -> dict[str, float]:
    stored = store.load(name)
    area = float(stored.manifest.parameters["area"])
    index = np.asarray(stored.arrays["source_index"])
    masks = np.asarray(store.load("segmentation").arrays["masks"])[index]
    truth = frame_masks(masks, framing_transforms(masks, area, FRAME_MARGIN)).reshape(len(index), -1)
    images = np.asarray(stored.arrays["images"][0])
    found = _batched(figure_ground, _normalised(images), batch).numpy().reshape(len(index), -1) > 0.5
    iou = (found & truth).sum(1) / np.maximum((found | truth).sum(1), 1)
    dark = fill_luminance(images, truth.reshape(masks.shape)) < DARK_FILL
    return {
        "images": len(index),
        "mean_iou": float(iou.mean()),
        "dark_fills": int(dark.sum()),
        "dark_fill_mean_iou": float(iou[dark].mean()) if dark.any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=STORE)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    store = SetStore(args.store)
    result = {
        "speed": speed(store, args.limit, args.batch, args.repeats),
        "masks": {name: mask_agreement(store, name, args.batch) for name in ("shape", "cue-conflict")},
        "torch_threads": torch.get_num_threads(),
    }
    s = result["speed"]
    print(f"{s['images']} clean images, batch {args.batch}, {result['torch_threads']} torch threads")
    print(f"  CNN alone (baseline)   {s['cnn_only_img_s']:8.0f} img/s")
    print(f"  front end alone        {s['front_end_img_s']:8.0f} img/s")
    print(f"  control_shape (both)   {s['whole_img_s']:8.0f} img/s")
    for name, m in result["masks"].items():
        print(
            f"  {name:13s} mask IoU {m['mean_iou']:.3f} on {m['images']} images; "
            f"fills darker than 60/255: {m['dark_fill_mean_iou']:.3f} on {m['dark_fills']}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

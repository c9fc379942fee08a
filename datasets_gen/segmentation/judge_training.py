"""Training the silhouette judge (:mod:`libkd_bench.datasets_gen.segmentation.judge`) from a set store of
*training* images: ``python -m libkd_bench.datasets_gen.segmentation.judge_training STORE OUT``, run by
``scripts/train-silhouette-judge.sh``.

The store holds the ``segmentation`` set of training images (built by ``generate-sets --source npz:TRAIN``): the
judge learns from the gated masks, framed as the judge frames them. A fifth of them (every fifth gated mask, in
store order) is held out: the judge never trains on it, and the per-class thresholds that make an
image readable are read from it, so they are not fitted to the judge's own training images. Training: AdamW,
one-cycle schedule, batch 128, label smoothing 0.1, horizontal flips, on one CPU thread with a fixed seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from libkd_bench.core.atomic_io import ensure_writable_dir, write_bytes_atomic, write_text_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_file
from libkd_bench.datasets_gen.segmentation.judge import (
    READABLE_SHARE,
    class_probabilities,
    class_thresholds,
    judge_inputs,
    judge_network,
)
from libkd_bench.datasets_gen.store import SetStore

HOLDOUT_EVERY = 5
EPOCHS = 12
BATCH = 128
LR = 3e-3
WEIGHT_DECAY = 5e-4


def training_silhouettes(store: Path) -> tuple[np.ndarray, np.ndarray]:
    """The gated silhouettes of a store's ``segmentation`` set, as the judge sees them, and their labels."""
    segmentation = SetStore(store).load("segmentation")
    kept = np.asarray(segmentation.arrays["kept"], dtype=bool)
    if not kept.any():
        raise BenchError(f"the segmentation set in {store} keeps no image; build it from training images first")
    masks = np.asarray(segmentation.arrays["masks"])[kept]
    return judge_inputs(masks), np.asarray(segmentation.labels, dtype=np.int64)[kept]


def train_judge(inputs: np.ndarray, labels: np.ndarray, epochs: int = EPOCHS, seed: int = 0) -> Any:
    """A judge trained on silhouettes (n, 1, H, W) in [0, 1] with their labels; returned in eval mode."""
    import torch
    from torch import nn

    from libkd_bench.core.torch_runtime import torch_threads

    with torch_threads(1):
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        network = judge_network()
        optimiser = torch.optim.AdamW(network.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        steps = epochs * -(-len(inputs) // BATCH)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LR, total_steps=steps)
        x, y = torch.from_numpy(inputs), torch.from_numpy(labels)
        network.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), BATCH):
                rows = order[start : start + BATCH]
                flip = torch.rand(len(rows), generator=generator) < 0.5
                batch = torch.where(flip[:, None, None, None], x[rows].flip(-1), x[rows])
                loss = nn.functional.cross_entropy(network(batch), y[rows], label_smoothing=0.1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
    return network.eval()


def export_judge(network: Any, thresholds: np.ndarray, path: Path, info: dict[str, Any]) -> str:
    """Write float16 weights with the float32 ``thresholds`` tensor (atomically) and a JSON sidecar; the sha256."""
    import torch
    from safetensors.torch import save

    tensors = {name: value.detach().half().contiguous() for name, value in network.state_dict().items()}
    tensors["thresholds"] = torch.tensor(thresholds, dtype=torch.float32)
    data = save(tensors)
    write_bytes_atomic(path, data)
    digest = hashlib.sha256(data).hexdigest()  # the bytes just written, not read back
    sidecar = path.with_name(path.name + ".json")
    write_text_atomic(sidecar, json.dumps({**info, "sha256": digest}, indent=2, sort_keys=True) + "\n")
    return digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the silhouette judge on a store of training images.")
    parser.add_argument("store", type=Path, help="set store holding the segmentation set of training images")
    parser.add_argument("out", type=Path, help="weights file to write (.safetensors)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        ensure_writable_dir(args.out.parent)  # before training, not after
        inputs, labels = training_silhouettes(args.store)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    held_out = np.arange(len(labels)) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    network = train_judge(inputs[~held_out], labels[~held_out], args.epochs, args.seed)
    probabilities = class_probabilities(network, inputs[held_out])
    scores = probabilities[np.arange(held_out.sum()), labels[held_out]]
    thresholds = class_thresholds(scores, labels[held_out])
    accuracy = float((probabilities.argmax(1) == labels[held_out]).mean())
    info = {
        "train_silhouettes": int((~held_out).sum()),
        "held_out_silhouettes": int(held_out.sum()),
        "held_out_accuracy": accuracy,
        "readable_share": READABLE_SHARE,
        "thresholds": [float(t) for t in thresholds],
        "epochs": args.epochs,
        "seed": args.seed,
        "segmentation_manifest_sha256": sha256_file(args.store / "segmentation" / "manifest.json"),
    }
    digest = export_judge(network, thresholds, args.out, info)
    print(f"{args.out}: sha256 {digest}; held-out accuracy {accuracy:.3f} on {held_out.sum()} silhouettes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

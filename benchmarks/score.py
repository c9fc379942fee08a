"""Scoring speed and memory: end-to-end ``score`` against a bare forward loop and a PNG/ImageFolder pipeline.

Usage:
    python benchmarks/score.py [--sets-dir DIR | --source npz:PATH --limit N] [--models resnet20,resnet56]
                               [--batch-size B] [--repeat R] [--no-png] [--no-memory] [--json OUT]

Figures, all in this one process (except peak memory, measured in a child process of its own):

- ``score``: wall time of ``libkd-bench score CKPT --adv none --recompute`` over clean + every set in the store
  (hash verification, model loading, forward passes, logits cache writes, every metric with 1000 bootstrap
  resamples, the record), against ``bare``: the model's forward over as many images as ``score`` scores,
  pre-loaded as float32 (N, 3, 32, 32) contiguous tensors, at the same batch size, with nothing else. Also
  ``bare-cl``: the same loop on channels-last tensors, the layout the engine feeds.
- ``png``: a model-vs-human style pipeline: every set and level written as PNG files (not timed), then read with
  torchvision ``ImageFolder`` + ``DataLoader`` + a per-image ``ToTensor`` transform and scored; the faster of 0
  and 2 loader workers (found on the first model, reused for the next). ``input-only`` compares just the data
  paths (PNG loader vs memory-mapped uint8 batches converted to float), without the model.
- ``rescore``: ``libkd-bench rescore RUN`` in this process, and as a fresh command (``python -m libkd_bench``).
- peak memory: maximum resident set size of a child process running ``score`` (with the default attacks).

Each timing is the best of ``--repeat`` runs; ``bare``, ``score`` and ``bare-cl`` are interleaved run by run, so
a busy spell on a shared machine does not fall on one of them only. CPU thread counts are chosen the way the
engine chooses them, for every pipeline. The sets are those of the store (``--sets-dir``) or generated
into a temporary store from ``--source`` with ``--limit``; the report lists which sets were included.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_SOURCE = f"npz:{SHARED / 'data' / 'cifar10-jpeg' / 'test.npz'}"
# The zoo's akamaster ResNets (architecture, ImageNet normalisation and sha256 pinned there), read from the
# shared copies unless LIBKD_BENCH_ZOO_DIR names another mirror.
os.environ.setdefault("LIBKD_BENCH_ZOO_DIR", str(SHARED / "checkpoints" / "akamaster"))


def checkpoint(depth: int) -> str:
    return f"zoo:akamaster-resnet{depth}"


def best_of(repeat: int, action: Any) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls of ``action()`` and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def cli(args: list[str]) -> str:
    """Run ``libkd-bench ARGS`` in this process; returns its stdout, fails loudly on a non-zero exit."""
    from libkd_bench.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(args)
    if code != 0:
        raise SystemExit(f"libkd-bench {' '.join(args)} exited with {code}")
    return buffer.getvalue()


def bare_loop(module: Any, clean: Any, total: int, batch: int, channels_last: bool) -> float:
    """Seconds of ``total`` images of forward passes over pre-loaded float tensors (clean images, cycled).

    Runs at the thread count the engine would choose, so the comparison is of everything but the threads.
    """
    import numpy as np
    import torch

    from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

    n = min(len(clean), 10_000)
    batches = []
    for start in range(0, n, batch):
        chunk = torch.from_numpy(np.array(clean[start : start + batch], dtype=np.float32) / 255.0)
        chunk = chunk.permute(0, 3, 1, 2)
        batches.append(chunk.contiguous(memory_format=torch.channels_last) if channels_last else chunk.contiguous())
    threads = ForwardEngine(module, EngineConfig("cpu", batch)).threads(batches[0])
    module = module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    done = 0
    started = time.perf_counter()
    with torch.inference_mode(), threads:
        while done < total:
            for inputs in batches:
                if done >= total:
                    break
                inputs = inputs[: total - done]
                module(inputs)
                done += len(inputs)
    return time.perf_counter() - started


def write_png_tree(sets_dir: Path, out: Path) -> list[Path]:
    """Every set level as ``out/<set>-<level>/<class>/<index>.png``; returns the level folders."""
    from PIL import Image

    from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
    from libkd_bench.datasets_gen.store import SetStore

    store = SetStore(sets_dir)
    folders = []
    for name in store.names():
        stored = store.load(name, verify=False)
        for level in range(stored.images.shape[0]):
            folder = out / f"{name}-{level + 1}"
            for class_name in CIFAR10_CLASSES:
                (folder / class_name).mkdir(parents=True, exist_ok=True)
            for index, (image, label) in enumerate(zip(stored.images[level], stored.labels, strict=True)):
                Image.fromarray(image).save(folder / CIFAR10_CLASSES[int(label)] / f"{index:05d}.png")
            folders.append(folder)
    return folders


def png_pipeline(module: Any, folders: list[Path], batch: int, workers: int, with_model: bool) -> tuple[int, int]:
    """Score PNG folders the model-vs-human way; returns (correct, total) on the first folder (clean)."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

    correct = total = 0
    threads = ForwardEngine(module or torch.nn.Identity(), EngineConfig("cpu", batch)).threads()  # as score does
    if module is not None:
        module = module.to(memory_format=torch.contiguous_format)  # the layout ToTensor + collate produce
    with torch.inference_mode(), threads:
        for i, folder in enumerate(folders):
            loader = DataLoader(
                datasets.ImageFolder(str(folder), transform=transforms.ToTensor()),
                batch_size=batch,
                shuffle=False,
                num_workers=workers,
            )
            for inputs, labels in loader:
                if with_model:
                    predicted = module(inputs).argmax(1)
                    if i == 0:
                        correct += int((predicted == labels).sum())
                        total += len(labels)
    return correct, total


def engine_input_only(sets_dir: Path, batch: int) -> int:
    """The engine's data path alone: memory-mapped uint8 batches to float tensors; returns images seen."""
    import torch

    from libkd_bench.datasets_gen.store import SetStore
    from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

    engine = ForwardEngine(torch.nn.Identity(), EngineConfig("cpu", batch))
    store, seen = SetStore(sets_dir), 0
    for name in store.names():
        images = store.load(name, verify=False).images
        for level in range(images.shape[0]):
            for start in range(0, images.shape[1], batch):
                engine.to_input(images[level, start : start + batch])
                seen += min(batch, images.shape[1] - start)
    return seen


def peak_memory_mb(ckpt: str, sets_dir: Path, results: Path, batch: int) -> float:
    """Peak RSS (MB) of a child process running a full ``score`` (default attacks included)."""
    code = (
        "import resource, sys\n"
        "from libkd_bench.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    args = ["score", ckpt, "--sets-dir", str(sets_dir), "--results", str(results)]
    args += ["--batch-size", str(batch), "--recompute", "--no-progress", "--json"]
    command = [sys.executable, "-c", code, *args]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout
    kilobytes = int(next(line for line in out.splitlines() if line.startswith("MAXRSS")).split()[1])
    return kilobytes / 1024.0


def prepare_sets(args: argparse.Namespace, scratch: Path) -> Path:
    if args.sets_dir:
        return args.sets_dir
    sets_dir = scratch / "sets"
    generate = ["generate-sets", "--source", args.source, "--sets-dir", str(sets_dir), "--no-progress"]
    generate += ["--limit", str(args.limit)] if args.limit else []
    generate += ["--sets", args.sets] if args.sets else []
    cli(generate)
    return sets_dir


def measure_model(depth: int, sets: Any, folders: list[Path], scratch: Path, args: argparse.Namespace) -> dict:
    """Every figure of one akamaster ResNet (see the module docstring)."""
    from libkd_bench.models import load_model

    ckpt, batch, repeat = checkpoint(depth), args.batch_size, args.repeat
    results = scratch / f"results-{depth}"
    score_args = ["score", ckpt, "--sets-dir", str(sets.root), "--results", str(results)]
    score_args += ["--batch-size", str(batch), "--adv", "none", "--recompute", "--no-progress", "--json"]
    module = load_model(ckpt).module
    clean, total = sets.clean.images[0], sets.total_images
    row: dict[str, Any] = {}
    runs: dict[str, list[float]] = {"bare_s": [], "score_s": [], "bare_cl_s": []}
    for _ in range(repeat):  # interleaved, so a busy spell on a shared machine does not hit one figure only
        runs["bare_s"].append(bare_loop(module, clean, total, batch, channels_last=False))
        seconds, out = best_of(1, lambda: cli(score_args))
        runs["score_s"].append(seconds)
        runs["bare_cl_s"].append(bare_loop(module, clean, total, batch, channels_last=True))
    row.update({name: min(times) for name, times in runs.items()})
    row["runs"] = runs
    record = json.loads(out)[0]
    row["clean_accuracy"] = next(
        m["value"] for m in record["metrics"] if (m["set"], m["severity"], m["metric"]) == ("clean", None, "accuracy")
    )
    row["score_vs_bare"] = row["score_s"] / row["bare_s"]
    row["score_vs_bare_cl"] = row["score_s"] / row["bare_cl_s"]
    run_id = f"{record['model']}@{record['source']['id']}"
    rescore = ["rescore", run_id, "--results", str(results), "--json"]
    row["rescore_s"], _ = best_of(repeat, lambda: cli(rescore))
    command = [sys.executable, "-m", "libkd_bench", *rescore]
    row["rescore_command_s"], _ = best_of(
        repeat, lambda: subprocess.run(command, cwd=REPO, capture_output=True, check=True)
    )
    if folders:
        png = {}
        for workers in args.png_workers or (0, 2):
            png[workers], (correct, seen) = best_of(
                repeat,
                lambda: png_pipeline(module, folders, batch, workers, with_model=True),  # noqa: B023
            )
        row["png_workers"] = min(png, key=png.__getitem__)
        args.png_workers = (row["png_workers"],)  # later models use the faster loader setting
        row["png_s"] = png[row["png_workers"]]
        row["png_clean_accuracy"] = correct / seen
        row["png_vs_score"] = row["png_s"] / row["score_s"]
    if not args.no_memory and depth == min(int(d) for d in args.models.split(",")):
        row["peak_rss_mb"] = peak_memory_mb(ckpt, sets.root, scratch / "memory", batch)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets-dir", type=Path, help="an existing store (default: generate one from --source)")
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int, help="images of the generated store (class-balanced subset)")
    parser.add_argument("--sets", help="sets to generate (default: every registered set)")
    parser.add_argument("--models", default="20,56", help="akamaster ResNet depths (default 20,56)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-png", action="store_true", help="skip the PNG/ImageFolder pipeline")
    parser.add_argument("--png-workers", type=int, nargs="+", help="DataLoader workers to try (default: 0 and 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child process")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    import torch

    from libkd_bench.scoring.sets import load_scoring_sets

    figures: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="libkd-bench-score-") as tmp:
        scratch = Path(tmp)
        sets = load_scoring_sets(prepare_sets(args, scratch))
        figures.update(sets=list(sets.sets), images=int(sets.clean.labels.shape[0]), scored_images=sets.total_images)
        print(
            f"store {sets.root}: {figures['images']} images; sets {', '.join(sets.sets)}; {sets.total_images} per model"
        )
        folders = [] if args.no_png else write_png_tree(sets.root, scratch / "png")
        for depth in (int(d) for d in args.models.split(",")):
            row = figures[f"resnet{depth}"] = measure_model(depth, sets, folders, scratch, args)
            print(
                f"resnet{depth}: "
                + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
            )
        if folders:
            png_input, _ = best_of(
                args.repeat, lambda: png_pipeline(None, folders, args.batch_size, 2, with_model=False)
            )
            engine_input, _ = best_of(args.repeat, lambda: engine_input_only(sets.root, args.batch_size))
            figures["input_only"] = {"png_s": png_input, "engine_s": engine_input, "ratio": png_input / engine_input}
            ratio = png_input / engine_input
            print(f"input only: PNG loader {png_input:.2f} s, engine {engine_input:.2f} s ({ratio:.1f}x)")
    figures["self_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

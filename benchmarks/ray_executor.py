"""The Ray executor against the local one: ``score`` of one checkpoint with 1 and 2 Ray workers on this machine.

Usage:
    python benchmarks/ray_executor.py [--source npz:PATH] [--limit 2000] [--sets superpixel,patch-noise,scramble]
                                      [--model resnet20] [--adv fgsm,pgd] [--repeat 2] [--json OUT]

A store of ``--limit`` clean images and ``--sets`` is generated into a temporary directory (not timed). Then
``libkd-bench score CKPT --recompute --no-attention`` (the default attacks, 1000 bootstrap resamples, the record)
is timed, in this process, as:

- ``local``: ``--executor local``, the engine's own CPU thread choice (all cores when it is fastest);
- ``local-1t``: the same with torch limited to one thread, the CPU share of one Ray worker;
- ``ray-1`` and ``ray-2``: ``--executor ray`` on a Ray instance of 1 and 2 CPUs started here beforehand and
  warmed up by a small score run (workers started, libkd_bench imported), as a cluster is started with
  ``ray start`` before commands join it; that start-up is reported on its own. Workers read the set store
  (``--ray-data auto``, which finds the files on this one node);
- ``ray-1-ship``: ``ray-1`` with ``--ray-data ship``, the mode of a cluster without a shared filesystem: the
  driver puts the model and every set's images into Ray's object store and workers fetch them from there.

The overhead of Ray is ``ray-1 / local-1t`` (the same CPU budget); ``ray-1-ship / ray-1`` is the cost of shipping
the inputs; ``ray-2 / local`` is what two workers give on a machine where the local engine already uses every
core. Each figure is the best of ``--repeat`` runs, the five interleaved run by run; the logits cache is
recomputed every time (``--recompute``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_SOURCE = f"npz:{SHARED / 'data' / 'cifar10-jpeg' / 'test.npz'}"
os.environ.setdefault("LIBKD_BENCH_ZOO_DIR", str(SHARED / "checkpoints" / "akamaster"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray starts its workers at nice 15 by default; on a machine shared with other jobs that alone makes them several
# times slower than the local run's process at nice 0. A dedicated node has no such contention: same priority here.
os.environ.setdefault("RAY_worker_niceness", "0")

from score import cli  # noqa: E402  (this folder's scoring benchmark: libkd-bench in this process)

from libkd_bench.core.torch_runtime import torch_threads  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--sets", default="superpixel,patch-noise,scramble")
    parser.add_argument("--model", default="resnet20", help="akamaster ResNet of the zoo (default resnet20)")
    parser.add_argument("--adv", default="fgsm,pgd", help="attacks of the timed score runs (default fgsm,pgd)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    import ray

    with tempfile.TemporaryDirectory(prefix="libkd-ray-bench-") as scratch:
        root = Path(scratch)
        sets = root / "sets"
        generate = ["generate-sets", "--source", args.source, "--limit", str(args.limit), "--sets", args.sets]
        cli([*generate, "--sets-dir", str(sets), "--no-progress"])
        score = ["score", f"zoo:akamaster-{args.model}", "--sets-dir", str(sets), "--results", str(root / "results")]
        score += ["--adv", args.adv, "--recompute", "--no-attention", "--no-progress", "--json"]
        warm_up = [*score[:4], "--sets", "scramble" if "scramble" in args.sets else args.sets.split(",")[0]]
        warm_up += ["--adv", "none", "--no-attention", "--no-progress", "--results", str(root / "warm-up")]
        runs: dict[str, list[float]] = {name: [] for name in ("local-1t", "local", "ray-1", "ray-1-ship", "ray-2")}
        start_up: dict[str, list[float]] = {"ray-1": [], "ray-2": []}
        for _ in range(args.repeat):  # interleaved, so a busy spell of a shared machine does not hit one figure only
            with torch_threads(1):
                runs["local-1t"].append(timed(lambda: cli([*score, "--executor", "local"])))
            runs["local"].append(timed(lambda: cli([*score, "--executor", "local"])))
            for cpus in (1, 2):
                started = time.perf_counter()
                ray.init(
                    address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
                )
                try:
                    cli([*warm_up, "--executor", "ray"])  # workers started, libkd_bench imported: a live cluster
                    start_up[f"ray-{cpus}"].append(time.perf_counter() - started)
                    runs[f"ray-{cpus}"].append(timed(lambda: cli([*score, "--executor", "ray"])))
                    if cpus == 1:
                        ship = [*score, "--executor", "ray", "--ray-data", "ship"]
                        runs["ray-1-ship"].append(timed(lambda: cli(ship)))  # noqa: B023 (called at once)
                finally:
                    ray.shutdown()
        figures = {name: {"seconds": min(times), "runs": times} for name, times in runs.items()}
        for name, times in start_up.items():
            figures[name]["ray_start_seconds"] = min(times)
        figures["ray-1-ship"]["ray_start_seconds"] = figures["ray-1"]["ray_start_seconds"]
        record = json.loads(cli([*score, "--executor", "local"]))[0]
    images = sum(
        int(entry["n"]) * max(1, len(entry.get("severities", [])))
        for entry in record["sets"].values()
        if "sha256" in entry
    )
    report = {
        "model": args.model,
        "limit": args.limit,
        "sets": args.sets,
        "adv": args.adv,
        "stored_images_scored": images,
        "cpus": os.cpu_count(),
        "figures": figures,
        "overhead_ray1_vs_local_1_thread": figures["ray-1"]["seconds"] / figures["local-1t"]["seconds"],
        "ship_vs_shared_1_worker": figures["ray-1-ship"]["seconds"] / figures["ray-1"]["seconds"],
        "ray2_vs_local": figures["ray-2"]["seconds"] / figures["local"]["seconds"],
        "ray2_vs_ray1": figures["ray-2"]["seconds"] / figures["ray-1"]["seconds"],
    }
    print(f"score zoo:akamaster-{args.model}: {images:,} stored images ({args.sets} + clean), attacks {args.adv}")
    for name, figure in figures.items():
        runs = ", ".join(f"{t:.1f}" for t in figure["runs"])
        extra = f"; Ray start-up {figure['ray_start_seconds']:.1f} s" if "ray_start_seconds" in figure else ""
        print(f"  {name:<10} {figure['seconds']:7.1f} s (runs: {runs}){extra}")
    print(f"  Ray overhead, 1 worker vs local on one thread: {report['overhead_ray1_vs_local_1_thread']:.2f}x")
    print(f"  shipping the inputs vs reading the set store, 1 worker: {report['ship_vs_shared_1_worker']:.2f}x")
    print(f"  2 Ray workers vs local (all cores): {report['ray2_vs_local']:.2f}x", end="")
    print(f"; vs 1 Ray worker: {report['ray2_vs_ray1']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

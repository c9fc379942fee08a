"""Generation speed: images/s of every set (all severities) with 1 and 2 worker processes.

Usage:
    python benchmarks/generate.py [--source npz:../shared/data/cifar10-jpeg/test.npz] [--limit N]
                                  [--sets a,b] [--workers 1,2] [--backend set=name,...] [--json OUT]

Each set is built from scratch into a temporary store, one per worker count (the ``clean`` copy is made
beforehand and not timed); "img/s" counts output images, i.e. source images x severity levels. The last lines
give the total per worker count, which is what a user waits for when running ``generate-sets``.

The shape/texture family: ``--sets segmentation,shape,shape-edges,texture,texture-overlay,cue-conflict`` (a
prerequisite is built once per store, untimed unless it is measured itself; ``--backend`` follows the linked
backends of ``list-sets``).
``--neural-images N`` also times the neural backends (fcn segmentation, gatys texture) in-process on N images,
with pretrained weights when they are in the torch hub cache and seeded random ones otherwise (same cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = f"npz:{REPO.parent / 'shared' / 'data' / 'cifar10-jpeg' / 'test.npz'}"


def main() -> int:
    from neural_backends import neural_seconds_per_image  # benchmarks/neural_backends.py, beside this script

    from libkd_bench.commands.generate_sets import parse_assignments
    from libkd_bench.datasets_gen.build import build_sets, plan_sets
    from libkd_bench.datasets_gen.registry import get_generator, parse_set_names, with_prerequisites
    from libkd_bench.datasets_gen.sources import load_source
    from libkd_bench.datasets_gen.store import SetStore

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--sets", default="superpixel,patch-noise,scramble")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backend", default="")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--neural-images", type=int, default=0, help="time fcn and gatys on N images (0: skip)")
    args = parser.parse_args()

    split = load_source(args.source, limit=args.limit)
    names = [n for n in parse_set_names(args.sets) if n != "clean"]
    backends = parse_assignments(args.backend, "--backend")
    worker_counts = [int(w) for w in args.workers.split(",")]
    plans = {plan.entry.name: plan for plan in plan_sets(names, seed=0, backends=backends)}
    n = len(split.labels)
    print(f"source {split.info.id}: {n} images; sets {', '.join(names)}")
    figures: dict[str, dict[str, float]] = {name: {} for name in names}
    totals = dict.fromkeys(worker_counts, 0.0)
    for workers in worker_counts:
        # One store per worker count: a prerequisite (the masks of segmentation) is built once, untimed unless
        # it is itself one of the sets measured, and reused by every set that needs it.
        with tempfile.TemporaryDirectory(prefix="libkd-bench-gen-") as tmp:
            store = SetStore(Path(tmp))
            for name in names:
                entry = get_generator(name)
                prerequisites = [plans[r] for r in with_prerequisites(entry.requires)]
                build_sets(prerequisites, split, store, workers=workers, progress=False)
                reports = build_sets([plans[name]], split, store, workers=workers, progress=False)
                seconds = next(report.seconds for report in reports if report.name == name)
                figures[name][f"seconds_{workers}w"] = seconds
                figures[name][f"images_per_s_{workers}w"] = n * len(entry.levels) / seconds
                totals[workers] += seconds
    print(f"{'set':<18}{'backend':<10}{'levels':>7}" + "".join(f"{f'{w} worker(s)':>22}" for w in worker_counts))
    for name in names:
        entry = get_generator(name)
        cells = [
            f"{figures[name][f'seconds_{w}w']:8.1f} s {figures[name][f'images_per_s_{w}w']:8.0f} img/s"
            for w in worker_counts
        ]
        row = f"{name:<18}{plans[name].backend or '-':<10}{len(entry.levels):>7}"
        print(row + "".join(f"{c:>22}" for c in cells))
    print("total " + ", ".join(f"{w} worker(s): {t:.1f} s" for w, t in totals.items()))
    neural = neural_seconds_per_image(split.images[: args.neural_images]) if args.neural_images > 0 else {}
    for backend, figure in neural.items():
        print(
            f"{backend:<8} {figure['seconds_per_image']:8.2f} s/image ({figure['weights']} weights, {figure['device']})"
        )
    if args.json:
        report = {"source": split.info.to_json(), "sets": figures, "totals": totals, "neural": neural}
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

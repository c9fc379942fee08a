"""Generation speed of the corruption family: the 15 CIFAR-10-C sets x 5 severities, against writing the split.

Usage:
    python benchmarks/corruptions.py [--source npz:../shared/data/cifar10-jpeg/test.npz] [--limit N]
                                     [--workers 2] [--json OUT]

In one process and one temporary store: first the baselines, a bare ``np.save`` of the split and the build of
the ``clean`` set (the split written with its manifest and hashes, what every set pays per slab), then the
whole family in one ``build_sets`` call with ``--workers`` processes, which is what ``generate-sets --sets
corruptions`` waits for. "img/s" counts output images (source images x 5 severities); the ratio compares the
family's time with writing the same 75 slabs at the clean build's rate, i.e. what the corruptions cost beyond
the store's own writing and hashing. The family's CPU seconds (this process and its workers) tell what the
wall time would be on idle cores when the machine is shared. Per-set lines follow, then the in-process cost
of each corruption alone (one worker, no store) on the first 512 images, to show which ones dominate.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = f"npz:{REPO.parent / 'shared' / 'data' / 'cifar10-jpeg' / 'test.npz'}"
PROFILE_IMAGES = 512


def main() -> int:
    from libkd_bench.datasets_gen.build import build_sets, plan_sets
    from libkd_bench.datasets_gen.corruptions.table import CORRUPTIONS, FAMILY, SET_PREFIX, SEVERITIES
    from libkd_bench.datasets_gen.generators.corruptions import corrupt
    from libkd_bench.datasets_gen.registry import Batch, parse_set_names
    from libkd_bench.datasets_gen.seeding import SetSeed
    from libkd_bench.datasets_gen.sources import load_source
    from libkd_bench.datasets_gen.store import SetStore

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    split = load_source(args.source, limit=args.limit)
    n = len(split.labels)
    names = parse_set_names(FAMILY)
    slabs = len(names) * len(SEVERITIES)
    print(
        f"source {split.info.id}: {n} images; {len(names)} sets x {len(SEVERITIES)} severities, {args.workers} workers"
    )
    with tempfile.TemporaryDirectory(prefix="libkd-bench-corruptions-") as tmp:
        started = time.perf_counter()
        np.save(Path(tmp) / "bare.npy", split.images)
        bare = time.perf_counter() - started
        store = SetStore(Path(tmp) / "sets")
        clean = build_sets([], split, store, workers=1, progress=False)[0].seconds
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        reports = build_sets(plan_sets(names, seed=0), split, store, workers=args.workers, progress=False)
        family = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
    per_set = {report.name: report.seconds for report in reports if report.name in names}
    print(f"bare np.save of the split      {bare:8.2f} s")
    print(f"clean set build (1 slab)       {clean:8.2f} s")
    print(
        f"corruption family ({slabs} slabs)  {family:8.1f} s  {n * slabs / family:8.0f} img/s  "
        f"{family / (slabs * clean):.1f}x writing {slabs} clean slabs  (goal: < 180 s for 10,000 images)"
    )
    print(
        f"CPU time of the family (this process and its workers): {cpu:.1f} s; on {args.workers} otherwise idle "
        f"cores that is about {cpu / args.workers:.0f} s of wall time"
    )
    for name, seconds in per_set.items():
        print(f"  {name:<30}{seconds:8.1f} s {n * len(SEVERITIES) / seconds:8.0f} img/s")

    images, labels = split.images[:PROFILE_IMAGES], split.labels[:PROFILE_IMAGES]
    profile = {}
    for name in CORRUPTIONS:
        started = time.perf_counter()
        for severity in SEVERITIES:
            chunk = Batch(images, labels, np.arange(len(images)), severity, SetSeed(0, SET_PREFIX + name))
            corrupt(name, chunk, severity)
        profile[name] = (time.perf_counter() - started) / (len(images) * len(SEVERITIES))
    print(f"in-process cost per output image, one worker, {len(images)} images:")
    for name, seconds in sorted(profile.items(), key=lambda item: -item[1]):
        print(f"  {name:<20}{1e3 * seconds:8.3f} ms")
    if args.json:
        report = {
            "source": split.info.to_json(),
            "workers": args.workers,
            "bare_save_s": bare,
            "clean_build_s": clean,
            "family_s": family,
            "family_cpu_s": cpu,
            "images_per_s": n * slabs / family,
            "per_set_s": per_set,
            "in_process_ms_per_image": {name: 1e3 * seconds for name, seconds in profile.items()},
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())

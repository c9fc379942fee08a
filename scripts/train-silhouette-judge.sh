#!/usr/bin/env bash
# Train the silhouette judge (datasets_gen/segmentation/judge.py) from the CIFAR-10 training split: segment a
# class-balanced 20,000 of its images with the default segmentation (GrabCut, gate), train the judge on four fifths
# of the gated silhouettes, read the per-class thresholds off the other fifth, and write the weights with a JSON
# sidecar. About 12 minutes on two cores. Deterministic (one CPU thread, fixed seed).
#
# Usage: scripts/train-silhouette-judge.sh [OUT]   (default datasets_gen/segmentation/silhouette-judge.safetensors;
#        after replacing the shipped file, put the printed sha256 into JUDGE_SHA256 of judge.py)
# Environment: TRAIN_DATA (default ../shared/data/cifar10-jpeg/train-jpeg.npz: a train-jpeg.npz or an npz with
# x, y), LIBKD_BENCH_WORK (default ./work/silhouette-judge) receives the decoded split and the sets.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"

OUT="${1:-datasets_gen/segmentation/silhouette-judge.safetensors}"
TRAIN_DATA="${TRAIN_DATA:-$ROOT/../shared/data/cifar10-jpeg/train-jpeg.npz}"
WORK="${LIBKD_BENCH_WORK:-work/silhouette-judge}"
[ -f "$TRAIN_DATA" ] || { echo "$0: training split $TRAIN_DATA not found; set TRAIN_DATA" >&2; exit 2; }
mkdir -p "$WORK"
python - "$TRAIN_DATA" "$WORK/train.npz" <<'PYEOF'
import sys
import numpy as np
from libkd_bench.models.training.data import load_split
split = load_split(sys.argv[1])
np.savez(sys.argv[2], x=split.images, y=split.labels)
PYEOF
libkd-bench generate-sets --source "npz:$WORK/train.npz" --limit 20000 --seed 0 --sets segmentation \
    --sets-dir "$WORK/sets" --workers 2 --no-progress
python -m libkd_bench.datasets_gen.segmentation.judge_training "$WORK/sets" "$OUT"

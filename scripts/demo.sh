#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: set up the environment, generate every weight-free derived
# set from the clean CIFAR-10 test split, score two pretrained CIFAR ResNets on them (clean, every set and
# severity, FGSM and PGD), print the leaderboard and write its CSV, Markdown and plots.
#
# Data: the official CIFAR-10 test split, downloaded once into $LIBKD_BENCH_DATA (default
# ~/.cache/libkd-bench/data). Checkpoints: the zoo's akamaster ResNet-56 and ResNet-20, downloaded once into
# ~/.cache/libkd-bench/zoo with their sha256 checked. Offline, each falls back to the local copies in
# ../shared (data/cifar10-jpeg/test.npz, checkpoints/akamaster/) when present, and says so.
#
# Environment: LIBKD_BENCH_SOURCE (any --source value) picks the data; LIBKD_BENCH_LIMIT=N keeps a
# class-balanced subset of N images for a quicker run; LIBKD_BENCH_WORK (default ./work) receives the sets,
# the run records and the leaderboard.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"

WORK="${LIBKD_BENCH_WORK:-$ROOT/work}"
SHARED="../shared"  # relative: the script runs from the checkout, and records keep locations as given
LIMIT_ARGS=()
[ -n "${LIBKD_BENCH_LIMIT:-}" ] && LIMIT_ARGS=(--limit "$LIBKD_BENCH_LIMIT")

if [ -n "${LIBKD_BENCH_SOURCE:-}" ]; then
    SOURCE="$LIBKD_BENCH_SOURCE"
elif python -c 'from libkd_bench.datasets_gen.sources import load_source; load_source("cifar10")' 2>/dev/null; then
    SOURCE=cifar10
elif [ -f "$SHARED/data/cifar10-jpeg/test.npz" ]; then
    SOURCE="npz:$SHARED/data/cifar10-jpeg/test.npz"
    echo "demo: the official CIFAR-10 cannot be downloaded here; using the local JPEG copy in ../shared/data" \
         "(lossy, so a source of its own: its results carry their own source id and are never mixed)" >&2
else
    echo "demo: the official CIFAR-10 cannot be downloaded and no local copy was found;" \
         "set LIBKD_BENCH_SOURCE=npz:PATH or put the data in \$LIBKD_BENCH_DATA" >&2
    exit 2
fi

MODELS=(zoo:akamaster-resnet56 zoo:akamaster-resnet20)
if [ -z "${LIBKD_BENCH_ZOO_DIR:-}" ] && ! libkd-bench inspect "${MODELS[0]}" >/dev/null 2>&1; then
    if [ -d "$SHARED/checkpoints/akamaster" ]; then
        export LIBKD_BENCH_ZOO_DIR="$SHARED/checkpoints/akamaster"
        echo "demo: the zoo cannot download here; using the local copies in ../shared/checkpoints/akamaster" \
             "(same files: their sha256 is checked against the zoo's)" >&2
    else
        echo "demo: the zoo checkpoints cannot be downloaded and no local copy was found;" \
             "put them in a folder and set LIBKD_BENCH_ZOO_DIR to it" >&2
        exit 2
    fi
fi

echo "== 1/4 generate the derived sets ($SOURCE)" >&2
libkd-bench generate-sets --source "$SOURCE" --sets-dir "$WORK/sets" "${LIMIT_ARGS[@]}"
libkd-bench preview --sets-dir "$WORK/sets" --png "$WORK/preview.png"
echo "== 2/4 score ${MODELS[*]}" >&2
libkd-bench score "${MODELS[@]}" --sets-dir "$WORK/sets" --results "$WORK/results"
echo "== 3/4 leaderboard" >&2
libkd-bench leaderboard --results "$WORK/results" --out "$WORK/leaderboard"
echo "== 4/4 done: contact sheet $WORK/preview.png, run records $WORK/results/runs/," \
     "leaderboard $WORK/leaderboard/ (leaderboard.csv, leaderboard.md, plots)" >&2

#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: set up the environment, generate every weight-free derived
# set from the clean CIFAR-10 test split, and draw the contact sheet.
#
# Data: the official CIFAR-10 test split (downloaded once into $LIBKD_BENCH_DATA or ~/.cache/libkd-bench/data).
# Offline, it falls back to the local JPEG copy in ../shared/data when present and says so.
# Environment: LIBKD_BENCH_SOURCE (any --source value) overrides the choice; LIBKD_BENCH_LIMIT=N keeps a
# class-balanced subset of N images; LIBKD_BENCH_WORK (default ./work) receives the sets and the results.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"

WORK="${LIBKD_BENCH_WORK:-$ROOT/work}"
SHARED_NPZ="$ROOT/../shared/data/cifar10-jpeg/test.npz"
LIMIT_ARGS=()
[ -n "${LIBKD_BENCH_LIMIT:-}" ] && LIMIT_ARGS=(--limit "$LIBKD_BENCH_LIMIT")

if [ -n "${LIBKD_BENCH_SOURCE:-}" ]; then
    SOURCE="$LIBKD_BENCH_SOURCE"
elif python -c 'from datasets_gen.sources import load_source; load_source("cifar10")' 2>/dev/null; then
    SOURCE=cifar10
elif [ -f "$SHARED_NPZ" ]; then
    SOURCE="npz:$SHARED_NPZ"
    echo "demo: the official CIFAR-10 cannot be downloaded here; using the local JPEG copy $SHARED_NPZ" \
         "(a different source: its results are labelled with their own source id)" >&2
else
    echo "demo: the official CIFAR-10 cannot be downloaded and no local copy was found;" \
         "set LIBKD_BENCH_SOURCE=npz:PATH or put the data in \$LIBKD_BENCH_DATA" >&2
    exit 2
fi

libkd-bench generate-sets --source "$SOURCE" --out "$WORK/sets" "${LIMIT_ARGS[@]}"
libkd-bench preview "$WORK/sets" --out "$WORK/preview.png"

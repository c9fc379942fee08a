#!/usr/bin/env bash
# Sourced by the project's studies (scripts/reference-leaderboard.sh, scripts/recipe-control-study.sh): where the
# shared CIFAR-10 JPEG test copy and the zoo checkpoints are, and how a study's leaderboard is published.
#   require_shared "study name"     exit 2 with one line when ../shared is not beside the checkout
#   publish_leaderboard RESULTS OUT write OUT (leaderboard, plots, run records) in one rename
# Relative to the checkout (the studies run from its root): records keep a location as it was given, and a path
# relative to the repository reads the same on every machine.
SHARED="../shared"
NPZ="$SHARED/data/cifar10-jpeg/test.npz"
export LIBKD_BENCH_ZOO_DIR="${LIBKD_BENCH_ZOO_DIR:-$SHARED/checkpoints/akamaster}"

require_shared() {
    if [ ! -f "$NPZ" ] || [ ! -d "$LIBKD_BENCH_ZOO_DIR" ]; then
        echo "$1: $NPZ or $LIBKD_BENCH_ZOO_DIR not found; it needs ../shared beside the checkout" >&2
        exit 2
    fi
}

publish_leaderboard() {
    local results="$1" out="$2"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/runs"
    cp "$results"/runs/*.json "$out.tmp/runs/"
    libkd-bench leaderboard --results "$results" --out "$out.tmp" >/dev/null
    rm -rf "$out" && mv "$out.tmp" "$out"
}

#!/usr/bin/env bash
# The project's own regression guard: rebuild every weight-free set on a fixed class-balanced 2,000-image
# subset of ../shared/data/cifar10-jpeg/test.npz, score the akamaster ResNet-20 and ResNet-56 from
# ../shared/checkpoints (through the zoo, so their sha256 is verified), and compare every accuracy, bias
# ratio and shape bias with the committed baseline results/ci-baseline.csv. The pipeline is deterministic,
# so any change beyond 0.005 (about one image in 200), up or down, fails: a shifted generator, metric or
# model loader shows up here even when it is smaller than the sampling noise. Then `libkd-bench validate --mutants`
# scores the control models on the same sets (plus the hand-made CIFAR-10G sets from ../shared) and checks their
# known answers, probes and external agreement, and that every deliberately broken variant of the sets is caught:
# a generator change that makes a set stop measuring its cue fails here too, and so does a check that goes blind.
#
#   scripts/regression-guard.sh            check against the baseline
#   scripts/regression-guard.sh --update   rewrite the baseline after an intended change (commit it with why)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"

SHARED="$ROOT/../shared"
NPZ="$SHARED/data/cifar10-jpeg/test.npz"
CHECKPOINTS="$SHARED/checkpoints/akamaster"
BASELINE="$ROOT/results/ci-baseline.csv"
if [ ! -f "$NPZ" ] || [ ! -d "$CHECKPOINTS" ]; then
    echo "regression guard: $NPZ or $CHECKPOINTS not found; the guard needs ../shared beside the checkout" >&2
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/libkd-bench-guard.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

libkd-bench generate-sets --source "npz:$NPZ" --limit 2000 --seed 0 --sets-dir "$WORK/sets" --workers 2 --no-progress
LIBKD_BENCH_ZOO_DIR="$CHECKPOINTS" libkd-bench score zoo:akamaster-resnet20 zoo:akamaster-resnet56 \
    --sets-dir "$WORK/sets" --results "$WORK/results" --no-progress >/dev/null
libkd-bench leaderboard --results "$WORK/results" --out "$WORK/leaderboard" >/dev/null

CHECK=(libkd-bench check --baseline-csv "$BASELINE" --results "$WORK/results" --strict --tolerance 0.005
       --metrics accuracy,bias_ratio,shape_bias,shape_bias_class_mean)
if [ "${1:-}" = "--update" ]; then
    "${CHECK[@]}" --update-baseline
else
    "${CHECK[@]}"
fi
# The opt-in readable silhouettes and the external shape reference, after the check (the baseline covers the
# default sets only): validate checks their known answers too.
libkd-bench generate-sets --sets readable --source "npz:$NPZ" --limit 2000 --seed 0 --sets-dir "$WORK/sets" --no-progress
CIFAR10G="$SHARED/data/cifar10g"
if [ -d "$CIFAR10G/224x224" ]; then
    LIBKD_BENCH_CIFAR10G="$CIFAR10G" libkd-bench generate-sets --sets cifar10g --source "npz:$NPZ" --limit 2000 \
        --seed 0 --sets-dir "$WORK/sets" --no-progress
fi
# Reuses the ResNets' cached logits (same checkpoints, same sets); exit 1 when a check fails or a mutant passes.
LIBKD_BENCH_ZOO_DIR="$CHECKPOINTS" libkd-bench validate --sets-dir "$WORK/sets" --results "$WORK/results" --no-progress \
    --mutants

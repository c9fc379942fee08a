#!/usr/bin/env bash
# The recipe control of the CNN -> CNN reference students: does Hinton KD from the zoo ResNet-56 move a ResNet-20
# toward its teacher further than the teacher's own data and recipe do without any distillation? Scores, on every
# default set of the class-balanced 2,000-image subset of the shared CIFAR-10 JPEG test copy:
#   teacher           zoo:akamaster-resnet56     (akamaster's recipe, official training split)
#   baseline          zoo:ref-resnet20-baseline  (the project's recipe on the shared JPEG train copy)
#   recipe control    zoo:akamaster-resnet20     (the teacher's recipe and data, no KD)
#   student           zoo:ref-resnet20-kd        (Hinton KD from the teacher, the baseline's recipe)
# and writes results/recipe-control/ (long CSV, Markdown with the transfer table, the run records).
# Deterministic; about 5 minutes on two cores from nothing.
#
# Environment: LIBKD_BENCH_WORK (default ./work/recipe-control) receives the sets and the logits cache.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"

source "$ROOT/scripts/shared-subset.sh"
require_shared "recipe-control study"
WORK="${LIBKD_BENCH_WORK:-work/recipe-control}"
OUT="results/recipe-control"
RESULTS="$WORK/results"

libkd-bench generate-sets --source "npz:$NPZ" --limit 2000 --seed 0 --sets-dir "$WORK/sets" --workers 2 --no-progress
score() {
    libkd-bench score "$@" --sets-dir "$WORK/sets" --results "$RESULTS" --adv none --no-attention --no-progress \
        >/dev/null
}
score zoo:akamaster-resnet56 --name resnet56
score zoo:ref-resnet20-baseline --name resnet20-baseline
score zoo:akamaster-resnet20 --name resnet20-recipe
score zoo:ref-resnet20-kd --name resnet20-kd --teacher resnet56 --baseline resnet20-baseline \
    --recipe-control resnet20-recipe --kd-method "Hinton KD (T=4, alpha=0.9)"

publish_leaderboard "$RESULTS" "$OUT"
echo "recipe-control study written to $OUT" >&2

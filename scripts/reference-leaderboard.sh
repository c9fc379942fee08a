#!/usr/bin/env bash
# The project's reference leaderboard: score the reference models (trained by `libkd-bench train`, shipped in
# the zoo) with their teachers and baselines on every weight-free set of the class-balanced 2,000-image subset
# of the shared CIFAR-10 JPEG test copy and the 15 CIFAR-10-C corruptions, with attention maps, and write
# results/reference/ (long CSV, Markdown, plots, attention panels) and the run records in
# results/reference/runs/. Deterministic: run it again and nothing changes.
#
#   scripts/reference-leaderboard.sh          (logits are cached in work/, so a rerun recomputes only what is new;
#                                              from nothing about 2.5 hours of two CPU cores, most of it RedNet,
#                                              the ensemble and the corruptions)
#
# Environment: LIBKD_BENCH_WORK (default ./work/reference) receives the sets and the logits cache.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"

source "$ROOT/scripts/shared-subset.sh"
require_shared "reference leaderboard"
WORK="${LIBKD_BENCH_WORK:-work/reference}"
OUT="results/reference"
RESULTS="$WORK/results"

GENERATE=(libkd-bench generate-sets --source "npz:$NPZ" --limit 2000 --seed 0 --sets-dir "$WORK/sets" --workers 2 --no-progress)
"${GENERATE[@]}"                      # every default set
"${GENERATE[@]}" --sets corruptions   # and the opt-in CIFAR-10-C family
# PGD only (eps 2/255 and 8/255, 200 images): the attacks would otherwise take most of the CPU time.
score() {
    libkd-bench score "$@" --sets-dir "$WORK/sets" --results "$RESULTS" --adv pgd --adv-eps 2,8 --adv-n 200 \
        --no-progress >/dev/null
}

# The involution teacher runs at about 30 images/s on two CPU cores: 150,000 corrupted images would take over an
# hour for it and again for the ensemble, so those two are scored on every set but the corruptions.
BIAS_SETS="$(python -c 'from libkd_bench.datasets_gen.registry import default_set_names as d; print(",".join(d()))')"

# Teachers: the zoo's CNN, the INN trained by ref-rednet, and LIB-KD's ensemble of the two.
score zoo:akamaster-resnet56 --name resnet56
score zoo:ref-rednet --name rednet --sets "$BIAS_SETS"
score --ensemble zoo:akamaster-resnet56 zoo:ref-rednet --name resnet56+rednet --sets "$BIAS_SETS"
# Baselines: the students' architectures trained on labels only.
score zoo:ref-resnet20-baseline --name resnet20-baseline
score zoo:ref-vit-baseline --name vit-baseline
# Recipe control of the CNN students: the student's architecture trained with the teacher's data and recipe.
score zoo:akamaster-resnet20 --name resnet20-recipe
# Students.
score zoo:ref-resnet20-kd --name resnet20-kd --teacher resnet56 --baseline resnet20-baseline \
    --recipe-control resnet20-recipe --kd-method "Hinton KD (T=4, alpha=0.9)"
score zoo:ref-resnet20-kdlayer --name resnet20-kdlayer --teacher resnet56 --baseline resnet20-baseline \
    --recipe-control resnet20-recipe --kd-method "learnable KD layer (1x1-BN-ReLU-1x1 on teacher logits)"
score zoo:ref-vit-kd --name vit-kd --teacher resnet56 --baseline vit-baseline --kd-method "soft logit KD (T=4)"
score zoo:ref-vit-disttoken --name vit-disttoken --teacher resnet56 --baseline vit-baseline \
    --kd-method "distillation token, hard distillation"
score zoo:ref-vit-libkd --name vit-libkd --teacher resnet56+rednet --baseline vit-baseline \
    --kd-method "LIB-KD: distillation token, CNN + INN ensemble, precomputed logits"

publish_leaderboard "$RESULTS" "$OUT"
echo "reference leaderboard written to $OUT" >&2

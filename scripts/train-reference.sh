#!/usr/bin/env bash
# Train the reference models (every `ref-*` recipe) side by side on one machine, meant for one CUDA GPU, and
# print one line per model: clean accuracy, training time, seconds per epoch.
#
# Usage: scripts/train-reference.sh OUTDIR [RECIPE...]      (default: every ref-* recipe)
#
# Needs python3 with torch, numpy, pillow, safetensors, pyyaml and tqdm; the project runs from this checkout
# (PYTHONPATH), it need not be installed. Environment:
#   TRAIN_DATA   the CIFAR-10 train split, train-jpeg.npz (default ../shared/data/cifar10-jpeg/train-jpeg.npz)
#   TEST_DATA    the test split npz with x, y, for the clean accuracy (default: test.npz beside TRAIN_DATA)
#   TEACHER_DIR  folder with the akamaster checkpoints, e.g. resnet56-4bfd9763.th (default ../shared/checkpoints/akamaster)
#   PYTHON       interpreter (default python3)
#   TRAIN_ARGS   extra flags for every `libkd-bench train`, e.g. "--epochs 1 --limit 512 --device cpu"
# OUTDIR receives NAME.safetensors + NAME.safetensors.json, NAME.log, work/NAME/ (per-epoch checkpoints: run the
# script again to resume) and cache/ (the decoded train split). ref-rednet trains alongside every recipe that
# does not need it; the recipes taught by it (ref-vit-libkd) start when it is done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RECIPE...]" >&2; exit 2; }
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
PY="${PYTHON:-python3}"
TRAIN_DATA="${TRAIN_DATA:-$ROOT/../shared/data/cifar10-jpeg/train-jpeg.npz}"
TEST_DATA="${TEST_DATA:-$(dirname "$TRAIN_DATA")/test.npz}"
TEACHER_DIR="${TEACHER_DIR:-$ROOT/../shared/checkpoints/akamaster}"
read -r -a EXTRA <<< "${TRAIN_ARGS:-}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LIBKD_BENCH_TRAIN_CACHE="$OUT/cache"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
for f in "$TRAIN_DATA" "$TEST_DATA"; do [ -f "$f" ] || { echo "$0: $f not found (set TRAIN_DATA/TEST_DATA)" >&2; exit 2; }; done
[ -d "$TEACHER_DIR" ] || { echo "$0: teacher folder $TEACHER_DIR not found (set TEACHER_DIR)" >&2; exit 2; }

if [ $# -gt 0 ]; then
    RECIPES=("$@")
else
    mapfile -t RECIPES < <("$PY" -m libkd_bench list-recipes | awk 'NR > 1 && $1 ~ /^ref-/ {print $1}')
fi
# Recipes taught by another recipe's model wait for it; the rest start at once.
mapfile -t NEEDS < <("$PY" - "${RECIPES[@]}" <<'PYEOF'
import sys
from libkd_bench.models.training.recipe import RECIPE_TEACHER, get_recipe
for name in sys.argv[1:]:
    needed = [t[len(RECIPE_TEACHER):] for t in get_recipe(name).teachers if t.startswith(RECIPE_TEACHER)]
    print(name, *needed)
PYEOF
)

echo "train-reference: decoding the train split once into $OUT/cache" >&2
"$PY" -c 'import sys; from libkd_bench.models.training.data import load_split; load_split(sys.argv[1])' "$TRAIN_DATA"

declare -A PID
start_recipe() {
    "$PY" -m libkd_bench train "$1" --data "$TRAIN_DATA" --test-data "$TEST_DATA" --out "$OUT" \
        --teacher-dir "$TEACHER_DIR" --no-progress "${EXTRA[@]}" > "$OUT/$1.log" 2>&1 &
    PID[$1]=$!
    echo "train-reference: started $1 (log $OUT/$1.log)" >&2
}
FAILED=()
finish() {  # wait for recipe $1 once; record a failure
    [ -n "${PID[$1]:-}" ] || return 0
    if ! wait "${PID[$1]}"; then FAILED+=("$1"); echo "train-reference: $1 FAILED, see $OUT/$1.log" >&2; fi
    PID[$1]=""
}

WAITING=()
for line in "${NEEDS[@]}"; do
    read -r -a parts <<< "$line"
    if [ ${#parts[@]} -eq 1 ]; then start_recipe "${parts[0]}"; else WAITING+=("$line"); fi
done
for line in "${WAITING[@]}"; do
    read -r -a parts <<< "$line"
    ok=1
    for dep in "${parts[@]:1}"; do
        finish "$dep"
        [ -f "$OUT/$dep.safetensors" ] || ok=0
    done
    if [ $ok -eq 1 ]; then start_recipe "${parts[0]}"; else FAILED+=("${parts[0]}"); fi
done
for name in "${RECIPES[@]}"; do finish "$name"; done

"$PY" - "$OUT" "${RECIPES[@]}" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    sidecar = out / f"{name}.safetensors.json"
    if not sidecar.is_file():
        print(f"{name:24s} no weights (see {out / (name + '.log')})")
        continue
    t = json.loads(sidecar.read_text())["training"]
    timing = t.get("teacher_timing") or {}
    extra = ""
    if timing:
        online = t["epoch_seconds"] + timing["online_teacher_seconds_per_epoch"]
        extra = f", teacher bank {timing['bank_build_seconds']:.0f} s; epoch {t['epoch_seconds']:.1f} s precomputed vs ~{online:.1f} s online"
    print(
        f"{name:24s} clean acc {100 * t['clean_accuracy']:6.2f}% ({t['weights_dtype']}, fp32 {100 * t['clean_accuracy_fp32']:.2f}%), "
        f"{t['schedule']['epochs']} epochs in {t['train_seconds']:.0f} s ({t['epoch_seconds']:.1f} s/epoch) on {t['device']}{extra}"
    )
PYEOF
if [ ${#FAILED[@]} -gt 0 ]; then echo "train-reference: failed: ${FAILED[*]}" >&2; exit 1; fi

#!/usr/bin/env bash
# The reference study without confounds, on one CUDA GPU: train every `study-*` recipe side by side (teachers
# ResNet-56 and RedNet, ResNet-20 baselines and controls and students, ViT students; see models/recipes/study.py),
# then score every trained model on the full 10,000-image shared CIFAR-10 JPEG test copy (every default set, PGD
# and AutoAttack on 1,000 images, attention maps on 500) and write the leaderboard to results/reference/.
#
# Usage: scripts/train-study.sh OUTDIR [RECIPE...]      (default: every study-* recipe)
#
# Training goes through scripts/train-reference.sh (same environment: TRAIN_DATA, TEST_DATA, TEACHER_DIR, PYTHON,
# TRAIN_ARGS): per-epoch checkpoints in OUTDIR/models/work/NAME/, so running the script again resumes every
# unfinished training and keeps the finished ones; a recipe taught by another recipe's model starts when that
# model is exported. The sets are generated on the CPU while the GPU trains. Scoring environment:
#   SCORE_DEVICE   device for `libkd-bench score` (default cuda)
#   TEST_LIMIT     class-balanced subset of the test copy for the sets (default: all 10,000 images)
#   SETS           sets or families to generate and score (default: every default set, plus corruptions)
#   ADV, ADV_N     attacks and attacked images (default pgd,autoattack and 1000)
#   ATTENTION_N    attention panel size (default 500)
#   RESULTS_OUT    where the leaderboard goes (default results/reference)
# OUTDIR also receives sets/ and results/ (run records and the logits cache, so a rerun rescores nothing).
# The trainings need one GPU: on a CPU they take days.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RECIPE...]" >&2; exit 2; }
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
source "$ROOT/scripts/shared-subset.sh"
require_shared "study"
MODELS="$OUT/models"
SETS_DIR="$OUT/sets"
RESULTS="$OUT/results"
RESULTS_OUT="${RESULTS_OUT:-results/reference}"
SCORE_DEVICE="${SCORE_DEVICE:-cuda}"
BIAS_SETS="$("$PY" -c 'from libkd_bench.datasets_gen.registry import default_set_names as d; print(",".join(d()))')"
SETS="${SETS:-$BIAS_SETS,corruptions}"

if [ $# -gt 0 ]; then
    RECIPES=("$@")
else
    mapfile -t RECIPES < <("$PY" -c '
from libkd_bench.models.training.recipe import recipe_names
print("\n".join(n for n in recipe_names() if n.startswith("study-")))')
fi

LIMIT=()
[ -n "${TEST_LIMIT:-}" ] && LIMIT=(--limit "$TEST_LIMIT")
echo "train-study: generating the sets ($SETS) in $SETS_DIR alongside the trainings" >&2
"$PY" -m libkd_bench generate-sets --source "npz:$NPZ" "${LIMIT[@]}" --seed 0 --sets-dir "$SETS_DIR" \
    --sets "$SETS" --workers "${SET_WORKERS:-8}" --no-progress > "$OUT/generate-sets.log" 2>&1 &
SETS_PID=$!

TRAINED=0
"$ROOT/scripts/train-reference.sh" "$MODELS" "${RECIPES[@]}" || TRAINED=$?
if ! wait "$SETS_PID"; then echo "train-study: generate-sets FAILED, see $OUT/generate-sets.log" >&2; exit 1; fi

# One score command per exported model, teachers and baselines first, from the recipes themselves: the record name
# is the recipe name without `study-`; students name their teacher (ensemble), baseline and seed group.
"$PY" - "$MODELS" "${RECIPES[@]}" > "$OUT/score-plan.tsv" <<'PYEOF'
import re
import sys
from pathlib import Path

from libkd_bench.models.training.recipe import Method, get_recipe

models = Path(sys.argv[1])
recipes = [get_recipe(n) for n in sys.argv[2:] if (models / f"{n}.safetensors").is_file()]
short = lambda name: name.split(":", 1)[-1].removeprefix("study-")  # noqa: E731
scored = set()
rows = []
for recipe in sorted(recipes, key=lambda r: (bool(r.teachers), r.baseline is not None)):
    teachers = [short(t) for t in recipe.teachers]
    if len(teachers) > 1 and all(t in scored for t in teachers):
        files = " ".join(str(models / f"study-{t}.safetensors") for t in teachers)
        rows.append(["+".join(teachers), files, "--ensemble"])
        scored.add("+".join(teachers))
    flags = []
    teacher = "+".join(teachers) or ("resnet56" if recipe.method is Method.LABEL_SMOOTHING else "")
    if teacher in scored:
        flags += ["--teacher", teacher]
    if recipe.baseline and short(recipe.baseline) in scored:
        flags += ["--baseline", short(recipe.baseline)]
    seed = re.fullmatch(r"(.*)-s\d+", short(recipe.name))
    if seed:
        flags += ["--seed-of", seed.group(1)]
    if recipe.teachers or recipe.method is Method.LABEL_SMOOTHING:
        flags += ["--kd-method", recipe.description]
    rows.append([short(recipe.name), str(models / f"{recipe.name}.safetensors"), *flags])
    scored.add(short(recipe.name))
for row in rows:
    print("\t".join(row))
PYEOF

while IFS=$'\t' read -r -a row; do
    name="${row[0]}"
    read -r -a files <<< "${row[1]}"
    echo "train-study: scoring $name" >&2
    "$PY" -m libkd_bench score "${files[@]}" --name "$name" "${row[@]:2}" --sets-dir "$SETS_DIR" --sets "$SETS" \
        --results "$RESULTS" --adv "${ADV:-pgd,autoattack}" --adv-n "${ADV_N:-1000}" \
        --attention-n "${ATTENTION_N:-500}" --device "$SCORE_DEVICE" --no-progress > "$OUT/score-$name.log" 2>&1 ||
        { echo "train-study: scoring $name FAILED, see $OUT/score-$name.log" >&2; exit 1; }
done < "$OUT/score-plan.tsv"

# The gap the study needs: the ResNet-56 teacher at least 3 points above the ResNet-20 baseline (mean of seeds).
"$PY" - "$MODELS" <<'PYEOF'
import json
import sys
from pathlib import Path

models = Path(sys.argv[1])
acc = lambda n: json.loads((models / f"{n}.safetensors.json").read_text())["training"]["clean_accuracy"]  # noqa: E731
seeds = [n for n in (f"study-resnet20-baseline-s{s}" for s in range(3)) if (models / f"{n}.safetensors.json").is_file()]
if (models / "study-resnet56.safetensors.json").is_file() and seeds:
    gap = 100 * (acc("study-resnet56") - sum(map(acc, seeds)) / len(seeds))
    verdict = "meets" if gap >= 3 else "MISSES"
    print(f"train-study: ResNet-56 teacher - ResNet-20 baseline = {gap:+.2f} points; {verdict} the 3-point requirement")
PYEOF

mkdir -p "$(dirname "$RESULTS_OUT")"
publish_leaderboard "$RESULTS" "$RESULTS_OUT"
echo "train-study: leaderboard written to $RESULTS_OUT" >&2
if [ "$TRAINED" -ne 0 ]; then echo "train-study: some trainings failed (see above)" >&2; exit 1; fi

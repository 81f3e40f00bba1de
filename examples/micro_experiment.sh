#!/usr/bin/env bash
# Micro experiment: does CoDo pretraining beat random init and an image-level BYOL baseline?
#
# CPU-sized: 21 min on 2 cores here (docs/results.md). Splits the real data of DATA.md (tuxpaint
# cutouts, scratch backgrounds; fetch them with scripts/fetch_test_data.sh) into a pretraining and a held-out
# part (classes HELDOUT_CLASSES, every third background); pretrains a resnet18-FPN twice on the first
# part (CoDo, then --objective image with the same steps and views); probes background invariance
# and fine-tunes Mask R-CNN v2 from each (and from random init) on a COCO set synthesised from the
# held-out part only; writes OUT/results.md (a markdown table) and OUT/results.json.
#
#   bash examples/micro_experiment.sh                  # the full run of docs/results.md
#   STEPS=2 ITERS=2 ... bash examples/micro_experiment.sh   # a smoke run (tests/test_examples.py)
#
# Run it again to resume: finished steps (runs, COCO sets, result files) are kept.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-${CODO_TEST_DATA:-$repo/.cache/test-data}}  # where scripts/fetch_test_data.sh puts them
OUT=${OUT:-micro-experiment}
HELDOUT_CLASSES=${HELDOUT_CLASSES:-"food plants vehicles"}
STEPS=${STEPS:-120}                        # pretraining steps (each run)
BATCH=${BATCH:-8}                          # pretraining batch (3 views of 224/224/112 px)
LR=${LR:-1.0}                              # pretraining base lr for a batch of 256
PROBE_N=${PROBE_N:-100}                    # instances in the probe
FT_SIZE=${FT_SIZE:-256}                    # fine-tuning image side
FT_TRAIN=${FT_TRAIN:-150}                  # fine-tuning samples (2 images each)
FT_VAL=${FT_VAL:-40}                       # validation samples (2 images each)
ITERS=${ITERS:-120}                        # fine-tuning iterations of 2 images
FT_LR=${FT_LR:-0.08}                       # fine-tuning SGD rate for 16 images (4x detectron2's: short runs)
SEED=${SEED:-0}
DEVICE=${DEVICE:-cpu}                      # cuda: pretrain and fine-tune on a GPU
WORKERS=${WORKERS:-1}                      # synthesis processes feeding pretraining

for dir in "$DATA/tuxpaint" "$DATA/scratch"; do
  [ -d "$dir" ] || { echo "micro_experiment: no $dir; run scripts/fetch_test_data.sh (or set DATA)" >&2; exit 2; }
done
mkdir -p "$OUT/results"
split="$OUT/data"

# 1. Split: of each held-out class every third file to fine-tuning val, the others to its train;
#    the other classes to pretraining; every third background (sorted) held out. Files are copied
#    flat into one folder per class.
if [ ! -e "$split/.done" ]; then
  rm -rf "$split"
  declare -A held=()  # files of each held-out class so far
  find "$DATA/tuxpaint" -name '*.png' | sort | while read -r file; do
    rel=${file#"$DATA/tuxpaint/"}; class=${rel%%/*}
    if [[ " $HELDOUT_CLASSES " == *" $class "* ]]; then
      k=${held[$class]:-0}; held[$class]=$((k + 1))
      part=heldout/$([ $((k % 3)) -eq 2 ] && echo val || echo train)
    else
      part=pretrain
    fi
    mkdir -p "$split/instances/$part/$class" && cp "$file" "$split/instances/$part/$class/${rel//\//_}"
  done
  i=0
  find "$DATA/scratch" -name '*.jpg' | sort | while read -r file; do
    part=$([ $((i % 3)) -eq 0 ] && echo heldout || echo pretrain); i=$((i + 1))
    mkdir -p "$split/backgrounds/$part" && cp "$file" "$split/backgrounds/$part/"
  done
  touch "$split/.done"
fi
instances="folder:$split/instances"; backgrounds="folder:$split/backgrounds"

# 2. The downstream COCO sets, synthesised from the held-out parts only (exact boxes, no jitter).
coco_set() {  # NAME INSTANCES SAMPLES SEED
  codo-aug synth --format coco --out "$OUT/coco/$1" --instances "$instances/heldout/$2" \
    --backgrounds "$backgrounds/heldout" --num-samples "$3" --seed "$4" \
    --set "view_sizes=[$FT_SIZE, $FT_SIZE]" --set 'instances=[2, 4]' --set 'scale=[0.2, 0.5]' \
    --set 'jitter=["none"]' --set 'photometric="none"'
}
coco_set train train "$FT_TRAIN" "$((SEED + 1))"
coco_set val val "$FT_VAL" "$((SEED + 2))"

# 3. Pretraining: CoDo and the image-level baseline, same data, backbone, steps and seed.
for objective in codo image; do
  codo-train run --instances "$instances/pretrain" --backgrounds "$backgrounds/pretrain" --objective "$objective" \
    --arch resnet18 --steps "$STEPS" --batch-size "$BATCH" --lr "$LR" --seed "$SEED" \
    --workers "$WORKERS" --device "$DEVICE" --out "$OUT/runs/$objective"
  [ -s "$OUT/runs/$objective/weights.pt" ] || codo-train export "$OUT/runs/$objective" --out "$OUT/runs/$objective/weights.pt"
done

# 4. Background-invariance probe on held-out instances and backgrounds (random init comes with each).
for objective in codo image; do
  result="$OUT/results/probe-$objective.json"
  [ -s "$result" ] || { codo-train probe "$OUT/runs/$objective" --instances "$instances/heldout" \
    --backgrounds "$backgrounds/heldout" --num-instances "$PROBE_N" --seed "$SEED" --json > "$result.tmp" \
    && mv "$result.tmp" "$result"; }
done

# 5. Fine-tuning Mask R-CNN v2 on the held-out COCO set: random init, image-level BYOL, CoDo.
for init in random image codo; do
  result="$OUT/results/finetune-$init.json"
  weights=$([ "$init" = random ] && echo none || echo "$OUT/runs/$init/weights.pt")
  [ -s "$result" ] || { codo-train finetune --weights "$weights" --arch resnet18 \
    --coco "$OUT/coco/train/annotations/instances.json:$OUT/coco/train/images" \
    --val "$OUT/coco/val/annotations/instances.json:$OUT/coco/val/images" \
    --iters "$ITERS" --lr "$FT_LR" --min-size "$FT_SIZE" --rois-per-image 128 --proposals 300 \
    --seed "$SEED" --device "$DEVICE" --json > "$result.tmp" \
    && mv "$result.tmp" "$result"; }
done

# 6. The table.
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
res = {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}
rows = [("random init", res["probe-codo"]["random_init"], res["finetune-random"]),
        ("image-level BYOL", res["probe-image"]["checkpoint"], res["finetune-image"]),
        ("CoDo", res["probe-codo"]["checkpoint"], res["finetune-codo"])]
pct = lambda x: f"{100 * x:.1f}"
lines = ["| init | probe top-1 | probe top-5 | bbox AP | bbox AP50 | bbox AP75 | segm AP | segm AP50 |",
         "|---|---|---|---|---|---|---|---|"]
for name, probe, ft in rows:
    segm = ft.get("segm", [float("nan")] * 12)
    lines.append(f"| {name} | {pct(probe['top1'])} | {pct(probe['top5'])} | {pct(ft['bbox'][0])} | "
                 f"{pct(ft['bbox'][1])} | {pct(ft['bbox'][2])} | {pct(segm[0])} | {pct(segm[1])} |")
table = "\n".join(lines) + "\n"
(out / "results.md").write_text(table)
(out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
print(table, end="")
PY

#!/usr/bin/env bash
# One prepared check for a GPU machine: synthesise shards on every core, then pretrain ResNet50-FPN
# on the GPU (bf16 autocast, channels_last, LARS) and print samples/s, data-wait fraction and peak
# GPU memory. Runs from a checkout
# (PYTHONPATH=.), so it needs only the project's dependencies installed, not the project.
#   bash bench/gpu_check.sh [STEPS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100}
BATCH=${2:-64}
WORK=${CODO_GPU_WORK:-/tmp/codo-gpu-check}
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} CODO_CACHE=$WORK/cache
rm -rf "$WORK/shards" "$WORK/run"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
CORES=$(nproc)
SECONDS=0
$PY -m cli.aug synth --out "$WORK/shards" --num-samples $((BATCH * 40)) --shard-size 256 --workers "$CORES"
echo "synth: $((BATCH * 40)) samples on $CORES cores in ${SECONDS} s"
$PY -m cli.train run --shards "$WORK/shards" --out "$WORK/run" --arch resnet50 --device cuda \
    --batch-size "$BATCH" --steps "$STEPS" --workers $((CORES > 12 ? 12 : CORES)) --save-every "$STEPS" \
    --amp bf16 --channels-last --optimizer lars --lr 1.0
$PY - "$WORK/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
tail = rows[len(rows) // 2:]  # the second half: past warm-up
mean = lambda k: sum(r[k] for r in tail) / len(tail)
print(f"steps {len(rows)}  loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}")
print(f"samples/s (2nd half mean): {mean('samples_per_s'):.1f}   data-wait fraction: {mean('data_wait'):.3f}   "
      f"peak GPU memory: {max(r['gpu_mem_gib'] for r in rows):.2f} GiB")
PY

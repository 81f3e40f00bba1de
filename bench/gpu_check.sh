#!/usr/bin/env bash
# One prepared check for a GPU machine: synthesise shards on every core, then pretrain ResNet50-FPN
# on the GPU (bf16 autocast, channels_last, LARS, torch.compile) and print samples/s, data-wait
# fraction, peak GPU memory and achieved TFLOP/s, against issue 12's target (>= 1,200 samples/s,
# data wait < 5 %). Runs from a checkout (PYTHONPATH=.), so it needs only the project's dependencies
# installed, not the project.
#   bash bench/gpu_check.sh [STEPS] [BATCH]          # defaults 100 64
#   COMPILE=0 bash bench/gpu_check.sh                # eager: no --compile for codo-train run
# samples/s is wall clock: the times at which metrics.jsonl gains its lines (every log_every steps a
# fetch waits for the device, so a line's arrival means its step is done), second half of the run.
# The per-step timer of metrics.jsonl is printed too; it misses the device time a fetch waits for.
# TFLOP/s = FLOPs of one training step (forward and backward, torch.utils.flop_counter, eager, same
# model, batch and settings: a 2-step run's count less a 1-step run's) x steps/s.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100}
BATCH=${2:-64}
COMPILE=${COMPILE:-1}
ARCH=resnet50
WORK=${CODO_GPU_WORK:-/tmp/codo-gpu-check}
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} CODO_CACHE=$WORK/cache
rm -rf "$WORK/shards" "$WORK/run" "$WORK/flops"
mkdir -p "$WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torchvision
print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
CORES=$(nproc)
SECONDS=0
$PY -m cli.aug synth --out "$WORK/shards" --num-samples $((BATCH * 40)) --shard-size 256 --workers "$CORES"
echo "synth: $((BATCH * 40)) samples on $CORES cores in ${SECONDS} s"

# FLOPs of one step: bench_flops SHARDS OUT ARCH BATCH DEVICE AMP CHANNELS_LAST(0/1); prints the count.
bench_flops() {
    $PY - "$@" <<'PY'
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from codo_train import TrainConfig, train

shards, out, arch, batch, device, amp, channels_last = sys.argv[1:]


def flops(steps: int) -> int:
    cfg = TrainConfig(shards=shards, out=str(Path(out) / f"steps-{steps}"), steps=steps, arch=arch,
                      device=device, batch_size=int(batch), workers=0, amp=amp,
                      channels_last=channels_last == "1", save_every=10**6, seed=0)
    with FlopCounterMode(display=False) as counter:
        train(cfg)
    return counter.get_total_flops()


print(flops(2) - flops(1))  # what the runs share (building, the last step's health figures) cancels
PY
}
FLOPS=$(bench_flops "$WORK/shards" "$WORK/flops" "$ARCH" "$BATCH" cuda bf16 1 | tail -n 1)
echo "FLOPs per step ($ARCH-FPN, batch $BATCH, eager): $FLOPS"

# Watch metrics.jsonl: one "time lines" row each time its line count changes.
$PY - "$WORK/run/metrics.jsonl" "$WORK/arrivals.txt" <<'PY' &
import os, sys, time
path, out = sys.argv[1:]
seen, size = -1, -1
with open(out, "w", buffering=1) as f:
    while True:
        try:
            now = os.stat(path).st_size
        except FileNotFoundError:
            now = 0
        if now != size:
            t = time.monotonic()
            size = now
            lines = open(path, "rb").read().count(b"\n") if now else 0
            if lines != seen:
                seen = lines
                f.write(f"{t} {lines}\n")
        time.sleep(0.002)
PY
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true' EXIT
COMPILE_FLAG=""
if [ "$COMPILE" = 1 ]; then COMPILE_FLAG=--compile; fi
$PY -m cli.train run --shards "$WORK/shards" --out "$WORK/run" --arch "$ARCH" --device cuda \
    --batch-size "$BATCH" --steps "$STEPS" --workers $((CORES > 12 ? 12 : CORES)) --save-every "$STEPS" \
    --amp bf16 --channels-last --optimizer lars --lr 1.0 $COMPILE_FLAG
sleep 0.2
kill $WATCH 2>/dev/null || true
$PY - "$WORK/run/metrics.jsonl" "$WORK/arrivals.txt" "$BATCH" "$FLOPS" "$COMPILE" <<'PY'
import json, sys
metrics, arrivals, batch, flops, compiled = sys.argv[1:]
batch, flops = int(batch), int(flops)
rows = [json.loads(line) for line in open(metrics)]
tail = rows[len(rows) // 2:]  # the second half: past warm-up (and compilation)
mean = lambda k: sum(r[k] for r in tail) / len(tail)
seen = [(float(t), int(n)) for t, n in (line.split() for line in open(arrivals))]
t0, n0 = next((t, n) for t, n in seen if n >= len(rows) // 2)
t1, n1 = seen[-1]
steps_per_s = (n1 - n0) / (t1 - t0) if n1 > n0 and t1 > t0 else float("nan")
samples = steps_per_s * batch
wait = mean("data_wait")
print(f"steps {len(rows)}  loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}  "
      f"(bf16, channels_last, LARS, {'compiled' if compiled == '1' else 'eager'})")
print(f"samples/s (wall clock, steps {n0}..{n1}): {samples:.1f}   per-step timer (2nd half mean): "
      f"{mean('samples_per_s'):.1f}")
peak = max(r.get("gpu_mem_gib", 0) for r in rows)
print(f"data-wait fraction: {wait:.3f}   peak GPU memory: {peak:.2f} GiB")
print(f"achieved: {flops / 1e12:.3f} TFLOP per step x {steps_per_s:.2f} steps/s = "
      f"{flops * steps_per_s / 1e12:.1f} TFLOP/s")
ok = samples >= 1200 and wait < 0.05
print(f"target (>= 1200 samples/s, data wait < 5 %): {'met' if ok else 'NOT met'} "
      f"({samples:.0f} samples/s, data wait {wait:.1%})")
PY

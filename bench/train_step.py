"""Training step time on the CPU: data wait vs compute, against the same model fed a constant batch.

    python bench/train_step.py [--arch resnet50] [--batch-size 8] [--steps 6]

Synthesises a few `sample` shards, trains with the real loader (codo_train.train), then times the
same model on one batch held in memory; real step / constant step shows what the loader costs.
"""

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from codo_aug import SynthJob, run_synth
from codo_aug.dataset import collate
from codo_aug.shards.dataset import ShardDataset
from codo_train import TrainConfig, train
from codo_train.data import normalise
from codo_train.models.codo import CoDoModel
from codo_train.pairs import pair_losses, total_loss


def constant_batch_step(arch: str, batch, steps: int) -> float:
    """Seconds per step of forward, loss, backward and SGD on one batch kept in memory."""
    torch.manual_seed(0)
    model = CoDoModel(arch).train()
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.01, momentum=0.9)
    views = [normalise(v) for v in batch.views]
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        preds, targets = model(views, batch.rois)
        loss = total_loss(pair_losses(preds, targets, batch.img, batch.ids), {})
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / max(len(times) - 1, 1)  # the first step warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        shards = Path(d) / "shards"
        run_synth(SynthJob(out=shards, num_samples=args.batch_size * (args.steps + 2), shard_size=64))
        cfg = TrainConfig(shards=str(shards), out=str(Path(d) / "run"), steps=args.steps, arch=args.arch,
                          batch_size=args.batch_size, workers=args.workers, save_every=10**6)
        train(cfg)
        rows = [json.loads(x) for x in (Path(d) / "run" / "metrics.jsonl").read_text().splitlines()][1:]
        step = sum(args.batch_size / r["samples_per_s"] for r in rows) / len(rows)
        wait = sum(r["data_wait"] for r in rows) / len(rows)
        batch = collate(list(ShardDataset(str(shards), rank=0, world_size=1, shuffle=0))[: args.batch_size])
        constant = constant_batch_step(args.arch, batch, args.steps)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.arch}-FPN, 3 views (224/224/112), batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, {args.workers} loader worker(s)")
    print(f"real loader:    {step:.2f} s/step = {args.batch_size / step:.2f} samples/s "
          f"(data wait {wait:.1%}, compute {step * (1 - wait):.2f} s)")
    print(f"constant batch: {constant:.2f} s/step = {args.batch_size / constant:.2f} samples/s")
    print(f"real / constant: {step / constant:.2f} (1.00 = the loader costs nothing)")
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()

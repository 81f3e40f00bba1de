"""Training step on the CPU: host overhead (aten ops, syncs, ms per step), R50-FPN real vs constant batch.

    python bench/train_step.py [--host-steps 20] [--host-warmup 5] [--arch resnet50] [--batch-size 8]
                               [--steps 6] [--workers 1] [--skip-r50]

Part a, host overhead: a run small enough that compute is negligible (resnet18-FPN, batch 2, views
64/64/32, no loader workers, the trainer's defaults otherwise: LARS, log_every 10, health_every 20)
trained through the public API, `codo_train.train`, on a few `sample` shards. Every figure is a
difference of two whole runs, `--host-warmup` W steps and W + N (`--host-steps`) steps, divided by N:
what the runs share (imports, model building, the first steps, the final checkpoint) cancels, and what
happens every few steps (a logging fetch every 10 steps, health figures every 20) counts at its share.
 * aten ops/step: profiler events (torch.profiler, CPU) named aten::*, nested ones included ("top":
   only those called from Python, not from another aten op); "in the loader": those under the
   DataLoader's __next__ (collating, decoding), which a run with workers does in the worker processes.
 * syncs/step: calls of aten::_local_scalar_dense (what .item(), float(t), bool(t), .tolist() of a
   scalar call) and aten::nonzero (whose output size the host must wait for): each waits for the
   device on a GPU. They are listed by where they come from (the innermost project frame).
 * ms/step: wall and CPU (this process's) time per step of the same two runs without the profiler
   (best of --repeats by wall); on a shared machine the CPU time is the steadier. The tiny model is
   not free: the 4conv1fc box head costs the same per RoI at any view size (~19 GFLOP a step in all).
 * host ms/step: that CPU time less the profiled runs' self time of the arithmetic kernels
   (convolutions, matmuls, batch norm, RoI align; forward and backward): Python, dispatch, the
   loader, the optimizer's and the bookkeeping's small ops. On a GPU this is what the host spends
   to launch a step.
The script uses only what existed before issue 12 (TrainConfig, train, SynthJob, run_synth), so the
same file measures an older checkout: PYTHONPATH=/path/to/old/checkout python bench/train_step.py.

Part b, loader cost: `--arch` (R50-FPN) at `--batch-size` 8, 3 views 224/224/112, `--workers` loader
worker(s), trained for `--steps` steps twice: with the real loader, and with the trainer's input stream
replaced by its first batch repeated (the only change: codo_train.trainer._stream, patched), so both
runs take the trainer's own step. Step time is the trainer's per-step timer (metrics.jsonl), mean of
the steps after the first. Target: real / constant <= 1.05.
"""

import argparse
import contextlib
import itertools
import json
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from codo_aug import SynthConfig, SynthJob, run_synth
from codo_train import TrainConfig, train

SYNCS = ("aten::_local_scalar_dense", "aten::nonzero")
LOADER = "enumerate(DataLoader)"  # the profiler's name for DataLoader iterators' __next__
KERNELS = ("conv", "mm", "batch_norm", "roi_align")  # ops whose self time is arithmetic: the model's compute


def make_shards(out: Path, samples: int, views: tuple[int, ...]) -> Path:
    run_synth(SynthJob(out=out, num_samples=samples, shard_size=64, config=SynthConfig(view_sizes=views)))
    return out


def tiny_config(shards: Path, out: Path, steps: int, batch: int) -> TrainConfig:
    return TrainConfig(shards=str(shards), out=str(out), steps=steps, arch="resnet18", batch_size=batch,
                       workers=0, save_every=10**6, seed=0)


def _ancestors(event) -> list:
    chain, parent = [], event.cpu_parent
    while parent is not None:
        chain.append(parent)
        parent = parent.cpu_parent
    return chain


def _source(names: list[str]) -> str:
    """The innermost frame of the project's code (codo_train, codo_aug) among an event's ancestors (the
    profiler's Python-function events, with_stack=True)."""
    for name in names:
        for package in ("codo_train/", "codo_aug/"):
            if package in name:
                return package + name.split(package, 1)[1]
    return "?"


def profiled_counts(cfg: TrainConfig) -> tuple[Counter, Counter]:
    """aten event counts of one whole train(cfg), and its syncs by (op, where, in the loader or not)."""
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        train(cfg)
    counts, syncs = Counter(), Counter()
    for event in prof.events():
        if event.name.startswith(("aten::", "torchvision::")) and any(k in event.name for k in KERNELS):
            counts["kernel us"] += event.self_cpu_time_total
        if not event.name.startswith("aten::"):
            continue
        names = [a.name for a in _ancestors(event)]
        in_loader = any(n.startswith(LOADER) for n in names)
        counts["aten"] += 1
        counts["top"] += not any(n.startswith("aten::") for n in names)
        counts["loader"] += in_loader
        if event.name in SYNCS or event.name == "aten::item":
            counts[event.name] += 1
            counts[event.name + " loader"] += in_loader
        if event.name in SYNCS:
            syncs[(event.name, _source(names), in_loader)] += 1
    return counts, syncs


def timed(cfg: TrainConfig) -> tuple[float, float]:
    """Wall and CPU (this process) seconds of one whole train(cfg)."""
    w0, p0 = time.perf_counter(), time.process_time()
    train(cfg)
    return time.perf_counter() - w0, time.process_time() - p0


def host_overhead(args, d: Path) -> None:
    batch, warm, n = 2, args.host_warmup, args.host_steps
    shards = make_shards(d / "tiny", batch * (warm + n) + 16, (64, 64, 32))  # one epoch covers both runs
    runs = itertools.count()

    def cfg(steps: int) -> TrainConfig:
        return tiny_config(shards, d / f"tiny-run-{next(runs)}", steps, batch)

    (c0, s0), (c1, s1) = profiled_counts(cfg(warm)), profiled_counts(cfg(warm + n))
    per = {k: (c1[k] - c0[k]) / n for k in set(c0) | set(c1)}
    (w0, p0), (w1, p1) = (min(timed(cfg(steps)) for _ in range(args.repeats)) for steps in (warm, warm + n))
    syncs = per["aten::_local_scalar_dense"] + per["aten::nonzero"]
    loader_syncs = per["aten::_local_scalar_dense loader"] + per["aten::nonzero loader"]
    print(f"a. host overhead: resnet18-FPN, batch {batch}, views 64/64/32, 0 loader workers, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"   per step = ({warm + n}-step run - {warm}-step run) / {n}")
    print(f"   aten ops/step: {per['aten']:.1f} ({per['top']:.1f} top-level; "
          f"{per['loader']:.1f} in the loader)")
    print(f"   syncs/step:    {syncs:.2f} = _local_scalar_dense {per['aten::_local_scalar_dense']:.2f} "
          f"(.item() {per['aten::item']:.2f}) + nonzero {per['aten::nonzero']:.2f}")
    print(f"                  {syncs - loader_syncs:.2f} in the trainer, {loader_syncs:.2f} in the loader")
    cpu, kernels = (p1 - p0) / n * 1000, per["kernel us"] / 1000
    print(f"   ms/step:       {(w1 - w0) / n * 1000:.1f} wall, {cpu:.1f} CPU (no profiler; "
          f"best of {args.repeats}: {w0:.2f} s and {w1:.2f} s wall)")
    print(f"   host ms/step:  {cpu - kernels:.1f} = CPU {cpu:.1f} - {kernels:.1f} in conv/matmul/batch-norm/"
          f"RoI-align kernels (profiler self time)")
    extra = {k: (s1[k] - s0[k]) / n for k in set(s0) | set(s1)}
    print("   syncs/step by where they come from:")
    for (op, where, in_loader), v in sorted(extra.items(), key=lambda kv: -kv[1]):
        if abs(v) >= 0.005:
            print(f"     {v:6.2f}  {op[6:]:<20} {where}{'  (loader)' if in_loader else ''}")


@contextlib.contextmanager
def constant_stream():
    """The trainer's input stream replaced by its first batch, repeated: the step itself is unchanged."""
    from codo_train import trainer

    real = trainer._stream

    def first_batch_forever(*a, **k):
        stream = real(*a, **k)
        batch = next(stream)
        stream.close()  # stops the loader's workers
        return itertools.repeat(batch)

    trainer._stream = first_batch_forever
    try:
        yield
    finally:
        trainer._stream = real


def step_times(cfg: TrainConfig) -> tuple[float, float]:
    """Mean s/step and data-wait fraction of a run, from its metrics.jsonl (the first step: warm-up)."""
    train(cfg)
    rows = [json.loads(x) for x in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()][1:]
    step = sum(cfg.batch_size / r["samples_per_s"] for r in rows) / len(rows)
    return step, sum(r["data_wait"] for r in rows) / len(rows)


def loader_cost(args, d: Path) -> None:
    shards = make_shards(d / "shards", args.batch_size * (args.steps + 2), (224, 224, 112))

    def cfg(name: str) -> TrainConfig:
        return TrainConfig(shards=str(shards), out=str(d / name), steps=args.steps, arch=args.arch,
                           batch_size=args.batch_size, workers=args.workers, save_every=10**6, seed=0)

    step, wait = step_times(cfg("real"))
    with constant_stream():
        constant, constant_wait = step_times(cfg("constant"))
    ratio = step / constant
    print(f"b. {args.arch}-FPN, 3 views 224/224/112, batch {args.batch_size}, {torch.get_num_threads()} "
          f"thread(s), {args.workers} loader worker(s)")
    print(f"   {args.steps} steps per run, the first one not counted")
    print(f"   real loader:    {step:.2f} s/step = {args.batch_size / step:.2f} samples/s "
          f"(data wait {wait:.1%})")
    print(f"   constant batch: {constant:.2f} s/step = {args.batch_size / constant:.2f} samples/s "
          f"(data wait {constant_wait:.1%})")
    print(f"   real / constant: {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host-steps", type=int, default=20, help="N: steps counted in part a")
    parser.add_argument("--host-warmup", type=int, default=5, help="W: steps of the run subtracted in part a")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each length in part a (best)")
    parser.add_argument("--skip-host", action="store_true", help="skip part a")
    parser.add_argument("--arch", default="resnet50", help="part b's backbone")
    parser.add_argument("--batch-size", type=int, default=8, help="part b's batch")
    parser.add_argument("--steps", type=int, default=6, help="part b's steps per run")
    parser.add_argument("--workers", type=int, default=1, help="part b's loader workers (real loader)")
    parser.add_argument("--skip-r50", action="store_true", help="skip part b")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch's intra-op threads (1: on a shared machine, load stalls OpenMP teams)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        if not args.skip_host:
            host_overhead(args, Path(d))
        if not args.skip_r50:
            loader_cost(args, Path(d))
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

"""train(cfg): the CoDo pretraining loop, read top to bottom."""

import contextlib
import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from codo_aug.config import SynthConfig
from codo_aug.dataset import CoDoDataset
from codo_aug.errors import RunError
from codo_aug.shards.dataset import ShardDataset
from codo_aug.shards.reader import expand_shards

from . import distributed
from .board import TensorBoard
from .checkpoint import (CHECKPOINT, METRICS, TENSORBOARD, check_world, checkpoint_state, keep_metrics_until,
                         load_checkpoint, prepare_run, restore, save_atomic)
from .batch import TrainBatch, collate_for
from .classes import instance_classes
from .config import TrainConfig
from .data import DataPosition, endless_batches, normalise, online_batches
from .distributed import Dist
from .health import HealthMonitor
from .losses.infonce import infonce_loss
from .losses.supervised import roi_class_losses
from .models.codo import CoDoModel, model_for
from .models.levels import LEVELS
from .momentum import momentum_at, update_momentum
from .optim import make_optimizer, warn_if_still
from .losses.keys import LossKey
from .pairs import byol_pair, level_losses, pair_losses, total_loss
from .schedules import lr_at
from .step_figures import StepFigures, fetch


@dataclass
class TrainResult:
    """Where the run wrote and how its loss ended."""

    out: Path
    steps: int
    final_loss: float
    resumed_from: int = 0


def _autocast(cfg: TrainConfig, device: torch.device):
    """bf16 (or fp16 on CUDA) autocast for the forward pass, or nothing."""
    if cfg.amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.amp == "bf16" else torch.float16)


def _loss_fn(cfg: TrainConfig, model: CoDoModel) -> Callable:
    """loss(pred, target, branch): BYOL's, or InfoNCE against the branch's key queue."""
    if cfg.loss == "infonce":
        def infonce(p: torch.Tensor, z: torch.Tensor, branch: str, reduce: bool = True) -> torch.Tensor:
            return infonce_loss(p, z, model.queues[branch].keys, cfg.temperature, reduce)

        return infonce
    return byol_pair


def _forward(model: torch.nn.Module, batch: TrainBatch, cfg: TrainConfig, device: torch.device,
             loss_fn: Callable
             ) -> tuple[dict[LossKey, torch.Tensor], list[dict[str, torch.Tensor]],
                        tuple[torch.Tensor, torch.Tensor] | None]:
    """One micro-batch: per view-pair losses, the target projections (keys to queue), and the loss sums
    and counts by FPN level (metrics; None without levels). Pairs and levels come with the batch: no
    host synchronisation here."""
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    views = [normalise(v).contiguous(memory_format=fmt) for v in batch.views]
    with _autocast(cfg, device):
        preds, targets = model(views, batch.rois, batch.level_rows)

    def f32(branches):
        return [{k: v.float() for k, v in d.items()} for d in branches]

    preds, targets = f32(preds), f32(targets)
    if cfg.objective == "supervised":  # the positive control: each RoI's class, no pairs, no target
        return roi_class_losses(preds, batch.labels), targets, None
    losses = pair_losses(preds, targets, batch.img, batch.ids, loss_fn, cfg.all_pairs, batch.pairs)
    if not losses:
        raise RunError("no instance is shared between views in a batch; check the shards")
    if cfg.objective == "image":
        return losses, targets, None
    if cfg.levels == "size":
        return losses, targets, level_losses(preds, targets, batch.pairs, batch.levels, loss_fn)
    by_branch = [[v.detach() for k, v in losses.items() if k.branch == f"p{lvl}"] for lvl in LEVELS]
    sums = torch.stack([torch.stack(terms).sum() for terms in by_branch])
    return losses, targets, (sums, sums.new_tensor([len(terms) for terms in by_branch]))


def _sync_on_last(net: torch.nn.Module, last: bool):
    """DDP's no_sync() on all but the last micro-step of an accumulated step: the gradients are averaged
    across ranks once per step, not once per micro-batch."""
    if last or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


def _dataset(cfg: TrainConfig, synth: SynthConfig, d: Dist) -> tuple[CoDoDataset | ShardDataset, dict]:
    """The training data (online synthesis or shards), opened and checked, and what config.json says of it."""
    if cfg.online:
        online = CoDoDataset(cfg.instances, cfg.backgrounds, cfg.seed, synth, length=2**62)
        return online, {"synth": synth.to_dict()}
    paths = expand_shards(cfg.shards)
    return ShardDataset(paths, rank=d.rank, world_size=d.world, seed=cfg.seed), {"shard_files": paths}


def _stream(cfg: TrainConfig, dataset, position: DataPosition, d: Dist,
            classes: list[str] | None) -> Iterator:
    """Endless TrainBatches from `position` on; with `classes` (the supervised control), each RoI's class."""
    make = collate_for(cfg.level_rule, cfg.levels, cfg.all_pairs, classes)
    if cfg.online:
        return online_batches(dataset, cfg.batch_size, cfg.workers, position, d.rank, d.world, make)
    return endless_batches(dataset, cfg.batch_size, cfg.workers, position, cfg.max_bad_fraction, make)


def _wrap(model: CoDoModel, device: torch.device, d: Dist) -> torch.nn.Module:
    """Under torchrun: SyncBN on GPUs, and DistributedDataParallel (which averages the gradients)."""
    if d.world == 1:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    with warnings.catch_warnings():  # broadcast_buffers=False is what we mean: rank-local queues and BN stats
        warnings.simplefilter("ignore", FutureWarning)
        # an FPN level that no box of a batch is assigned to leaves its output conv without a gradient
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       broadcast_buffers=False, find_unused_parameters=True)


def _rank_record(out: Path, model: CoDoModel, seen: list[str], d: Dist) -> None:
    """Under torchrun, each rank notes a digest of its weights and the samples it read (RUN/ranks/)."""
    if d.world == 1:
        return
    digest = hashlib.sha256()  # parameters only: BN statistics and key queues are rank-local by design
    for _, p in sorted(model.named_parameters()):
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    (out / "ranks").mkdir(exist_ok=True)
    note = {"rank": d.rank, "params_sha256": digest.hexdigest(), "samples": seen}
    (out / "ranks" / f"rank-{d.rank}.json").write_text(json.dumps(note) + "\n")


def train(cfg: TrainConfig, on_step: Callable[[dict], None] = lambda m: None,
          on_start: Callable[[int], None] = lambda steps: None,
          synth: SynthConfig | None = None) -> TrainResult:
    """Pretrain for `cfg.steps` steps on the shards; write config, metrics and checkpoints to `cfg.out`.

    Resumes from `cfg.out`'s checkpoint when it holds this run. `on_start(steps)` is called once the
    inputs are checked, `on_step(metrics)` after every step.
    """
    synth = synth or SynthConfig()
    distributed.require_device(cfg.device)
    d = distributed.init(cfg.device)
    try:
        return _train(cfg, on_step, on_start, synth, d)
    finally:
        distributed.close(d)


def _train(cfg: TrainConfig, on_step: Callable[[dict], None], on_start: Callable[[int], None],
           synth: SynthConfig, d: Dist) -> TrainResult:
    dataset, data_info = _dataset(cfg, synth, d)
    device = distributed.device_for(cfg.device, d)
    out = Path(cfg.out)
    board = TensorBoard(out / TENSORBOARD, cfg.tensorboard and d.main)
    classes = instance_classes(dataset) if cfg.objective == "supervised" else None
    run_config = {**cfg.to_dict(), **({"synth": synth.to_dict()} if cfg.online else {}),
                  **({"classes": classes} if classes else {})}
    ckpt = prepare_run(out, cfg.overwrite, run_config, {**run_config, **data_info}) if d.main else None
    distributed.barrier(d)
    if not d.main and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT)
    check_world(ckpt, d.world)
    torch.manual_seed(cfg.seed)  # the one place the trainer seeds torch: the same weights on every rank
    model = model_for(run_config).to(device).train()
    health = HealthMonitor(model, cfg.health_every, cfg.steps)  # keeps w0: before restore()
    level_weights = {**{f"p{lvl}": w for lvl, w in zip(LEVELS, cfg.level_weights)},
                     "image": cfg.image_weight if cfg.objective == "codo" else 1.0}
    loss_fn = _loss_fn(cfg, model)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model.named_trainable())
    if d.main:
        warn_if_still(cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    first, position = restore(ckpt, model, opt, scaler, d.rank) if ckpt else (0, DataPosition())
    net = _wrap(model, device, d)
    batches = _stream(cfg, dataset, position, d, classes)
    loss_value = keep_metrics_until(out / METRICS, first) if d.main else math.nan
    seen: list[str] = []
    pending: list[StepFigures] = []
    on_start(cfg.steps)
    for _ in range(first):
        on_step({})
    with open(out / METRICS, "a", buffering=1) if d.main else contextlib.nullcontext() as metrics, board:
        for step in range(first, cfg.steps):
            with torch.profiler.record_function("codo.step"):  # no host-device synchronisation in here
                t0 = time.perf_counter()
                lr = lr_at(step, cfg.steps, cfg.scaled_lr, cfg.warmup_steps)
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.zero_grad(set_to_none=True)
                t_data, totals, queued = 0.0, {}, []
                sums = counts = rois = None
                for micro in range(cfg.accumulate):
                    t1 = time.perf_counter()
                    batch = next(batches)
                    rois = batch.level_counts if rois is None else rois + batch.level_counts
                    batch = batch.to(device)
                    seen += batch.keys or []
                    t_data += time.perf_counter() - t1
                    with _sync_on_last(net, micro + 1 == cfg.accumulate):
                        losses, keys, by_level = _forward(net, batch, cfg, device, loss_fn)
                        loss = total_loss(losses, level_weights)
                        scaler.scale(loss / cfg.accumulate).backward()
                    queued += keys  # every micro-batch's target projections join the queue
                    for k, v in losses.items():
                        totals[k] = totals.get(k, 0.0) + v.detach() / cfg.accumulate
                    if by_level is not None:
                        sums = by_level[0] if sums is None else sums + by_level[0]
                        counts = by_level[1] if counts is None else counts + by_level[1]
                scaler.step(opt)
                scaler.update()
                for branch, queue in model.queues.items():
                    queue.push(torch.cat([view[branch] for view in queued]))
                m = momentum_at(step, cfg.steps, cfg.momentum_start)
                update_momentum(model.online, model.target, m)
                elapsed = time.perf_counter() - t0
            host = {"lr": lr, "momentum": m, "samples_per_s": cfg.global_batch / elapsed,
                    "data_wait": t_data / elapsed, "bad_samples": position.bad}
            extra = health.figures(step + 1, model)
            if device.type == "cuda":
                extra["gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            loss = total_loss(totals, level_weights)
            pending.append(StepFigures(step + 1, host, loss, totals, sums, counts,
                                       None if cfg.objective == "image" else rois, extra))
            saving = (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps
            if saving or (step + 1) % cfg.log_every == 0:  # a logging step: the one wait for the device
                for record in fetch(pending):
                    loss_value = record["loss"]
                    if not math.isfinite(loss_value):
                        raise RunError(f"step {record['step']}: loss is {loss_value}; stopped, the last good "
                                       f"checkpoint is {out / CHECKPOINT}")
                    if d.main:
                        metrics.write(json.dumps(record) + "\n")
                        board.log(record)
                    on_step(record)
            if saving:
                positions = distributed.gather(position.to_dict(), d)
                if d.main:
                    state = checkpoint_state(model, opt, scaler, run_config, step + 1, positions)
                    save_atomic(state, out / CHECKPOINT)
    _rank_record(out, model, seen, d)
    return TrainResult(out, cfg.steps, loss_value, first)

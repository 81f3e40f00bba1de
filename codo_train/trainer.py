"""train(cfg): the CoDo pretraining loop, read top to bottom."""

import contextlib
import hashlib
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.nn.parallel import DistributedDataParallel
from torchvision.models.detection.backbone_utils import BackboneWithFPN

from codo_aug.config import SynthConfig
from codo_aug.dataset import CoDoDataset
from codo_aug.errors import RunError
from codo_aug.shards.dataset import ShardDataset
from codo_aug.shards.reader import expand_shards

from . import distributed
from .batch import collate_for
from .board import TensorBoard
from .checkpoint import (CHECKPOINT, METRICS, TENSORBOARD, check_world, checkpoint_state, discard_unstarted,
                         keep_metrics_until, load_checkpoint, prepare_run, restore, save_atomic)
from .classes import instance_classes
from .config import TrainConfig
from .data import DataPosition, endless_batches, online_batches
from .distributed import Dist
from .health import HealthMonitor
from .losses.terms import total_loss
from .momentum import momentum_at
from .objectives import objective_class
from .optim import make_optimizer, trainable, warn_if_still
from .prefetch import DeviceBatches
from .schedules import lr_at
from .step import Stepper
from .step_figures import StepFigures, fetch

log = logging.getLogger(__name__)

@dataclass
class TrainResult:
    """Where the run wrote and how its loss ended."""

    out: Path
    steps: int
    final_loss: float
    resumed_from: int = 0


def _dataset(cfg: TrainConfig, synth: SynthConfig, d: Dist) -> tuple[CoDoDataset | ShardDataset, dict]:
    """The training data (online synthesis or shards), opened and checked, and what config.json says of it."""
    if cfg.online:
        online = CoDoDataset(cfg.instances, cfg.backgrounds, cfg.seed, synth, length=2**62,
                             defer_photometrics=cfg.decode == "device")
        online.synth.check_usable()  # here, not in a loader worker, and before the run folder is written
        return online, {"synth": synth.to_dict()}
    paths = expand_shards(cfg.shards)
    shards = ShardDataset(paths, rank=d.rank, world_size=d.world, seed=cfg.seed, photometric=cfg.photometric,
                          pixels=cfg.decode == "cpu", verify_shards=cfg.verify_shards)
    return shards, {"shard_files": paths}


def _stream(cfg: TrainConfig, dataset, position: DataPosition, d: Dist, classes: list[str] | None,
            device: torch.device) -> Iterator:
    """Endless TrainBatches from `position` on (page-locked for a CUDA device); with `classes` (the
    supervised control), each RoI's class."""
    make = collate_for(cfg.level_rule, cfg.levels, cfg.all_pairs, classes)
    ahead = {"collate_fn": make, "pin": device.type == "cuda", "prefetch": cfg.prefetch}
    if cfg.online:
        return online_batches(dataset, cfg.batch_size, cfg.workers, position, d.rank, d.world, **ahead)
    return endless_batches(dataset, cfg.batch_size, cfg.workers, position, cfg.max_bad_fraction, **ahead)


def _wrap(model: torch.nn.Module, device: torch.device, d: Dist) -> torch.nn.Module:
    """Under torchrun: SyncBN on GPUs, and DistributedDataParallel (which averages the gradients)."""
    if d.world == 1:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    with warnings.catch_warnings():  # broadcast_buffers=False is what we mean: rank-local BN stats
        warnings.simplefilter("ignore", FutureWarning)
        # an FPN level that no box of a batch is assigned to leaves its output conv without a gradient
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       broadcast_buffers=False, find_unused_parameters=True)


def _rank_record(out: Path, model: torch.nn.Module, seen: list[str], d: Dist) -> None:
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
    made: list[Path] = []  # the run folder, when this run makes it (filled in by _train)
    try:
        return _train(cfg, on_step, on_start, synth, d, made)
    except BaseException:
        for out in made:
            discard_unstarted(out)
        raise
    finally:
        distributed.close(d)



def _warn_if_decode_off_gpu(decode: str, device: torch.device) -> None:
    """Log a warning when decode='device' runs on a CPU: the loader's workers then leave their decoding and
    photometrics to the training process, which does them slower than the workers would (GPUs only gain)."""
    if decode == "device" and device.type != "cuda":
        log.warning("decode=device on %s: the training process decodes and augments what the loader's "
                    "workers would, which is slower on a CPU; decode=cpu suits this device", device)


def _stopped(step: int, loss: float, checkpoint: Path) -> RunError:
    """The error that stops a run at a non-finite loss, naming what there is to resume from."""
    kept = f"the last good checkpoint is {checkpoint}" if checkpoint.exists() else "no checkpoint yet"
    return RunError(f"step {step}: loss is {loss}; stopped, {kept}")


def _train(cfg: TrainConfig, on_step: Callable[[dict], None], on_start: Callable[[int], None],
           synth: SynthConfig, d: Dist, made: list[Path]) -> TrainResult:
    dataset, data_info = _dataset(cfg, synth, d)
    device = distributed.device_for(cfg.device, d)
    out = Path(cfg.out)
    board = TensorBoard(out / TENSORBOARD, cfg.tensorboard and d.main)
    kind = objective_class(cfg.objective)
    classes = instance_classes(dataset) if kind.needs_classes else None
    run_config = {**cfg.to_dict(), **({"synth": synth.to_dict()} if cfg.online else {}),
                  **({"classes": classes} if classes else {})}
    if d.main and not out.exists():
        made.append(out)
    ckpt = prepare_run(out, cfg.overwrite, run_config, {**run_config, **data_info}) if d.main else None
    distributed.barrier(d)
    if not d.main and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT)
    check_world(ckpt, d.world)
    torch.manual_seed(cfg.seed)  # the one place the trainer seeds torch: the same weights on every rank
    config = kind.model_config(cfg, classes)
    model = kind.build(config).to(device).train()
    objective = kind(cfg, config)  # the run's; its loss's state (InfoNCE's queues) is drawn after the model
    objective.loss.to(device)
    health = HealthMonitor(model, cfg.health_every, cfg.steps)  # keeps w0: before restore()
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:  # each backbone + FPN, in place: parameter names, checkpoints and exports unchanged
        for backbone in [m for m in model.modules() if isinstance(m, BackboneWithFPN)]:
            backbone.compile(dynamic=False)
    opt = make_optimizer(cfg, trainable(model))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    restored = restore(ckpt, model, objective.loss, opt, scaler, d.rank) if ckpt else None
    first, position = restored or (0, DataPosition())
    if d.main and first < cfg.steps:  # a finished run has nothing left to warn about
        warn_if_still(cfg)
        _warn_if_decode_off_gpu(cfg.decode, device)
    net = _wrap(model, device, d)
    stepper = Stepper(cfg, objective, model, net, opt, scaler, device)
    batches = DeviceBatches(_stream(cfg, dataset, position, d, classes, device), position, device)
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
                micro = [next(batches) for _ in range(cfg.accumulate)]
                t_data = time.perf_counter() - t0
                seen += [key for batch in micro for key in batch.keys or []]
                lr = lr_at(step, cfg.steps, cfg.scaled_lr, cfg.warmup_steps)
                m = momentum_at(step, cfg.steps, cfg.momentum_start)
                result = stepper.step(micro, lr, m)
                elapsed = time.perf_counter() - t0
            host = {"lr": lr, "momentum": m, "samples_per_s": cfg.global_batch / elapsed,
                    "data_wait": t_data / elapsed, "bad_samples": batches.position.bad}
            extra = health.figures(step + 1, model)
            if device.type == "cuda":
                extra["gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            loss = total_loss(result.terms, objective.weights)
            pending.append(StepFigures(step + 1, host, loss, result.terms, result.level_sums,
                                       result.level_counts, result.rois, extra))
            saving = (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps
            if saving or (step + 1) % cfg.log_every == 0:  # a logging step: the one wait for the device
                for record in fetch(pending):
                    loss_value = record["loss"]
                    if not math.isfinite(loss_value):
                        raise _stopped(record["step"], loss_value, out / CHECKPOINT)
                    if d.main:
                        metrics.write(json.dumps(record) + "\n")
                        board.log(record)
                    on_step(record)
            if saving:
                positions = distributed.gather(batches.position.to_dict(), d)
                if d.main:
                    state = checkpoint_state(model, objective, opt, scaler, run_config, step + 1, positions)
                    save_atomic(state, out / CHECKPOINT)
    _rank_record(out, model, seen, d)
    return TrainResult(out, cfg.steps, loss_value, first)

"""One optimisation step: each micro-batch's forward and backward, the optimizer, the key queues and the
target's momentum, with no host-device synchronisation inside (pairs and levels come with the batch)."""

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from codo_aug.errors import RunError

from .batch import TrainBatch
from .config import TrainConfig
from .data import normalise
from .losses.infonce import infonce_loss
from .losses.keys import LossKey
from .losses.supervised import roi_class_losses
from .models.codo import CoDoModel
from .models.levels import LEVELS
from .momentum import update_momentum
from .pairs import byol_pair, level_losses, pair_losses, total_loss


@dataclass
class StepResult:
    """A step's loss terms (each the mean over the whole step's rows) and, where the run has levels, the
    per-level loss sums and counts (device tensors) and the RoIs per level (a host tensor)."""

    terms: dict[LossKey, torch.Tensor]
    level_sums: torch.Tensor | None
    level_counts: torch.Tensor | None
    rois: torch.Tensor | None


@dataclass
class Stepper:
    """What every step uses: the run's settings, the model (and `net`, its DDP wrapper or itself), the
    optimizer and gradient scaler, and each branch's loss weight."""

    cfg: TrainConfig
    model: CoDoModel
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    weights: dict[str, float]

    def __post_init__(self) -> None:
        self.loss_fn = _loss_fn(self.cfg, self.model)
        self.branches = branches(self.cfg)

    def step(self, batches: list[TrainBatch], lr: float, momentum: float) -> StepResult:
        """Train on `batches` (the step's micro-batches, on the device) at rate `lr`, then move the
        target by `momentum`. Each term is averaged over the rows of all micro-batches (each micro-batch's
        mean weighted by its share of rows), so accumulating micro-batches equals one batch of them all
        wherever the model does not mix rows (BatchNorm in training mode does)."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        terms: dict[LossKey, torch.Tensor] = {}
        queued: list[list[dict[str, torch.Tensor]]] = []
        sums = counts = None
        shares = term_shares(self.branches, batches, self.cfg.objective == "supervised")
        for micro, batch in enumerate(batches):
            with _sync_on_last(self.net, micro + 1 == len(batches)):
                losses, keys, by_level = self._forward(batch)
                scaled = {k: v * shares[k][micro] for k, v in losses.items()}
                loss = total_loss(scaled, self.weights, terms=shares.keys())
                self.scaler.scale(loss).backward()
            queued.append(keys)
            for k, v in scaled.items():
                terms[k] = terms.get(k, 0.0) + v.detach()
            if by_level is not None:
                sums = by_level[0] if sums is None else sums + by_level[0]
                counts = by_level[1] if counts is None else counts + by_level[1]
        self.scaler.step(self.opt)
        self.scaler.update()
        for branch, queue in self.model.queues.items():  # every micro-batch's keys, in one batch's order
            queue.push(torch.cat([keys[j][branch] for j in range(len(queued[0])) for keys in queued]))
        update_momentum(self.model.online, self.model.target, momentum)
        rois = None if self.cfg.objective == "image" else sum(b.level_counts for b in batches)
        return StepResult(terms, sums, counts, rois)

    def _forward(self, batch: TrainBatch) -> tuple[dict[LossKey, torch.Tensor], list[dict[str, torch.Tensor]],
                                                   tuple[torch.Tensor, torch.Tensor] | None]:
        """One micro-batch: per view-pair losses, the target projections (keys to queue), and the loss
        sums and counts by FPN level (metrics; None without levels)."""
        cfg = self.cfg
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        views = [normalise(v).contiguous(memory_format=fmt) for v in batch.views]
        with _autocast(cfg, self.device):
            preds, targets = self.net(views, batch.rois, batch.level_rows)
        preds, targets = _f32(preds), _f32(targets)
        if cfg.objective == "supervised":  # the positive control: each RoI's class, no pairs, no target
            return roi_class_losses(preds, batch.labels), targets, None
        losses = pair_losses(preds, targets, batch.img, batch.ids, self.loss_fn, cfg.all_pairs, batch.pairs)
        if not losses:
            raise RunError("no instance is shared between views in a batch; check the shards")
        if cfg.objective == "image":
            return losses, targets, None
        if cfg.levels == "size":
            return losses, targets, level_losses(preds, targets, batch.pairs, batch.levels, self.loss_fn)
        by_branch = [[v.detach() for k, v in losses.items() if k.branch == f"p{lvl}"] for lvl in LEVELS]
        zero = next(iter(losses.values())).detach() * 0  # a level without terms (no pair matched)
        sums = torch.stack([sum(terms, zero) for terms in by_branch])
        return losses, targets, (sums, sums.new_tensor([len(terms) for terms in by_branch]))


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


def _f32(branches: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    return [{k: v.float() for k, v in d.items()} for d in branches]


def _sync_on_last(net: torch.nn.Module, last: bool):
    """DDP's no_sync() on all but the last micro-step of an accumulated step: the gradients are averaged
    across ranks once per step, not once per micro-batch."""
    if last or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


def branches(cfg: TrainConfig) -> set[str]:
    """The pooling branches a run's loss terms come from (those a model built from `cfg` gives)."""
    if cfg.objective == "image":
        return {"image"}
    objects = {"size"} if cfg.levels == "size" else {f"p{lvl}" for lvl in LEVELS}
    return objects | ({"image"} if cfg.objective == "codo" and cfg.image_weight > 0 else set())


def term_rows(batch: TrainBatch, key: LossKey) -> int:
    """The rows a loss term averages over in `batch`: its images (image level), view j's RoIs (the
    supervised control's (j,)), or the matched instances of its view pair."""
    if key.branch == "image":
        return len(batch.views[0])
    if len(key.views) == 1:
        return len(batch.img[key.views[0]])
    return len(batch.pairs[key.views][0])


def term_shares(names: set[str], batches: list[TrainBatch], per_view: bool) -> dict[LossKey, list[float]]:
    """For each loss term of the step (each branch of `names` with each view pair, or each view with
    `per_view`, where any micro-batch has rows), each micro-batch's share of its rows: known on the host,
    from the batches' shapes."""
    views = [(j,) for j in range(len(batches[0].views))] if per_view else list(batches[0].pairs)
    shares = {}
    for key in (LossKey(branch, v) for branch in sorted(names) for v in views):
        rows = [term_rows(b, key) for b in batches]
        if sum(rows):
            shares[key] = [n / sum(rows) for n in rows]
    return shares

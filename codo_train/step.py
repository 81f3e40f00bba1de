"""One optimisation step: each micro-batch's forward and backward, the optimizer, then the objective's
after-step (InfoNCE's key queues, the target's momentum), with no host-device synchronisation inside (pairs
and levels come with the batch). What is computed is the objective's: the step knows no objective by name."""

import contextlib
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel

from .batch import TrainBatch
from .config import TrainConfig
from .data import normalise
from .losses.term import LossTerm
from .losses.terms import total_loss
from .objectives.base import Objective


@dataclass
class StepResult:
    """A step's loss terms (each the mean over the whole step's rows) and, where the run has levels, the
    per-level loss sums and counts (device tensors) and the RoIs per level (a host tensor)."""

    terms: dict[LossTerm, torch.Tensor]
    level_sums: torch.Tensor | None
    level_counts: torch.Tensor | None
    rois: torch.Tensor | None


@dataclass
class Stepper:
    """What every step uses: the run's settings, its objective (branches, loss, terms), the model (and `net`,
    its DDP wrapper or itself), the optimizer and gradient scaler."""

    cfg: TrainConfig
    objective: Objective
    model: torch.nn.Module
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device

    def step(self, batches: list[TrainBatch], lr: float, momentum: float) -> StepResult:
        """Train on `batches` (the step's micro-batches, on the device) at rate `lr`, then let the objective
        move the target by `momentum`. Each term is averaged over the rows of all micro-batches (each
        micro-batch's mean weighted by its share of rows), so accumulating micro-batches equals one batch of
        them all wherever the model does not mix rows (BatchNorm in training mode does)."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        terms: dict[LossTerm, torch.Tensor] = {}
        queued: list[list[dict[str, torch.Tensor]]] = []
        sums = counts = None
        shares = term_shares(self.objective.step_terms(batches[0]), batches)
        for micro, batch in enumerate(batches):
            with _sync_on_last(self.net, micro + 1 == len(batches)):
                losses, targets, by_level = self._forward(batch)
                scaled = {k: v * shares[k][micro] for k, v in losses.items()}
                loss = total_loss(scaled, self.objective.weights, terms=shares.keys())
                self.scaler.scale(loss).backward()
            queued.append(targets)
            for k, v in scaled.items():
                terms[k] = terms.get(k, 0.0) + v.detach()
            if by_level is not None:
                sums = by_level[0] if sums is None else sums + by_level[0]
                counts = by_level[1] if counts is None else counts + by_level[1]
        self.scaler.step(self.opt)
        self.scaler.update()
        self.objective.after_step(self.model, queued, momentum)
        pooled = set(self.objective.branches) - {"image"}  # the branches that pool RoIs
        rois = sum(b.level_counts for b in batches) if pooled else None
        return StepResult(terms, sums, counts, rois)

    def _forward(self, batch: TrainBatch) -> tuple[dict[LossTerm, torch.Tensor],
                                                   list[dict[str, torch.Tensor]],
                                                   tuple[torch.Tensor, torch.Tensor] | None]:
        """One micro-batch: its loss terms, the model's targets (for InfoNCE to queue), and the loss sums
        and counts by FPN level (metrics; None where the objective has none)."""
        cfg = self.cfg
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        views = [normalise(v).contiguous(memory_format=fmt) for v in batch.views]
        with _autocast(cfg, self.device):
            outputs, targets = self.net(views, batch.rois, batch.level_rows)
        outputs, targets = _f32(outputs), _f32(targets)
        losses = self.objective.terms(outputs, targets, batch)
        return losses, targets, self.objective.level_figures(losses, outputs, targets, batch)


def _autocast(cfg: TrainConfig, device: torch.device):
    """bf16 (or fp16 on CUDA) autocast for the forward pass, or nothing."""
    if cfg.amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if cfg.amp == "bf16" else torch.float16)


def _f32(branches: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    return [{k: v.float() for k, v in d.items()} for d in branches]


def _sync_on_last(net: torch.nn.Module, last: bool):
    """DDP's no_sync() on all but the last micro-step of an accumulated step: the gradients are averaged
    across ranks once per step, not once per micro-batch."""
    if last or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


def term_rows(batch: TrainBatch, term: LossTerm) -> int:
    """The rows a loss term averages over in `batch`: its images (image level), view j's RoIs (the
    supervised control's (j,)), or the matched instances of its view pair."""
    if term.branch == "image":
        return len(batch.views[0])
    if len(term.views) == 1:
        return len(batch.img[term.views[0]])
    return len(batch.pairs[term.views][0])


def term_shares(terms: list[LossTerm], batches: list[TrainBatch]) -> dict[LossTerm, list[float]]:
    """For each loss term of the step (of `terms`, those where any micro-batch has rows), each micro-batch's
    share of its rows: known on the host, from the batches' shapes."""
    shares = {}
    for term in terms:
        rows = [term_rows(b, term) for b in batches]
        if sum(rows):
            shares[term] = [n / sum(rows) for n in rows]
    return shares

"""InfoNCE with a queue of momentum targets as negatives (MoCo, He et al. 2020, whose "keys" they are):
T = 0.2, 65,536 per branch."""

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig


def infonce_loss(pred: torch.Tensor, target: torch.Tensor, queue: torch.Tensor, temperature: float,
                 reduce: bool = True) -> torch.Tensor:
    """Cross-entropy of picking each row's own target among it and the queued negatives (mean, or per
    row)."""
    q = F.normalize(pred, dim=-1)
    k = F.normalize(target.detach(), dim=-1)
    positive = (q * k).sum(dim=-1, keepdim=True)
    logits = torch.cat([positive, q @ queue.T], dim=1) / temperature
    labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels, reduction="mean" if reduce else "none")


class TargetQueue(nn.Module):
    """A ring buffer of normalised targets of earlier steps, kept in the loss's state (so checkpoints hold
    it)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("targets", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, targets: torch.Tensor) -> None:
        targets = F.normalize(targets.detach().float(), dim=1)[: len(self.targets)]
        idx = (self.ptr + torch.arange(len(targets), device=targets.device)) % len(self.targets)
        self.targets[idx] = targets
        self.ptr.copy_((self.ptr + len(targets)) % len(self.targets))


class InfoNCE(nn.Module):
    """infonce_loss as a run's pair loss: each branch against its own queue of `size` targets of `dim`,
    which `remember` fills with the target projections of each step (the state is the loss's, not the
    model's: `queues.<branch>.targets` and `.ptr` in a checkpoint's 'loss')."""

    def __init__(self, branches: Sequence[str], dim: int, size: int, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.queues = nn.ModuleDict({b: TargetQueue(size, dim) for b in branches})

    def forward(self, pred: torch.Tensor, target: torch.Tensor, branch: str, reduce: bool = True
                ) -> torch.Tensor:
        return infonce_loss(pred, target, self.queues[branch].targets, self.temperature, reduce)

    def remember(self, targets: list[list[dict[str, torch.Tensor]]]) -> None:
        """Queue `targets` (per micro-batch, per view, per branch: the step's target projections), every
        micro-batch's in one batch's order: view by view, micro-batches in turn."""
        for branch, queue in self.queues.items():
            queue.push(torch.cat([micro[j][branch] for j in range(len(targets[0])) for micro in targets]))


def make(cfg: TrainConfig, branches: Sequence[str], dim: int) -> InfoNCE:
    """The LOSSES entry: `cfg.queue_size` keys per branch at `cfg.temperature` (a TrainConfig)."""
    return InfoNCE(branches, dim, cfg.queue_size, cfg.temperature)

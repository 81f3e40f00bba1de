"""Momentum target: the cosine momentum schedule and the in-place EMA update (BYOL); the schedule's base
for a run's length is schedules.auto_momentum_base."""

import math

import torch
from torch import nn


def momentum_at(step: int, total: int, base: float = 0.99) -> float:
    """m = 1 - (1 - base) * (cos(pi k / K) + 1) / 2: `base` at step 0, 1 at the last step."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total, 1)) + 1.0) / 2.0


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float) -> None:
    """target = m * target + (1 - m) * online for parameters; buffers (BN statistics) are copied. One
    multi-tensor call per operation (as torch.optim's foreach paths), not one kernel per tensor."""
    targets = list(target.parameters())
    torch._foreach_mul_(targets, m)
    torch._foreach_add_(targets, [p.detach() for p in online.parameters()], alpha=1.0 - m)
    torch._foreach_copy_(list(target.buffers()), list(online.buffers()))

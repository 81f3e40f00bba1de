"""Momentum target: the cosine momentum schedule and the in-place EMA update (BYOL)."""

import math

import torch
from torch import nn


def momentum_at(step: int, total: int, base: float = 0.99) -> float:
    """m = 1 - (1 - base) * (cos(pi k / K) + 1) / 2: `base` at step 0, 1 at the last step."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total, 1)) + 1.0) / 2.0


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float) -> None:
    """target = m * target + (1 - m) * online for parameters; buffers (BN statistics) are copied."""
    for po, pt in zip(online.parameters(), target.parameters()):
        pt.mul_(m).add_(po.detach(), alpha=1.0 - m)
    for bo, bt in zip(online.buffers(), target.buffers()):
        bt.copy_(bo)

"""InfoNCE with a queue of momentum keys (MoCo, He et al. 2020): T = 0.2, 65,536 keys per branch."""

import torch
import torch.nn.functional as F
from torch import nn


def infonce_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float,
                 reduce: bool = True) -> torch.Tensor:
    """Cross-entropy of picking each row's own key among it and the queued negatives (mean, or per row)."""
    q = F.normalize(query, dim=-1)
    k = F.normalize(key.detach(), dim=-1)
    positive = (q * k).sum(dim=-1, keepdim=True)
    logits = torch.cat([positive, q @ queue.T], dim=1) / temperature
    labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels, reduction="mean" if reduce else "none")


class KeyQueue(nn.Module):
    """A ring buffer of normalised keys, kept in the model's state (so checkpoints hold it)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        keys = F.normalize(keys.detach().float(), dim=1)[: len(self.keys)]
        idx = (self.ptr + torch.arange(len(keys), device=keys.device)) % len(self.keys)
        self.keys[idx] = keys
        self.ptr.copy_((self.ptr + len(keys)) % len(self.keys))

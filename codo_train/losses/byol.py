"""BYOL's normalised regression loss (Grill et al. 2020): 2 - 2 cos(p, z), target detached."""

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig


def byol_loss(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """Mean over rows (or, without `reduce`, each row) of 2 - 2 cos(pred_i, target_i): 0 aligned,
    4 opposite."""
    p = F.normalize(pred, dim=-1)
    z = F.normalize(target.detach(), dim=-1)
    rows = 2.0 - 2.0 * (p * z).sum(dim=-1)
    return rows.mean() if reduce else rows


class BYOL(nn.Module):
    """byol_loss as a run's pair loss: the same for every branch, nothing kept between steps."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, branch: str, reduce: bool = True
                ) -> torch.Tensor:
        return byol_loss(pred, target, reduce)

    def remember(self, targets: list) -> None:
        """BYOL compares each prediction with its own target alone: nothing to keep."""


def make(cfg: TrainConfig, branches: Sequence[str], dim: int) -> BYOL:
    """The LOSSES entry: BYOL needs none of the run's settings."""
    return BYOL()

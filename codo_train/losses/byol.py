"""BYOL's normalised regression loss (Grill et al. 2020): 2 - 2 cos(p, z), target detached."""

import torch
import torch.nn.functional as F


def byol_loss(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """Mean over rows (or, without `reduce`, each row) of 2 - 2 cos(pred_i, target_i): 0 aligned,
    4 opposite."""
    p = F.normalize(pred, dim=-1)
    z = F.normalize(target.detach(), dim=-1)
    rows = 2.0 - 2.0 * (p * z).sum(dim=-1)
    return rows.mean() if reduce else rows

"""BYOL's normalised regression loss (Grill et al. 2020): 2 - 2 cos(p, z), target detached."""

import torch
import torch.nn.functional as F


def byol_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of 2 - 2 * cos(pred_i, target_i); 0 for identical directions, 4 for opposite."""
    p = F.normalize(pred, dim=-1)
    z = F.normalize(target.detach(), dim=-1)
    return (2.0 - 2.0 * (p * z).sum(dim=-1)).mean()

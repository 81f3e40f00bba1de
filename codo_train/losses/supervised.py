"""The supervised control's loss: cross-entropy of each RoI's instance class, per view and branch."""

from typing import Callable

import torch
import torch.nn.functional as F

from .term import LossTerm


def roi_class_losses(logits: list[dict[str, torch.Tensor]], labels: list[torch.Tensor],
                     loss: Callable = F.cross_entropy) -> dict[LossTerm, torch.Tensor]:
    """Mean cross-entropy (`loss`) of view j's RoIs (`logits[j][branch]`, N x classes) against `labels[j]`
    (N class indices), keyed by (branch, (j,)), so `terms.total_loss` weighs levels as it does CoDo's terms;
    a view without RoIs has no term (the mean of nothing is not a loss)."""
    return {LossTerm(name, (j,)): loss(x, labels[j])
            for j, view in enumerate(logits) for name, x in view.items() if len(labels[j])}

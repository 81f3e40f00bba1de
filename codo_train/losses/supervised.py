"""The supervised control's loss: cross-entropy of each RoI's instance class, per view and branch."""

import torch
import torch.nn.functional as F


def roi_class_losses(logits: list[dict[str, torch.Tensor]], labels: list[torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
    """Mean cross-entropy of view j's RoIs (`logits[j][branch]`, N x classes) against `labels[j]` (N class
    indices). Keys as `pairs.pair_losses` names its terms: 'j' for the `size` branch, 'pK/j' for
    level K in `all` mode, so `pairs.total_loss` weighs levels alike."""
    return {(str(j) if name == "size" else f"{name}/{j}"): F.cross_entropy(x, labels[j])
            for j, view in enumerate(logits) for name, x in view.items()}

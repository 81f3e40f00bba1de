"""Positive pairs: the same instance id of the same image in two views."""

import torch

from .losses.byol import byol_loss


def match_instances(img_a: torch.Tensor, id_a: torch.Tensor, img_b: torch.Tensor, id_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (ia, ib) where view a's RoI ia and view b's RoI ib share image and instance id.

    An instance absent from either view (occluded, dropped) simply has no pair.
    """
    eq = (img_a[:, None] == img_b[None, :]) & (id_a[:, None] == id_b[None, :])
    return eq.nonzero(as_tuple=True)


def view_pairs(num_views: int) -> list[tuple[int, int]]:
    """SoCo's pairs: (view 0, view j) for every j > 0."""
    return [(0, j) for j in range(1, num_views)]


def pair_losses(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                img: list[torch.Tensor], ids: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Symmetric BYOL loss of each view pair over matched instances, per pooling branch.

    Keys: 'a-b' for the `size` branch, 'pK/a-b' for level K in `all` mode.
    """
    out = {}
    for a, b in view_pairs(len(preds)):
        ia, ib = match_instances(img[a], ids[a], img[b], ids[b])
        if ia.numel() == 0:
            continue
        for name in preds[a]:
            key = f"{a}-{b}" if name == "size" else f"{name}/{a}-{b}"
            out[key] = (byol_loss(preds[a][name][ia], targets[b][name][ib])
                        + byol_loss(preds[b][name][ib], targets[a][name][ia]))
    return out


def total_loss(losses: dict[str, torch.Tensor], level_weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean of the pair losses; a level's weight applies to its 'pK/...' terms (1 otherwise)."""
    weights = [level_weights.get(k.split("/")[0], 1.0) if "/" in k else 1.0 for k in losses]
    stacked = torch.stack(list(losses.values()))
    return (stacked * stacked.new_tensor(weights)).sum() / sum(weights)

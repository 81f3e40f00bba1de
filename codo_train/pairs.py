"""Positive pairs: the same instance id of the same image in two views."""

from typing import Callable

import torch

from .losses.byol import byol_loss
from .losses.keys import LossKey


def match_instances(img_a: torch.Tensor, id_a: torch.Tensor, img_b: torch.Tensor,
                    id_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (ia, ib) where view a's RoI ia and view b's RoI ib share image and instance id.

    An instance absent from either view (occluded, dropped) simply has no pair.
    """
    eq = (img_a[:, None] == img_b[None, :]) & (id_a[:, None] == id_b[None, :])
    return eq.nonzero(as_tuple=True)


def view_pairs(num_views: int, all_pairs: bool = False) -> list[tuple[int, int]]:
    """SoCo's pairs (view 0, view j) for every j > 0, or with `all_pairs` every (a, b) with a < b."""
    if all_pairs:
        return [(a, b) for a in range(num_views) for b in range(a + 1, num_views)]
    return [(0, j) for j in range(1, num_views)]


def byol_pair(pred: torch.Tensor, target: torch.Tensor, branch: str, reduce: bool = True) -> torch.Tensor:
    return byol_loss(pred, target, reduce)


def pair_losses(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                img: list[torch.Tensor], ids: list[torch.Tensor], loss: Callable = byol_pair,
                all_pairs: bool = False) -> dict[LossKey, torch.Tensor]:
    """Symmetric loss of each view pair over matched instances, per branch: `loss(pred, target, branch)`,
    keyed by (branch, (a, b)); the image-level term's rows are the images, matched by position."""
    out = {}
    for a, b in view_pairs(len(preds), all_pairs):
        ia, ib = match_instances(img[a], ids[a], img[b], ids[b])
        for name in preds[a]:
            rows = torch.arange(len(preds[a][name]), device=preds[a][name].device)
            ja, jb = (ia, ib) if name != "image" else (rows, rows)
            if ja.numel() == 0:
                continue
            out[LossKey(name, (a, b))] = (loss(preds[a][name][ja], targets[b][name][jb], name)
                        + loss(preds[b][name][jb], targets[a][name][ja], name))
    return out


def total_loss(losses: dict[LossKey, torch.Tensor], level_weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean of the loss terms; a branch's weight ('pK', 'image') applies to its terms (else 1)."""
    weights = [level_weights.get(k.branch, 1.0) for k in losses]
    stacked = torch.stack(list(losses.values()))
    return (stacked * stacked.new_tensor(weights)).sum() / sum(weights)


@torch.no_grad()
def level_losses(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                 img: list[torch.Tensor], ids: list[torch.Tensor], levels: list[torch.Tensor],
                 loss: Callable = byol_pair, all_pairs: bool = False) -> dict[str, float]:
    """For the `size` branch: the mean per-row loss of matched instances by the FPN level of the
    query RoI ({'p2': ..., 'p5': ...}), for metrics."""
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for a, b in view_pairs(len(preds), all_pairs):
        ia, ib = match_instances(img[a], ids[a], img[b], ids[b])
        for q, k, rows_q, rows_k, lv in ((a, b, ia, ib, levels[a][ia]), (b, a, ib, ia, levels[b][ib])):
            per_row = loss(preds[q]["size"][rows_q], targets[k]["size"][rows_k], "size", reduce=False)
            for level, value in zip(lv.tolist(), per_row.tolist()):
                sums[level] = sums.get(level, 0.0) + value
                counts[level] = counts.get(level, 0) + 1
    return {f"p{lvl}": sums[lvl] / counts[lvl] for lvl in sorted(sums)}

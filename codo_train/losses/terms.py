"""A step's loss terms and what is made of them: each view pair's symmetric loss per branch, their weighted
mean, and the per-level figures of the size branch."""

from typing import Callable, Iterable

import torch

from ..models.levels import LEVELS
from ..pairs import pair_rows
from .byol import BYOL
from .term import LossTerm

#: The pair loss where none is given: BYOL's (stateless).
_BYOL = BYOL()


def pair_losses(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                img: list[torch.Tensor], ids: list[torch.Tensor], loss: Callable = _BYOL,
                all_pairs: bool = False, pairs: dict | None = None) -> dict[LossTerm, torch.Tensor]:
    """Symmetric loss of each view pair over matched instances, per branch: `loss(pred, target, branch)`,
    keyed by (branch, (a, b)); the image-level term's rows are the images, matched by position. `pairs`:
    the matched rows, where the batch brings them (else matched here from `img` and `ids`)."""
    out = {}
    for (a, b), (ia, ib) in (pair_rows(img, ids, all_pairs) if pairs is None else pairs).items():
        for name in preds[a]:
            rows = torch.arange(len(preds[a][name]), device=preds[a][name].device)
            ja, jb = (ia, ib) if name != "image" else (rows, rows)
            if ja.numel() == 0:
                continue
            out[LossTerm(name, (a, b))] = (loss(preds[a][name][ja], targets[b][name][jb], name)
                                          + loss(preds[b][name][jb], targets[a][name][ja], name))
    return out


def total_loss(losses: dict[LossTerm, torch.Tensor], level_weights: dict[str, float],
               terms: Iterable[LossTerm] | None = None) -> torch.Tensor:
    """Weighted mean of the loss terms; a branch's weight ('pK', 'image') applies to its terms (else 1).
    `terms`: those the mean is over, where `losses` holds one micro-batch's part of a step (default: the
    terms of `losses`). Python weights: no host-to-device copy in the step."""
    def weight(k: LossTerm) -> float:
        return level_weights.get(k.branch, 1.0)

    mean_over = losses if terms is None else terms
    return sum(weight(k) * v for k, v in losses.items()) / sum(map(weight, mean_over))


@torch.no_grad()
def level_losses(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                 pairs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]], levels: list[torch.Tensor],
                 loss: Callable = _BYOL) -> tuple[torch.Tensor, torch.Tensor]:
    """For the `size` branch: (sums, counts) over P2..P5 of the per-row loss of matched instances, by the
    FPN level of the query RoI; device tensors, fetched with the metrics (level_means)."""
    sums = preds[0]["size"].new_zeros(len(LEVELS))
    counts = sums.new_zeros(len(LEVELS))
    for (a, b), (ia, ib) in pairs.items():
        for q, k, rows_q, rows_k in ((a, b, ia, ib), (b, a, ib, ia)):
            per_row = loss(preds[q]["size"][rows_q], targets[k]["size"][rows_k], "size", reduce=False)
            slot = levels[q][rows_q] - LEVELS[0]
            sums.index_add_(0, slot, per_row.float())
            counts.index_add_(0, slot, torch.ones_like(per_row, dtype=sums.dtype))
    return sums, counts


def branch_levels(losses: dict[LossTerm, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """For the `all` mode's branches p2..p5: (sums, counts) over P2..P5 of their terms (detached)."""
    by_branch = [[v.detach() for k, v in losses.items() if k.branch == f"p{lvl}"] for lvl in LEVELS]
    zero = next(iter(losses.values())).detach() * 0  # a level without terms (no pair matched)
    sums = torch.stack([sum(terms, zero) for terms in by_branch])
    return sums, sums.new_tensor([len(terms) for terms in by_branch])


def level_means(sums: torch.Tensor, counts: torch.Tensor) -> dict[str, float]:
    """{'p2': mean, ...} of the levels with any rows (fetches the tensors: for logging steps)."""
    return {f"p{lvl}": s / c for lvl, s, c in zip(LEVELS, sums.tolist(), counts.tolist()) if c}

"""Positive pairs: the same instance id of the same image in two views, matched on the host where a batch is
collated (in the loader's workers); the losses over them are losses/terms.py's."""

import torch


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


def pair_rows(img: list[torch.Tensor], ids: list[torch.Tensor], all_pairs: bool = False
              ) -> dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]:
    """(a, b) -> matched rows (ia, ib) of each view pair (view_pairs): worked out on the host, with the
    batch (TrainBatch.pairs), a step needs no nonzero() on the device."""
    return {(a, b): match_instances(img[a], ids[a], img[b], ids[b])
            for a, b in view_pairs(len(img), all_pairs)}

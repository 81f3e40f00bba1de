"""Hierarchical RoI pooling: which FPN level (P2..P5) pools each box, and pooling by level.

`size` (SoCo): a box goes to level k = floor(4 + log2(sqrt(wh) / reference)), clamped to 2..5 (the
FPN rule of Lin et al. 2017, eq. 1), with `reference` = 224 scaled to the run's largest view. The
same instance in the 112-px view is half as big, so it pools one level lower than in a 224-px view:
pairs then span levels, which teaches scale invariance. `all` (InsLoc): every box at every level.
"""

import torch
from torchvision.ops import roi_align

LEVELS = (2, 3, 4, 5)
CANONICAL = 224.0


def assign_levels(boxes: torch.Tensor, reference: float = CANONICAL) -> torch.Tensor:
    """FPN level (2..5) of each XYXY box."""
    side = torch.sqrt((boxes[:, 2] - boxes[:, 0]).clamp(min=1e-6) * (boxes[:, 3] - boxes[:, 1]).clamp(min=1e-6))
    k = torch.floor(4 + torch.log2(side / reference + 1e-8))
    return k.clamp(LEVELS[0], LEVELS[-1]).to(torch.int64)


def _pool(feature: torch.Tensor, rois: list[torch.Tensor], image_size: int) -> torch.Tensor:
    scale = feature.shape[-1] / image_size
    return roi_align(feature, rois, output_size=7, spatial_scale=scale, sampling_ratio=2, aligned=True)


def pool_levels(features: dict[str, torch.Tensor], rois: list[torch.Tensor], image_size: int, mode: str,
                reference: float) -> dict[str, torch.Tensor]:
    """{'size': Nx256x7x7} (each RoI at its level) or {'p2': ..., 'p5': ...} (all levels); rows in RoI order."""
    maps = [features[str(i)] for i in range(len(LEVELS))]  # backbone outputs "0".."3" = P2..P5
    if mode == "all":
        return {f"p{lvl}": _pool(f, rois, image_size) for lvl, f in zip(LEVELS, maps)}
    flat = torch.cat(rois)
    owner = torch.cat([torch.full((len(r),), b, dtype=torch.int64, device=flat.device) for b, r in enumerate(rois)])
    levels = assign_levels(flat, reference)
    out = flat.new_zeros((len(flat), maps[0].shape[1], 7, 7), dtype=maps[0].dtype)
    for lvl, fmap in zip(LEVELS, maps):
        picked = torch.nonzero(levels == lvl).flatten()
        if picked.numel():
            boxes = torch.cat([owner[picked, None].to(flat.dtype), flat[picked]], dim=1)
            out[picked] = _pool(fmap, boxes, image_size).to(out.dtype)
    return {"size": out}

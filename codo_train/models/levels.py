"""Hierarchical RoI pooling: which FPN level (P2..P5) pools each box, and pooling by level.

`size` (SoCo): each box goes to one level by its size sqrt(wh), so the same instance in the 112-px
view (half as big) pools lower than in a 224-px view: pairs then span levels, which teaches scale
invariance. Two rules pick the level, both at a `reference` = 224 px scaled to the run's largest view:
- `fpn`: k = floor(4 + log2(sqrt(wh) / reference)), clamped to 2..5 (Lin et al. 2017, eq. 1): a
  box below 112 px goes to P2, below 224 to P3, below 448 to P4;
- `soco`: SoCo's ranges (Wei et al. 2021, `aware_range` = 48, 96, 192, 224): up to 48 px P2, up to
  96 P3, up to 192 P4, larger P5. In 224-px views the fpn rule sends nearly every RoI to P2 and P3
  (its P4 wants a box as large as the view), so P4 and P5 would barely train.
`all` (InsLoc): every box at every level.
"""

import torch
from torchvision.ops import roi_align

LEVELS = (2, 3, 4, 5)
CANONICAL = 224.0
#: SoCo's upper bounds of sqrt(wh) for P2, P3, P4 at a 224-px view; anything larger goes to P5.
SOCO_BOUNDS = (48.0, 96.0, 192.0)


def _side(boxes: torch.Tensor) -> torch.Tensor:
    """sqrt(wh) of XYXY boxes."""
    return torch.sqrt((boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-6).prod(dim=1))


def _fpn(side: torch.Tensor, reference: float) -> torch.Tensor:
    return torch.floor(4 + torch.log2(side / reference + 1e-8)).clamp(LEVELS[0], LEVELS[-1]).to(torch.int64)


def _soco(side: torch.Tensor, reference: float) -> torch.Tensor:
    bounds = side.new_tensor(SOCO_BOUNDS) * (reference / CANONICAL)
    return LEVELS[0] + torch.bucketize(side, bounds)  # right=False: a side equal to a bound stays below


#: level rule name -> (sqrt(wh), reference) -> level of each box
RULES = {"fpn": _fpn, "soco": _soco}


def largest_side(views: list[torch.Tensor]) -> float:
    """The side of the largest view: the reference the level thresholds scale to."""
    return float(max(v.shape[-1] for v in views))


def assign_levels(boxes: torch.Tensor, reference: float = CANONICAL, rule: str = "fpn") -> torch.Tensor:
    """FPN level (2..5) of each XYXY box under `rule` ('fpn' or 'soco')."""
    if rule not in RULES:
        raise ValueError(f"level rule must be one of {', '.join(RULES)}, got {rule!r}")
    return RULES[rule](_side(boxes), reference)


def batch_levels(views: list[torch.Tensor], rois: list[list[torch.Tensor]], rule: str) -> list[torch.Tensor]:
    """Per view, the FPN level of each of its RoIs (its images' RoIs concatenated) at the largest view's
    scale: a batch's one level assignment, which pooling, the per-level loss figures and the counts share."""
    reference = largest_side(views)
    return [assign_levels(torch.cat(view).reshape(-1, 4), reference, rule) for view in rois]


def level_counts(levels: list[torch.Tensor] | None, n_rois: int) -> torch.Tensor:
    """How many of a batch's `n_rois` RoIs (all views and images) each level P2..P5 pools, from the batch's
    `levels`; None (`all` mode): every level pools every RoI."""
    if levels is None:
        return torch.full((len(LEVELS),), n_rois, dtype=torch.int64)
    return torch.bincount(torch.cat(levels) - LEVELS[0], minlength=len(LEVELS))


def level_rows(levels: torch.Tensor) -> list[torch.Tensor]:
    """The rows each level P2..P5 pools, of one view's RoIs with these `levels`."""
    return [torch.nonzero(levels == level).flatten() for level in LEVELS]


def branch_names(mode: str) -> tuple[str, ...]:
    """The pooling branches pool_levels gives in levels `mode`: ('size',), or ('p2', ..., 'p5') with 'all'."""
    return tuple(f"p{lvl}" for lvl in LEVELS) if mode == "all" else ("size",)


def _pool(feature: torch.Tensor, rois: list[torch.Tensor], image_size: int) -> torch.Tensor:
    scale = feature.shape[-1] / image_size
    return roi_align(feature, rois, output_size=7, spatial_scale=scale, sampling_ratio=2, aligned=True)


def pool_levels(features: dict[str, torch.Tensor], rois: list[torch.Tensor], image_size: int, mode: str,
                reference: float, rule: str = "fpn", rows: list[torch.Tensor] | None = None
                ) -> dict[str, torch.Tensor]:
    """{'size': Nx256x7x7} (each RoI at its level: `rows` per level where the batch has them, from
    level_rows, else under `rule`) or {'p2': ..., 'p5': ...} (all levels); rows in RoI order."""
    maps = [features[str(i)] for i in range(len(LEVELS))]  # backbone outputs "0".."3" = P2..P5
    if mode == "all":
        return {name: _pool(f, rois, image_size) for name, f in zip(branch_names(mode), maps)}
    flat = torch.cat(rois)
    owner = torch.cat([torch.full((len(r),), b, dtype=torch.int64, device=flat.device)
                       for b, r in enumerate(rois)])
    rows = level_rows(assign_levels(flat, reference, rule)) if rows is None else rows
    out = flat.new_zeros((len(flat), maps[0].shape[1], 7, 7), dtype=maps[0].dtype)
    for picked, fmap in zip(rows, maps):
        if picked.numel():
            boxes = torch.cat([owner[picked, None].to(flat.dtype), flat[picked]], dim=1)
            out[picked] = _pool(fmap, boxes, image_size).to(out.dtype)
    return {"size": out}

"""mmdetection names for torchvision-named weights: `backbone.` (mmdet's ResNet uses torchvision's
names), `neck.lateral_convs/fpn_convs.K.{conv,bn}`, `roi_head.bbox_head.shared_convs.K.{conv,bn}`
and `shared_fcs.0` (Shared4Conv1FCBBoxHead); saved as `{"state_dict": ..., "meta": ...}`."""

from .names import rename_all

_RULES = [
    (r"^backbone\.body\.(.+)$", r"backbone.\1"),
    (r"^backbone\.fpn\.inner_blocks\.(\d)\.0\.(\w+)$", r"neck.lateral_convs.\1.conv.\2"),
    (r"^backbone\.fpn\.inner_blocks\.(\d)\.1\.(\w+)$", r"neck.lateral_convs.\1.bn.\2"),
    (r"^backbone\.fpn\.layer_blocks\.(\d)\.0\.(\w+)$", r"neck.fpn_convs.\1.conv.\2"),
    (r"^backbone\.fpn\.layer_blocks\.(\d)\.1\.(\w+)$", r"neck.fpn_convs.\1.bn.\2"),
    (r"^roi_heads\.box_head\.(\d)\.0\.weight$", r"roi_head.bbox_head.shared_convs.\1.conv.weight"),
    (r"^roi_heads\.box_head\.(\d)\.1\.(\w+)$", r"roi_head.bbox_head.shared_convs.\1.bn.\2"),
    (r"^roi_heads\.box_head\.5\.(weight|bias)$", r"roi_head.bbox_head.shared_fcs.0.\1"),
]


def convert(weights: dict) -> tuple[dict, list[str]]:
    """({"state_dict": mmdet-named tensors, "meta": {...}}, skipped names)."""
    state, skipped = rename_all(weights, _RULES, lambda t: t.detach().cpu().clone())
    return {"state_dict": state, "meta": {"exported_by": "codo"}}, skipped

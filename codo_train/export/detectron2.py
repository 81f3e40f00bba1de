"""detectron2 names for torchvision-named weights (ResNet stem/res2..res5, FPN laterals/outputs,
4conv1fc box head), as SoCo's converter does; pickled as `{"model": numpy arrays, "__author__": "codo",
"matching_heuristics": True}` into a .pkl file, the one suffix detectron2's checkpointer unpickles."""

import numpy as np

from .names import rename_all

_RULES = [
    (r"^backbone\.body\.conv1\.weight$", "backbone.bottom_up.stem.conv1.weight"),
    (r"^backbone\.body\.bn1\.(\w+)$", r"backbone.bottom_up.stem.conv1.norm.\1"),
    (r"^backbone\.body\.layer(\d)\.(\d+)\.conv(\d)\.weight$",
     lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.weight"),
    (r"^backbone\.body\.layer(\d)\.(\d+)\.bn(\d)\.(\w+)$",
     lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.norm.{m[4]}"),
    (r"^backbone\.body\.layer(\d)\.(\d+)\.downsample\.0\.weight$",
     lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.shortcut.weight"),
    (r"^backbone\.body\.layer(\d)\.(\d+)\.downsample\.1\.(\w+)$",
     lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.shortcut.norm.{m[3]}"),
    (r"^backbone\.fpn\.inner_blocks\.(\d)\.0\.(\w+)$",
     lambda m: f"backbone.fpn_lateral{int(m[1]) + 2}.{m[2]}"),
    (r"^backbone\.fpn\.inner_blocks\.(\d)\.1\.(\w+)$",
     lambda m: f"backbone.fpn_lateral{int(m[1]) + 2}.norm.{m[2]}"),
    (r"^backbone\.fpn\.layer_blocks\.(\d)\.0\.(\w+)$",
     lambda m: f"backbone.fpn_output{int(m[1]) + 2}.{m[2]}"),
    (r"^backbone\.fpn\.layer_blocks\.(\d)\.1\.(\w+)$",
     lambda m: f"backbone.fpn_output{int(m[1]) + 2}.norm.{m[2]}"),
    (r"^roi_heads\.box_head\.(\d)\.0\.weight$", lambda m: f"roi_heads.box_head.conv{int(m[1]) + 1}.weight"),
    (r"^roi_heads\.box_head\.(\d)\.1\.(\w+)$",
     lambda m: f"roi_heads.box_head.conv{int(m[1]) + 1}.norm.{m[2]}"),
    (r"^roi_heads\.box_head\.5\.(weight|bias)$", r"roi_heads.box_head.fc1.\1"),
]


def convert(weights: dict) -> tuple[dict, list[str]]:
    """({"model": {d2 name: numpy array}, "matching_heuristics": True, "__author__": "codo"}, skipped names).

    BN step counters (num_batches_tracked) have no place in detectron2 and are skipped.
    """
    kept = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    model, skipped = rename_all(kept, _RULES, lambda t: t.detach().cpu().numpy().astype(np.float32))
    return ({"model": model, "matching_heuristics": True, "__author__": "codo"},
            skipped + sorted(set(weights) - set(kept)))

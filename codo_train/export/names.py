"""Select the exportable online weights of a checkpoint, named as torchvision's Mask R-CNN v2 names them.

`part` picks how much: 'backbone' (backbone.body), 'fpn' (+ backbone.fpn) or 'head' (+ roi_heads.box_head).
"""

import re
from typing import Callable

from codo_aug.errors import InputError

PARTS = ("backbone", "fpn", "head")
_PREFIXES = {
    "backbone": ("online.backbone.body.",),
    "fpn": ("online.backbone.body.", "online.backbone.fpn."),
    "head": ("online.backbone.body.", "online.backbone.fpn.", "online.box_head."),
}


def check_part(part: str) -> None:
    """InputError unless `part` is one of PARTS."""
    if part not in PARTS:
        raise InputError(f"invalid part={part!r}: must be one of {', '.join(PARTS)}")


def torchvision_weights(model_state: dict, part: str = "head") -> tuple[dict, list[str]]:
    """(weights under torchvision names, skipped checkpoint names) for `part`."""
    check_part(part)
    out, skipped = {}, []
    for ours, value in model_state.items():
        if ours.startswith(_PREFIXES[part]):
            name = ours.removeprefix("online.")
            out["roi_heads." + name if name.startswith("box_head.") else name] = value
        else:
            skipped.append(ours)
    if not out:
        raise InputError("the checkpoint holds no online backbone weights (online.backbone.body.*)")
    return out, skipped


Rule = tuple[str, object]  # (regex, replacement template or function of the match)


def rename(name: str, rules: list[Rule]) -> str | None:
    """The first rule's rename of weight `name`, or None when no rule matches (the weight is skipped)."""
    for pattern, target in rules:
        m = re.match(pattern, name)
        if m:
            return target(m) if callable(target) else m.expand(target)
    return None


def rename_all(weights: dict, rules: list[Rule], value: Callable) -> tuple[dict, list[str]]:
    """({new name: value(tensor)} for every weight a rule renames, [names no rule renames])."""
    out, skipped = {}, []
    for old, tensor in weights.items():
        name = rename(old, rules)
        if name is None:
            skipped.append(old)
        else:
            out[name] = value(tensor)
    return out, skipped

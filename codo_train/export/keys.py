"""Select the exportable online weights of a checkpoint, named as torchvision's Mask R-CNN v2 names them.

`part` picks how much: 'backbone' (backbone.body), 'fpn' (+ backbone.fpn) or 'head' (+ roi_heads.box_head).
"""

from pathlib import Path

import torch

from codo_aug.errors import InputError

PARTS = ("backbone", "fpn", "head")
_PREFIXES = {
    "backbone": ("online.backbone.body.",),
    "fpn": ("online.backbone.body.", "online.backbone.fpn."),
    "head": ("online.backbone.body.", "online.backbone.fpn.", "online.box_head."),
}


def load_checkpoint(path: Path) -> dict:
    """The checkpoint at `path` (a run folder means its checkpoints/last.pt); InputError when unreadable."""
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise InputError(f"no checkpoint at {path}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise InputError(f"{path} is not a readable codo checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise InputError(f"{path} is not a codo checkpoint (no 'model' weights)")
    return ckpt


def torchvision_weights(model_state: dict, part: str = "head") -> tuple[dict, list[str]]:
    """(weights under torchvision names, skipped checkpoint keys) for `part`."""
    if part not in PARTS:
        raise InputError(f"invalid part={part!r}: must be one of {', '.join(PARTS)}")
    out, skipped = {}, []
    for key, value in model_state.items():
        if key.startswith(_PREFIXES[part]):
            name = key.removeprefix("online.")
            out["roi_heads." + name if name.startswith("box_head.") else name] = value
        else:
            skipped.append(key)
    if not out:
        raise InputError("the checkpoint holds no online backbone weights (online.backbone.body.*)")
    return out, skipped

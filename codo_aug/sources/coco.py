"""`coco` source: a COCO instances json read with pycocotools' mask API.

As instances, each annotation's polygon or RLE mask is a cutout (crowd and tiny ones left out);
as backgrounds, the images themselves.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import InputError
from .base import Item, Source
from .skips import SkipLog
from .decode import BadImage, probe

#: Annotations smaller than this (pixels of mask area) or narrower than MIN_SIDE are not instances.
MIN_AREA = 64
MIN_SIDE = 4


@dataclass(frozen=True)
class CocoMask:
    """Decodes one annotation's segmentation for an image of the annotated size (picklable)."""

    segmentation: object
    height: int
    width: int
    path: str

    def __call__(self, height: int, width: int) -> np.ndarray:
        if (height, width) != (self.height, self.width):
            raise BadImage("size-mismatch", self.path, f"decoded {width}x{height}, json says {self.width}x{self.height}")
        seg = self.segmentation
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        return mask_utils.decode(rle).astype(bool)


def _find_json(path: Path) -> Path:
    if path.is_file():
        return path
    for pattern in ("annotations/instances*.json", "annotations.json", "*.json"):
        hits = sorted(path.glob(pattern))
        if hits:
            return hits[0]
    raise InputError(f"coco source: no instances json under {path} (give the json file itself)")


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"coco source: cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"coco source: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"coco source: {path} is not a COCO instances file (top level is not an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"coco source: {path} is not a COCO instances file (no '{key}' list)")
    for img in data["images"]:
        if not isinstance(img, dict) or not {"id", "file_name", "width", "height"} <= img.keys():
            raise InputError(f"coco source: {path}: an image entry lacks id/file_name/width/height: {str(img)[:80]}")
    return data


def _image_root(json_path: Path, images: list[dict]) -> Path:
    """The folder the json's file_name entries are relative to: beside it, images/, or ../images/."""
    candidates = [json_path.parent, json_path.parent / "images", json_path.parent.parent / "images"]
    if not images:
        return candidates[0]
    for root in candidates:
        if (root / images[0]["file_name"]).exists():
            return root
    raise InputError(
        f"coco source: cannot find image {images[0]['file_name']!r} beside {json_path}, in images/ or ../images/"
    )


def open_coco(path: Path, role: str, min_side: int = 1) -> Source:
    """Open a COCO set for `role` 'instances' (annotation masks) or 'backgrounds' (whole images).

    Annotations whose box is narrower than `min_side` (or MIN_SIDE) pixels are left out.
    """
    if not path.exists():
        raise InputError(f"coco source: path does not exist: {path}")
    json_path = _find_json(path)
    data = _load(json_path)
    root = _image_root(json_path, data["images"])
    skipped = SkipLog()
    readable = {}
    for img in data["images"]:
        try:
            probe(str(root / img["file_name"]))
            readable[img["id"]] = img
        except BadImage as bad:
            skipped.add(bad)
    if role == "backgrounds":
        items = [Item(img["file_name"], "") for img in readable.values()]
    else:
        names = {c["id"]: c["name"] for c in data["categories"] if isinstance(c, dict) and "id" in c}
        items = []
        for ann in data["annotations"]:
            img = readable.get(ann.get("image_id"))
            reason = _unusable(ann, img, names, max(min_side, MIN_SIDE))
            if reason:
                skipped.add(BadImage(reason, f"{json_path.name}#annotation-{ann.get('id')}"), warn=False)
                continue
            mask = CocoMask(ann["segmentation"], img["height"], img["width"], img["file_name"])
            items.append(Item(img["file_name"], names[ann["category_id"]], "mask", mask))
    if not items:
        raise InputError(f"coco source: no usable {role} in {json_path}; {skipped.summary()}")
    return Source("coco", root, items, skipped)


def _unusable(ann: dict, img: dict | None, names: dict, min_side: int) -> str:
    """Why an annotation cannot be an instance, or '' when it can."""
    if img is None:
        return "image-unreadable"
    if ann.get("iscrowd", 0):
        return "crowd"
    if not ann.get("segmentation") or ann.get("category_id") not in names:
        return "no-segmentation"
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        return "bad-bbox"
    area = ann.get("area", bbox[2] * bbox[3])  # `area` is optional in hand-made sets
    if area < MIN_AREA or min(bbox[2:4]) < min_side:
        return "too-small"
    return ""

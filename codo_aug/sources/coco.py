"""`coco` source: a COCO instances json read with pycocotools' mask API.

As instances, each annotation's polygon or RLE mask is a cutout (crowd, tiny and malformed ones are
counted skips); as backgrounds, the images themselves. `locate_coco` finds the json and the image
folder of `coco:ROOT`, `coco:JSON` and `coco:JSON:IMAGES`, for every command that reads COCO.
"""

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import InputError
from .base import Item, Source
from .coco_checks import bbox_fault, segmentation_fault
from .decode import BadImage, probe
from .paths import split_paths
from .skips import SkipLog, annotation_key

log = logging.getLogger("codo_aug.sources")

#: Annotations smaller than this (pixels of mask area) or narrower than MIN_SIDE are not instances.
MIN_AREA = 64
MIN_SIDE = 4
#: How many of a json's images (spread over it) are looked for in each candidate image folder.
LOOK_AT = 16
#: Skips that are a routine filter, not a fault of the data: counted but not logged one by one.
ROUTINE = ("crowd", "too-small", "image-skipped")


@dataclass(frozen=True)
class CocoFiles:
    """A COCO set on disk: its instances json and the folder its `file_name` entries are relative to."""

    json: Path
    images: Path


@dataclass(frozen=True)
class CocoMask:
    """Decodes one annotation's segmentation for an image of the annotated size (picklable).

    `key` names the annotation (`json#annotation-ID`) in the BadImage raised when it does not decode.
    """

    segmentation: object
    height: int
    width: int
    key: str

    def __call__(self, height: int, width: int) -> np.ndarray:
        if (height, width) != (self.height, self.width):
            raise BadImage("size-mismatch", self.key,
                           f"decoded {width}x{height}, json says {self.width}x{self.height}")
        seg = self.segmentation
        try:
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
            elif isinstance(seg.get("counts"), list):
                rle = mask_utils.frPyObjects(seg, height, width)
            else:
                rle = seg
            return mask_utils.decode(rle).astype(bool)
        except (ValueError, TypeError, IndexError, OverflowError, AttributeError) as exc:
            raise BadImage("bad-mask", self.key, f"{type(exc).__name__}: {exc}") from None


def _split_name(json_path: Path) -> str | None:
    """'train2017' of 'instances_train2017.json'; None for other names."""
    prefix, _, split = json_path.stem.partition("instances_")
    return split if not prefix and split else None


def _find_json(root: Path, option: str) -> Path:
    """The instances json of a folder: annotations/instances_<split>.json (the train split when there
    are several), else annotations.json, else the first *.json."""
    found = sorted((root / "annotations").glob("instances*.json"))
    if len(found) > 1:
        train = [p for p in found if (_split_name(p) or "").startswith("train")]
        if len(train) != 1:
            names = ", ".join(p.name for p in found)
            raise InputError(f"{option}: {len(found)} instances jsons in {root / 'annotations'} ({names}) "
                             "and not one train split among them; give the json as coco:JSON")
        return train[0]
    for hits in (found, sorted(root.glob("annotations.json")), sorted(root.glob("*.json"))):
        if hits:
            return hits[0]
    raise InputError(f"{option}: no instances json under {root} "
                     "(expected annotations/instances_<split>.json; or give the json file itself)")


def _load(path: Path, option: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{option}: cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{option}: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{option}: {path} is not a COCO instances file (top level is not an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{option}: {path} is not a COCO instances file (no '{key}' list)")
    for img in data["images"]:
        if not isinstance(img, dict) or not {"id", "file_name", "width", "height"} <= img.keys():
            raise InputError(f"{option}: {path}: an image entry lacks id/file_name/width/height: "
                             f"{str(img)[:80]}")
    return data


def _root_candidates(json_path: Path) -> list[Path]:
    """Where a json's images may be: the stock layout's ../<split>/ (and variants), beside it,
    images/, ../images/."""
    here, up = json_path.parent, json_path.parent.parent
    split = _split_name(json_path)
    named = [up / split, up / "images" / split, here / split] if split else []
    return list(dict.fromkeys([*named, here, here / "images", up / "images", up]))


def _image_root(json_path: Path, images: list[dict], option: str) -> Path:
    """The candidate folder holding the most of up to LOOK_AT of the json's images (the first on a tie)."""
    candidates = _root_candidates(json_path)
    names = [img["file_name"] for img in images[:: max(1, len(images) // LOOK_AT)][:LOOK_AT]]
    if not names:
        return next((c for c in candidates if c.is_dir()), json_path.parent)
    hits = [sum((root / name).is_file() for name in names) for root in candidates]
    best = hits.index(max(hits))
    if not hits[best]:
        raise InputError(f"{option}: none of {len(names)} images named in {json_path.name} "
                         f"(e.g. {names[0]!r}) is in {', '.join(str(c) for c in candidates)}; "
                         "give the folder as coco:JSON:IMAGES")
    return candidates[best]


def _resolve(text: str, option: str) -> tuple[CocoFiles, dict]:
    """The files of `text` (ROOT, JSON or JSON:IMAGES) and the loaded json."""
    path, images = split_paths(text, option)
    json_path = path if path.is_file() else _find_json(path, option)
    data = _load(json_path, option)
    if images is not None and not images.is_dir():
        raise InputError(f"{option}: image folder is not a directory: {images}")
    files = CocoFiles(json_path, images or _image_root(json_path, data["images"], option))
    log.info("%s: %s with images in %s", option, files.json, files.images)
    return files, data


def locate_coco(text: str, option: str = "coco source") -> CocoFiles:
    """The instances json and image folder of a COCO set given as `text` (what follows `coco:`).

    - 'ROOT': the stock layout ROOT/annotations/instances_<split>.json beside ROOT/<split>/ (any split;
      with several instances jsons, the one train split), or a json in ROOT itself;
    - 'JSON': images in the json's ../<split>/ as in the stock layout, or beside it, images/, ../images/;
    - 'JSON:IMAGES': both given.
    Images are found by looking for several of the json's files, not the first alone. InputError, its
    message starting with `option`, when nothing fits.
    """
    return _resolve(text, option)[0]


def _readable(files: CocoFiles, images: list[dict], role: str, min_side: int, skipped: SkipLog) -> dict:
    """Image entries by id whose file is readable (for instances: stored size as in the json; for
    backgrounds: both sides at least `min_side`); the rest counted in `skipped`."""
    readable = {}
    for img in images:
        path = str(files.images / img["file_name"])
        try:
            header = probe(path)
            size = (header.width, header.height)
            if role == "instances" and size != (img["width"], img["height"]):
                raise BadImage("size-mismatch", path, f"stored {size[0]}x{size[1]}, json says "
                                                      f"{img['width']}x{img['height']}")
            if role == "backgrounds" and min(size) < min_side:
                raise BadImage("too-small", path, f"{size[0]}x{size[1]} < {min_side} px")
            readable[img["id"]] = img
        except BadImage as bad:
            skipped.add(bad)
    return readable


def _hashable(value):
    """A json id usable as a dict key (int or str), else None."""
    return value if isinstance(value, (int, str)) else None


def _unusable(ann, readable: dict, known: set, names: dict, min_side: int) -> str:
    """Why an annotation cannot be an instance, or '' when it can."""
    if not isinstance(ann, dict):
        return "bad-annotation"
    image_id = _hashable(ann.get("image_id"))
    img = readable.get(image_id)
    if img is None:
        return "image-skipped" if image_id in known else "unknown-image"
    if ann.get("iscrowd", 0):
        return "crowd"
    if _hashable(ann.get("category_id")) not in names:
        return "unknown-category"
    bbox = ann.get("bbox")
    fault = bbox_fault(bbox) or segmentation_fault(ann.get("segmentation"), img["height"], img["width"])
    if fault:
        return fault
    area = ann.get("area")  # optional in hand-made sets, and may be NaN
    area = area if isinstance(area, (int, float)) and math.isfinite(area) else bbox[2] * bbox[3]
    return "too-small" if area < MIN_AREA or min(bbox[2:4]) < min_side else ""


def _instances(json_name: str, data: dict, readable: dict, min_side: int, skipped: SkipLog) -> list[Item]:
    """One mask item per usable annotation; each other one counted under `json#annotation-ID`."""
    names = {_hashable(c.get("id")): c.get("name") for c in data["categories"] if isinstance(c, dict)}
    names.pop(None, None)
    known = {_hashable(img["id"]) for img in data["images"]}
    items = []
    for k, ann in enumerate(data["annotations"]):
        key = annotation_key(json_name, ann.get("id", f"#{k}") if isinstance(ann, dict) else f"#{k}")
        reason = _unusable(ann, readable, known, names, min_side)
        if reason:
            skipped.add(BadImage(reason, key), warn=reason not in ROUTINE)
            continue
        img = readable[ann["image_id"]]
        mask = CocoMask(ann["segmentation"], img["height"], img["width"], key)
        items.append(Item(img["file_name"], str(names[ann["category_id"]]), "mask", mask))
    return items


def open_coco(text: str, role: str, min_side: int = 1) -> Source:
    """Open the COCO set `text` (see `locate_coco`) for `role` 'instances' (annotation masks) or
    'backgrounds' (whole images).

    As backgrounds, images with a side under `min_side` are skipped; as instances, annotations whose
    box is narrower than `min_side` (or MIN_SIDE) pixels. Missing images are counted skips.
    """
    files, data = _resolve(text, "coco source")
    skipped = SkipLog()
    readable = _readable(files, data["images"], role, min_side, skipped)
    if role == "backgrounds":
        items = [Item(img["file_name"], "") for img in readable.values()]
    else:
        items = _instances(files.json.name, data, readable, max(min_side, MIN_SIDE), skipped)
    if not items:
        raise InputError(f"coco source: no usable {role} in {files.json}; {skipped.summary()}")
    return Source("coco", files.images, items, skipped, role)

"""`folder` (any image tree; RGBA alpha is the mask) and `imagenet` (ROOT/<class>/*) sources.

ImageNet boxes come from the official separate box tree `ILSVRC2012_bbox_train_v2/<wnid>/<stem>.xml`
(beside the image root, or given as `imagenet:IMAGES:BOXES`), from `<stem>.xml` beside the image,
or from Kaggle's `Annotations/` twin of `Data/`.
"""

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from .base import Item, Source, scan
from .paths import split_paths
from .skips import SkipLog
from .decode import BadImage

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
#: The folder name of ImageNet's official train box tree (ILSVRC2012_bbox_train_v2.tar.gz).
BOX_TREE = "ILSVRC2012_bbox_train_v2"


def list_images(root: Path) -> list[Path]:
    """Image files under `root` in a stable order, hidden files and folders left out."""
    found = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel):
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            found.append(p)
    return sorted(found)


def _require_dir(option: str, root: Path) -> None:
    if not root.exists():
        raise InputError(f"{option}: path does not exist: {root}")
    if not root.is_dir():
        raise InputError(f"{option}: not a directory: {root}")


def _nonempty(kind: str, root: Path, items: list, skipped: SkipLog) -> None:
    if not items:
        why = f"; {skipped.summary()}" if skipped.total else ""
        raise InputError(f"{kind} source: no readable image under {root}{why}")


def _folder_label(root: Path, path: Path) -> str:
    rel = path.parent.relative_to(root)
    return "" if rel == Path(".") else rel.as_posix()


def open_folder(root: Path, role: str = "instances", min_side: int = 1, kind: str = "folder") -> Source:
    """Every image under `root`; class = its folder relative to root; alpha images cut by alpha."""
    _require_dir(f"{kind} source", root)
    skipped = SkipLog()
    items = scan(root, list_images(root), lambda p: _folder_label(root, p), skipped, min_side=min_side)
    _nonempty(kind, root, items, skipped)
    return Source(kind, root, items, skipped, role)


def xml_path(root: Path, rel: str, box_tree: Path | None = None) -> Path | None:
    """The VOC/ILSVRC box file of image `root/rel`: `box_tree/<rel>.xml`, `<stem>.xml` beside the
    image, or the ILSVRC twin `.../Annotations/...` of `.../Data/...`; None when there is none."""
    image = root / rel
    candidates = [box_tree / Path(rel).with_suffix(".xml")] if box_tree else []
    candidates.append(image.with_suffix(".xml"))
    parts = image.parts
    if "Data" in parts:
        i = len(parts) - 1 - parts[::-1].index("Data")
        candidates.append(Path(*parts[:i], "Annotations", *parts[i + 1:]).with_suffix(".xml"))
    return next((c for c in candidates if c.is_file()), None)


def read_voc_boxes(path: Path) -> list[tuple[float, float, float, float]]:
    """XYXY boxes (0-based, pixel edges) of every <object> in a VOC/ILSVRC xml; BadImage if malformed."""
    try:
        root = ET.parse(path).getroot()
        boxes = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x2 > x1 and y2 > y1:
                boxes.append((x1 - 1.0, y1 - 1.0, x2, y2))  # VOC counts pixels from 1, inclusive
        return boxes
    except (ET.ParseError, AttributeError, TypeError, ValueError, OSError) as exc:
        raise BadImage("bad-xml", str(path), str(exc)) from None


def _with_boxes(root: Path, box_tree: Path | None, items: list[Item], skipped: SkipLog) -> list[Item]:
    """One item per xml box of each image (a malformed xml is counted); images without boxes stay as
    they are."""
    out = []
    for item in items:
        xml = xml_path(root, item.path, box_tree)
        boxes = []
        if xml is not None:
            try:
                boxes = read_voc_boxes(xml)
            except BadImage as bad:
                skipped.add(bad)
        out.extend([replace(item, box=b) for b in boxes] or [item])
    return out


def _box_tree(root: Path, given: Path | None) -> Path | None:
    """The official box tree: the one given, else `BOX_TREE` beside the image root when it is there."""
    if given is not None:
        _require_dir("imagenet source: box tree", given)
        return given
    beside = root.parent / BOX_TREE
    return beside if beside.is_dir() else None


def open_imagenet(text: str, role: str = "instances", min_side: int = 1) -> Source:
    """`IMAGES[:BOXES]`, IMAGES in the ImageFolder layout IMAGES/<class>/<image>: class = folder name.

    As instances, one item per ILSVRC xml box when the image has boxes, else one InsLoc rect crop.
    """
    root, given = split_paths(text, "imagenet source")
    _require_dir("imagenet source", root)
    box_tree = _box_tree(root, given)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths = [p for d in classes for p in list_images(d)]
    if not paths:
        raise InputError(f"imagenet source: no <class>/<image> files under {root} "
                         "(expected ROOT/<class>/*.JPEG)")
    skipped = SkipLog()
    items = scan(root, paths, lambda p: p.relative_to(root).parts[0], skipped, force_rect=True,
                 min_side=min_side)
    _nonempty("imagenet", root, items, skipped)
    if role == "instances":
        items = _with_boxes(root, box_tree, items, skipped)
    return Source("imagenet", root, items, skipped, role)

"""A COCO instances set as detection training data, every image checked against the json before use.

Annotations index the image as it is shown upright, EXIF orientation applied: what labelme draws
on and what detectron2 trains on (`read_image`, then `check_image_size`). So the upright size must be
the json's width x height. An image whose upright size is the json's transposed (its tool ignored an
EXIF rotation) is skipped and counted, never trained on with transposed masks; so are missing and
unreadable images. A malformed annotation (its bbox or segmentation, as codo_aug.sources.coco_checks
judges them for a coco source) is left out of the set, counted and named in one warning, before
training or COCOeval reads it. No usable image at all is one InputError.
"""

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from codo_aug.errors import InputError
from codo_aug.sources.coco import CocoFiles
from codo_aug.sources.coco_checks import bbox_fault, segmentation_fault
from codo_aug.sources.decode import BadImage, decode, probe
from codo_aug.sources.skips import SkipLog

log = logging.getLogger(__name__)

_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _quiet_coco(path: Path) -> COCO:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except Exception as exc:  # noqa: BLE001 - a broken json, whatever pycocotools makes of it
        raise InputError(f"{path} is not a COCO instances file ({type(exc).__name__}: {exc})") from None


def _fault(ann: dict, images: dict) -> str:
    """What is wrong with annotation `ann` ('' when nothing): its bbox, or its segmentation against its
    image's size."""
    image = images.get(ann["image_id"])
    if image is None:
        return "no-such-image"
    return bbox_fault(ann.get("bbox")) or ("segmentation" in ann and segmentation_fault(
        ann["segmentation"], image.get("height"), image.get("width"))) or ""


def drop_malformed(coco: COCO, option: str, path: Path) -> None:
    """Leave each malformed annotation out of `coco` (its index rebuilt), with one warning that counts them
    by fault and names the first; annToMask and COCOeval would crash on them, or score them."""
    faults, kept = {}, []
    for ann in coco.dataset.get("annotations", []):
        fault = _fault(ann, coco.imgs)
        if fault:
            faults.setdefault(fault, []).append(ann["id"])
        else:
            kept.append(ann)
    if not faults:
        return
    coco.dataset["annotations"] = kept
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    counts = ", ".join(f"{fault}: {len(ids)}" for fault, ids in sorted(faults.items()))
    fault, ids = next(iter(faults.items()))
    log.warning("%s: left out %d malformed annotation(s) of %s (%s); first: annotation id %s (%s)", option,
                sum(map(len, faults.values())), path, counts, ids[0], fault)


def upright_size(path: str) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) of the image shown upright, read from its header; BadImage when
    it cannot be read."""
    head = probe(path)
    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage("unreadable", path, f"EXIF: {exc}") from None
    if orientation in _TRANSPOSED:
        return head.height, head.width, orientation
    return head.width, head.height, orientation


def check_image(path: str, info: dict) -> None:
    """BadImage unless the image at `path` reads and its upright size is the json's (`info`) size."""
    width, height, orientation = upright_size(path)
    if (width, height) != (info["width"], info["height"]):
        exif = f" after EXIF orientation {orientation}" if orientation != 1 else ""
        raise BadImage("size-mismatch", path,
                       f"{width}x{height}{exif}, json says {info['width']}x{info['height']}")


class CocoDetection(Dataset):
    """Images with their boxes, labels (1..C by category id order) and, when present, masks.

    Only images with a usable annotation whose file passes `check_image` are kept; the rest are
    counted in `skipped` and summed up in one warning. `option` names the set in messages.
    """

    def __init__(self, files: CocoFiles, categories: list[int] | None = None, option: str = "--coco"):
        self.coco = _quiet_coco(files.json)
        drop_malformed(self.coco, option, files.json)
        self.root = files.images
        self.categories = categories or sorted(self.coco.getCatIds())
        self.label = {c: i + 1 for i, c in enumerate(self.categories)}
        annotated = [i for i in sorted(self.coco.getImgIds()) if self._anns(i)]
        if not annotated:
            raise InputError(f"{option}: {files.json} has no image with a usable annotation")
        self.skipped, self.first_skip = SkipLog(), ""
        self.ids = [i for i in annotated if self._readable(i)]
        self._report(files, option, len(annotated))
        self.masks = all("segmentation" in a for i in self.ids for a in self._anns(i))

    def _anns(self, image_id: int) -> list[dict]:
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=False))
        return [a for a in anns if a["category_id"] in self.label and a["bbox"][2] >= 1 and a["bbox"][3] >= 1]

    def _path(self, info: dict) -> str:
        return str(self.root / info["file_name"])

    def _readable(self, image_id: int) -> bool:
        info = self.coco.loadImgs(image_id)[0]
        try:
            check_image(self._path(info), info)
        except BadImage as bad:
            self.skipped.add(bad)
            self.first_skip = self.first_skip or str(bad)
            return False
        return True

    def _report(self, files: CocoFiles, option: str, annotated: int) -> None:
        """One warning for the skipped images (the first one named); InputError when none is left."""
        if not self.skipped.total:
            return
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.counts.items()))
        what = (f"skipped {self.skipped.total} of {annotated} annotated image(s) ({reasons}) "
                f"in {files.json}; first: {self.first_skip}")
        if not self.ids:
            raise InputError(f"{option}: no usable image: {what}")
        log.warning("%s: %s", option, what)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int):
        image_id = self.ids[k]
        info = self.coco.loadImgs(image_id)[0]
        try:
            rgb = decode(self._path(info))  # upright, as checked in `check_image`
        except BadImage as bad:
            raise InputError(f"cannot read a fine-tuning image: {bad}") from None
        if rgb.shape[:2] != (info["height"], info["width"]):  # the decoder took the EXIF otherwise than PIL
            raise InputError(f"{self._path(info)}: decoded {rgb.shape[1]}x{rgb.shape[0]}, "
                             f"json says {info['width']}x{info['height']}")
        anns = self._anns(image_id)
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                             dtype=torch.float32)
        target = {"boxes": boxes, "labels": torch.tensor([self.label[a["category_id"]] for a in anns]),
                  "image_id": image_id}
        if self.masks:
            target["masks"] = torch.from_numpy(np.stack([self.coco.annToMask(a) for a in anns]))
        return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0, target


def collate(batch):
    """Lists of images and targets: detection images differ in size."""
    return tuple(zip(*batch))

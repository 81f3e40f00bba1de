"""Source: one pool of instances or backgrounds, with its files checked and its skips counted."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import SynthConfig
from ..geometry.placement import crop_rect
from ..io.location import resolve_location
from .cutout import clip_box, crop_box, crop_rgba_to_alpha, crop_to_mask, grabcut
from .decode import BadImage, decode, decode_scaled, probe
from .sizing import CutNeed
from .skips import SkipLog

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Item:
    """One instance or background: a file (relative to the source root), its class and cutout kind.

    `mask` decodes a COCO segmentation for `mask` cutouts (a callable (h, w) -> HxW bool);
    `box` is an XYXY object box from an ILSVRC/VOC xml, in the file's stored pixel order.
    """

    path: str
    label: str
    cutout: str = "rect"
    mask: Callable[[int, int], np.ndarray] | None = None
    box: tuple[float, float, float, float] | None = None

    @property
    def cut_by(self) -> str:
        """Where the instance's outline comes from: 'box' (an xml box), 'mask' (alpha or a COCO mask)
        or 'rect' (a random rect of the image)."""
        if self.box is not None:
            return "box"
        return "mask" if self.cutout in ("alpha", "mask") else "rect"


#: The values of `Item.cut_by`, in the order summaries list them.
CUT_BY = ("box", "mask", "rect")


@dataclass
class Source:
    """A checked pool of items under `root` for `role` ('instances' or 'backgrounds'); `kind` and `root`
    say where it came from."""

    kind: str
    root: Path
    items: list[Item]
    skipped: SkipLog
    role: str = "instances"

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[str]:
        return sorted({it.label for it in self.items})

    def cut_by_counts(self) -> dict[str, int]:
        """How many items are cut by an xml box, by a mask (alpha or COCO), by a random rect."""
        counts = dict.fromkeys(CUT_BY, 0)
        for item in self.items:
            counts[item.cut_by] += 1
        return counts

    def describe(self) -> dict:
        """Where the source came from (its root resolved: the same however it was spelled), its size, (for
        instances) how its items are cut, and its skips."""
        cut_by = {"cut_by": self.cut_by_counts()} if self.role == "instances" else {}
        return {"kind": self.kind, "root": resolve_location(str(self.root)), "items": len(self.items),
                **cut_by, "skipped": self.skipped.to_dict()}

    def identity(self) -> dict:
        """What decides this source's pixels besides its items (io.identity.source_identity adds it to a
        job's identity); nothing for a source of files."""
        return {}

    def check(self, config: SynthConfig) -> None:
        """Refuse (InputError) a `config` this source cannot serve, before anything is drawn or written;
        a source of files serves any."""

    def background(self, i: int, size: int | None = None, crop_area: float = 1.0) -> np.ndarray:
        """Item `i` as an HxWx3 RGB array; BadImage if the file fails to decode.

        Given the view `size` and the square crop's `crop_area`, a JPEG may be decoded at a reduced
        scale that still gives the crop at least `size` pixels a side.
        """
        def least(w: int, h: int) -> tuple[int, int]:
            side = min(math.sqrt(crop_area * w * h), w, h)
            scale = min(1.0, size / side)
            return math.ceil(w * scale), math.ceil(h * scale)

        return decode(str(self.root / self.items[i].path), draft=least if size else None)

    def cutout(self, i: int, rect: Box, how: str = "auto", min_side: int = 1,
               need: CutNeed | None = None) -> np.ndarray:
        """Item `i` cut out as an RGBA array cropped to the object.

        `how`: 'auto' takes the item's alpha or mask, else its xml box, else the random `rect`
        (area, log_ratio, u, v); 'rect' always takes the rect; 'box' the xml box where there is one;
        'grabcut' segments the xml box (or the rect) with GrabCut. BadImage when the file does not
        decode or the cutout is empty or narrower than `min_side` (judged at full size).

        Given the sample's `need`, a JPEG cut by its box or rect is decoded at the largest libjpeg
        reduction k whose box still has `need.longest` pixels, and the box (placed on the full size)
        is cut at 1/k; GrabCut then runs on that reduced box. Alpha PNGs cannot be decoded reduced and
        COCO masks index full-size pixels: those decode at full size.
        """
        item = self.items[i]
        path = str(self.root / item.path)
        if item.cutout == "alpha" and how != "rect":
            cut = crop_rgba_to_alpha(decode(path, alpha=True))
        elif item.cutout == "mask" and how != "rect":
            rgb = decode(path, exif=False)  # COCO masks index the pixels as stored
            cut = crop_to_mask(rgb, item.mask(*rgb.shape[:2]))
        else:
            return _cut_box(path, _box_of(item, rect, how), item.box is None, how, min_side, need)
        if cut is None:
            raise BadImage("empty-cutout", path)
        _check_side(cut.shape[1], cut.shape[0], min_side, path)
        return cut

    def rectangular(self, i: int, how: str = "auto") -> bool:
        """Whether `cutout(i, ..., how)` is a filled rectangle (a random rect or an xml box) rather
        than an object cut by its alpha, mask or GrabCut: the cutouts SynthConfig.view_crop 'auto' crops."""
        return how != "grabcut" and (how == "rect" or self.items[i].cutout not in ("alpha", "mask"))

    def rect_image(self, i: int, how: str = "auto") -> np.ndarray | None:
        """The whole image `cutout(i, rect, how)` cuts the random `rect` from (no alpha, mask or xml box to
        cut by, or 'rect'), decoded as cutout decodes it; None when the cut does not depend on the rect."""
        item = self.items[i]
        if how != "rect" and (item.cutout in ("alpha", "mask") or item.box is not None):
            return None
        return decode(str(self.root / item.path), exif=item.box is None)


def _box_of(item: Item, rect: Box, how: str) -> Callable[[int, int], Box]:
    """The XYXY box item's cut takes of a w x h image: its xml box, else the random `rect`'s crop."""
    if item.box is not None and how != "rect":
        return lambda w, h: item.box

    def drawn(w: int, h: int) -> Box:
        x, y, cw, ch = crop_rect(w, h, *rect)
        return x, y, x + cw, y + ch

    return drawn


def _cut_box(path: str, box_of: Callable[[int, int], Box], exif: bool, how: str, min_side: int,
             need: CutNeed | None) -> np.ndarray:
    """The cut of `box_of(w, h)` (full-size pixels of a w x h image), from a decode reduced as `need`
    allows (xml boxes index the pixels as stored, random rects the upright ones)."""
    def region(w: int, h: int) -> tuple[int, int]:
        x1, y1, x2, y2 = clip_box(box_of(w, h), w, h)
        return x2 - x1, y2 - y1

    img = decode_scaled(path, exif=exif, draft=need.draft(region) if need else None)
    small = tuple(c / img.factor for c in box_of(img.width, img.height))
    if how == "grabcut":
        cut = grabcut(img.pixels, small)
        _check_side(cut.shape[1] * img.factor, cut.shape[0] * img.factor, min_side, path)
        return cut
    _check_side(*region(img.width, img.height), min_side, path)
    return crop_box(img.pixels, small)


def _check_side(width: int, height: int, min_side: int, path: str) -> None:
    """BadImage 'too-small' for a cut (at full size) narrower than `min_side`."""
    if min(width, height) < min_side:
        raise BadImage("too-small", path, f"cutout {width}x{height} < {min_side} px")


def scan(root: Path, paths: list[Path], label_of: Callable[[Path], str], skipped: SkipLog,
         force_rect: bool = False, min_side: int = 1) -> list[Item]:
    """Probe each file's header; keep the readable ones at least `min_side` wide and high as Items,
    count the rest in `skipped`."""
    items = []
    for p in paths:
        try:
            header = probe(str(p))
            if min(header.width, header.height) < min_side:
                raise BadImage("too-small", str(p), f"{header.width}x{header.height} < {min_side} px")
        except BadImage as bad:
            skipped.add(bad)
            continue
        cutout = "alpha" if header.has_alpha and not force_rect else "rect"
        items.append(Item(p.relative_to(root).as_posix(), label_of(p), cutout))
    return items

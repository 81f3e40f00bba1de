"""Source: one pool of instances or backgrounds, with its files checked and its skips counted."""

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..geometry.boxes import mask_to_box
from ..geometry.placement import crop_rect
from .decode import BadImage, decode, probe

log = logging.getLogger("codo_aug.sources")

#: How an instance is cut out of its file: the whole of a random rect, its alpha, or a COCO mask.
CUTOUT_KINDS = ("rect", "alpha", "mask")


@dataclass
class SkipLog:
    """Counts of files skipped, by reason, with the first few paths of each for the summary."""

    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)

    def add(self, bad: BadImage, warn: bool = True) -> None:
        """Count `bad` once per path; log it (INFO) unless it is a routine filter (`warn=False`, e.g. COCO crowds)."""
        if bad.path in self.seen:
            return
        self.seen.add(bad.path)
        self.counts[bad.reason] += 1
        self.examples.setdefault(bad.reason, [])
        if len(self.examples[bad.reason]) < 3:
            self.examples[bad.reason].append(bad.path)
        if warn:
            log.info("skipped %s", bad)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "0 skipped"
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        return f"{self.total} skipped ({parts})"

    def to_dict(self) -> dict:
        return {"total": self.total, "by_reason": dict(sorted(self.counts.items())),
                "examples": dict(sorted(self.examples.items()))}


@dataclass(frozen=True)
class Item:
    """One instance or background: a file (relative to the source root), its class and cutout kind.

    `mask` holds a COCO segmentation decoder for `mask` cutouts (a callable (h, w) -> HxW bool).
    """

    path: str
    label: str
    cutout: str = "rect"
    mask: Callable[[int, int], np.ndarray] | None = None


@dataclass
class Source:
    """A checked pool of items under `root`; `kind` and `root` say where it came from."""

    kind: str
    root: Path
    items: list[Item]
    skipped: SkipLog

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[str]:
        return sorted({it.label for it in self.items})

    def describe(self) -> dict:
        return {"kind": self.kind, "root": str(self.root), "items": len(self.items), "skipped": self.skipped.to_dict()}

    def background(self, i: int) -> np.ndarray:
        """Item `i` as an HxWx3 RGB array; BadImage if the file fails to decode."""
        return decode(str(self.root / self.items[i].path))

    def cutout(self, i: int, rect: tuple[float, float, float, float]) -> np.ndarray:
        """Item `i` cut out as an RGBA array cropped to the object; `rect` drives `rect` cutouts.

        `rect` is (area, log_ratio, u, v) as drawn by the recipe (see geometry.placement.crop_rect).
        """
        item = self.items[i]
        path = str(self.root / item.path)
        if item.cutout == "alpha":
            rgba = decode(path, alpha=True)
            box = mask_to_box(rgba[:, :, 3] > 0)
            if box is None:
                raise BadImage("empty-alpha", path)
            x1, y1, x2, y2 = box.astype(int)
            return rgba[y1:y2, x1:x2]
        rgb = decode(path, exif=item.cutout != "mask")  # COCO masks index the pixels as stored
        h, w = rgb.shape[:2]
        if item.cutout == "mask":
            mask = item.mask(h, w)
            box = mask_to_box(mask)
            if box is None:
                raise BadImage("empty-mask", path)
            x1, y1, x2, y2 = box.astype(int)
            alpha = mask[y1:y2, x1:x2].astype(np.uint8) * 255
            return np.dstack([rgb[y1:y2, x1:x2], alpha])
        x, y, cw, ch = crop_rect(w, h, *rect)
        return np.dstack([rgb[y:y + ch, x:x + cw], np.full((ch, cw), 255, np.uint8)])


def scan(root: Path, paths: list[Path], label_of: Callable[[Path], str], skipped: SkipLog,
         force_rect: bool = False) -> list[Item]:
    """Probe each file's header; keep the readable ones as Items, count the rest in `skipped`."""
    items = []
    for p in paths:
        try:
            header = probe(str(p))
        except BadImage as bad:
            skipped.add(bad)
            continue
        cutout = "alpha" if header.has_alpha and not force_rect else "rect"
        items.append(Item(p.relative_to(root).as_posix(), label_of(p), cutout))
    return items

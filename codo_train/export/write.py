"""`codo-train export`: a checkpoint's online weights -> a torchvision, detectron2 or mmdet file, with a report."""

import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from codo_aug.atomic import atomic_open
from codo_aug.errors import InputError

from . import detectron2, mmdet
from .keys import read_online, torchvision_weights

FORMATS = ("torchvision", "detectron2", "mmdet")


@dataclass
class ExportReport:
    """What went into the file and what was left out, by key prefix."""

    out: Path
    exported: Counter
    skipped: Counter

    def __str__(self) -> str:
        def line(c: Counter) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"

        return (f"wrote {self.out}: exported {sum(self.exported.values())} tensors ({line(self.exported)}); "
                f"skipped {sum(self.skipped.values())} ({line(self.skipped)})")


def _prefix(key: str, depth: int = 2) -> str:
    return ".".join(key.split(".")[:depth])


def export(checkpoint: Path, fmt: str, part: str, out: Path) -> ExportReport:
    """Convert the online (not momentum) weights of `checkpoint` to `fmt` and write them to `out` atomically."""
    if fmt not in FORMATS:
        raise InputError(f"invalid format={fmt!r}: must be one of {', '.join(FORMATS)}")
    weights, skipped = torchvision_weights(read_online(checkpoint), part)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out) as fh:
        if fmt == "detectron2":
            obj, dropped = detectron2.convert(weights)
            pickle.dump(obj, fh)
            names = obj["model"]
        elif fmt == "mmdet":
            obj, dropped = mmdet.convert(weights)
            torch.save(obj, fh)
            names = obj["state_dict"]
        else:
            dropped, names = [], weights
            torch.save(weights, fh)
    exported = Counter(_prefix(k, 3 if k.startswith("roi_head") else 2) for k in names)
    return ExportReport(out, exported, Counter(_prefix(k) for k in skipped + dropped))

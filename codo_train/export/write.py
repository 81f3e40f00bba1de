"""`codo-train export`: a checkpoint's online weights -> a torchvision, detectron2 or mmdet file, with a
report of what went in."""

import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from codo_aug.atomic import atomic_open
from codo_aug.errors import InputError

from . import detectron2, mmdet
from .keys import read_online, torchvision_weights


@dataclass(frozen=True)
class Format:
    """How a format converts torchvision-named weights, where its file keeps them, how it is written."""

    convert: Callable[[dict], tuple[dict, list[str]]]  # -> (object to write, keys left out)
    tensors: str  # key of the written object that holds the named tensors ('' for the object itself)
    dump: Callable  # (object, binary file)
    suffix: str


FORMATS = {
    "torchvision": Format(lambda w: (w, []), "", torch.save, ".pth"),
    "detectron2": Format(detectron2.convert, "model", pickle.dump, ".pkl"),
    "mmdet": Format(mmdet.convert, "state_dict", torch.save, ".pth"),
}


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


def _refuse_folder(out: Path, fmt: Format) -> None:
    """InputError when `out` names a folder: export writes one file."""
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; export writes one file: name it, e.g. "
                         f"--out {out / ('weights' + fmt.suffix)}")


def _make_parent(out: Path) -> None:
    """Create `out`'s folder; InputError when a file is in the way or it may not be made."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"--out {out}: {out.parent} is not a folder") from None
    except PermissionError:
        raise InputError(f"--out {out}: cannot create {out.parent} (permission denied)") from None


def export(checkpoint: Path, fmt: str, part: str, out: Path) -> ExportReport:
    """Convert the online (not momentum) weights of `checkpoint` to `fmt`; write them to `out` atomically."""
    if fmt not in FORMATS:
        raise InputError(f"invalid format={fmt!r}: must be one of {', '.join(FORMATS)}")
    writer = FORMATS[fmt]
    _refuse_folder(out, writer)
    weights, skipped = torchvision_weights(read_online(checkpoint), part)
    obj, dropped = writer.convert(weights)
    _make_parent(out)
    with atomic_open(out) as fh:
        writer.dump(obj, fh)
    names = obj[writer.tensors] if writer.tensors else obj
    exported = Counter(_prefix(k, 3 if k.startswith("roi_head") else 2) for k in names)
    return ExportReport(out, exported, Counter(_prefix(k) for k in skipped + dropped))

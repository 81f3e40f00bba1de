"""`codo-train export`: a checkpoint's online weights -> a torchvision, detectron2 or mmdet file, with a
report of what went in and how far each stage moved in pretraining (the drift table)."""

import os
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codo_aug.io.atomic import atomic_open
from codo_aug.errors import InputError

from . import detectron2, mmdet
from .names import check_part, torchvision_weights


@dataclass(frozen=True)
class Format:
    """How a format converts torchvision-named weights, where its file keeps them, how it is written."""

    convert: Callable[[dict], tuple[dict, list[str]]]  # -> (object to write, names left out)
    tensors: str  # key of the written object that holds the named tensors ('' for the object itself)
    dump: Callable  # (object, binary file)
    suffix: str
    suffix_required: bool = False  # the consumer picks its loader by the suffix, so --out must end in it


def _torch_save(obj: dict, fh) -> None:
    import torch  # loaded on writing, so that a bad --format, --part or --out is refused at once

    torch.save(obj, fh)


FORMATS = {
    "torchvision": Format(lambda w: (w, []), "", _torch_save, ".pth"),
    # detectron2's DetectionCheckpointer unpickles only a '.pkl' file; any other it hands to torch.load
    "detectron2": Format(detectron2.convert, "model", pickle.dump, ".pkl", suffix_required=True),
    "mmdet": Format(mmdet.convert, "state_dict", _torch_save, ".pth"),
}


@dataclass
class ExportReport:
    """What went into the file and what was left out, by name prefix; the checkpoint's step and its drift
    table (|w - w0| / |w0| by stage and branch; '' when the checkpoint holds no run config)."""

    out: Path
    exported: Counter
    skipped: Counter
    step: int | None = None
    drift_table: str = ""

    def __str__(self) -> str:
        def line(c: Counter) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"

        summary = (f"wrote {self.out}: exported {sum(self.exported.values())} tensors "
                   f"({line(self.exported)}); skipped {sum(self.skipped.values())} ({line(self.skipped)})")
        if not self.drift_table:
            return summary + "\nno drift table: the checkpoint holds no run config"
        return (f"{summary}\ndrift |w - w0| / |w0| after step {self.step} (w0 rebuilt from the run's seed):\n"
                + self.drift_table)


def _prefix(key: str, depth: int = 2) -> str:
    return ".".join(key.split(".")[:depth])


def _refuse_out(out: Path | str, name: str, fmt: Format, overwrite: bool) -> Path:
    """`out` as a Path; InputError when it names a folder (one that exists, or any name ending in '/':
    export writes one file), lacks the suffix format `name` must have, or is a file already there
    without `overwrite`."""
    path = Path(out)
    if path.is_dir() or str(out).endswith(("/", os.sep)):
        raise InputError(f"--out {out} is a folder; export writes one file: name it, e.g. "
                         f"--out {path / ('weights' + fmt.suffix)}")
    if fmt.suffix_required and path.suffix != fmt.suffix:
        raise InputError(f"--out {out}: a {name} export must end in {fmt.suffix} ({name} picks its loader by "
                         f"the suffix); name it, e.g. --out {path.with_suffix(fmt.suffix)}")
    if path.exists() and not overwrite:
        raise InputError(f"--out {out} exists; pass --overwrite to replace it")
    return path


def _make_parent(out: Path) -> None:
    """Create `out`'s folder; InputError when a file is in the way or it may not be made."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"--out {out}: {out.parent} is not a folder") from None
    except PermissionError:
        raise InputError(f"--out {out}: cannot create {out.parent} (permission denied)") from None


def export(checkpoint: Path, fmt: str, part: str, out: Path | str, overwrite: bool = False) -> ExportReport:
    """Convert the online (not momentum) weights of `checkpoint` to `fmt`; write them to `out` atomically
    (a file already there only with `overwrite`)."""
    if fmt not in FORMATS:
        raise InputError(f"invalid format={fmt!r}: must be one of {', '.join(FORMATS)}")
    check_part(part)
    writer = FORMATS[fmt]
    out = _refuse_out(out, fmt, writer, overwrite)
    from ..checkpoint import load_run_checkpoint  # torch loads here, once the options are checked
    from ..health import drift, drift_table, rebuilt_initial_weights
    from ..models.config import ModelConfig

    ckpt = load_run_checkpoint(checkpoint)
    weights, skipped = torchvision_weights(ckpt["model"], part)
    obj, dropped = writer.convert(weights)
    _make_parent(out)
    with atomic_open(out) as fh:
        writer.dump(obj, fh)
    names = obj[writer.tensors] if writer.tensors else obj
    exported = Counter(_prefix(k, 3 if k.startswith("roi_head") else 2) for k in names)
    config, table = ckpt.get("config"), ""  # the run's settings: its seed drew the initial weights
    if config:
        initial = rebuilt_initial_weights(ModelConfig.from_dict(ckpt["model_config"]), config.get("seed", 0))
        table = drift_table(drift(ckpt["model"], initial))
    skipped_by_prefix = Counter(_prefix(k) for k in skipped + dropped)
    return ExportReport(out, exported, skipped_by_prefix, ckpt.get("step"), table)

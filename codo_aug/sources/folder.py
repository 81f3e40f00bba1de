"""`folder` (any image tree; RGBA alpha is the mask) and `imagenet` (ROOT/<class>/*) sources."""

from pathlib import Path

from ..errors import InputError
from .base import SkipLog, Source, scan

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


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


def _require_dir(kind: str, root: Path) -> None:
    if not root.exists():
        raise InputError(f"{kind} source: path does not exist: {root}")
    if not root.is_dir():
        raise InputError(f"{kind} source: not a directory: {root}")


def _nonempty(kind: str, root: Path, items: list, skipped: SkipLog) -> None:
    if not items:
        why = f"; {skipped.summary()}" if skipped.total else ""
        raise InputError(f"{kind} source: no readable image under {root}{why}")


def _folder_label(root: Path, path: Path) -> str:
    rel = path.parent.relative_to(root)
    return "" if rel == Path(".") else rel.as_posix()


def open_folder(root: Path, kind: str = "folder") -> Source:
    """Every image under `root`; class = its folder relative to root; alpha images cut by alpha."""
    _require_dir(kind, root)
    skipped = SkipLog()
    items = scan(root, list_images(root), lambda p: _folder_label(root, p), skipped)
    _nonempty(kind, root, items, skipped)
    return Source(kind, root, items, skipped)


def open_imagenet(root: Path) -> Source:
    """ImageFolder layout ROOT/<class>/<image>: class = folder name, instances cut as InsLoc rects."""
    _require_dir("imagenet", root)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths = [p for d in classes for p in list_images(d)]
    if not paths:
        raise InputError(f"imagenet source: no <class>/<image> files under {root} (expected ROOT/<class>/*.JPEG)")
    skipped = SkipLog()
    items = scan(root, paths, lambda p: p.relative_to(root).parts[0], skipped, force_rect=True)
    _nonempty("imagenet", root, items, skipped)
    return Source("imagenet", root, items, skipped)
